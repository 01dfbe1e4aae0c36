"""Task-adapter training features on disk, written a chunk at a time, read a batch at a time.

Training draws its batches from the whole training split in a random order, so it needs
every feature addressable, but not in memory: SQuAD's ~89k windows of up to 384 tokens
are gigabytes as the Python lists :class:`~langarith.train.task_features.EncodedTask`
holds, and a few hundred MB as flat ``int32`` arrays. :meth:`FeatureStore.write`
appends the chunks of :func:`~langarith.train.task_features.iter_encoded` to flat files
(tokens of feature ``i`` at ``starts[i]:starts[i + 1]``) and :meth:`FeatureStore.batch`
pads a batch from memory-mapped views: the tensors are those of
:meth:`EncodedTask.batch <langarith.train.task_features.EncodedTask.batch>` on the same
features (tested), and memory no longer grows with the dataset.

Only what training reads is stored (inputs and targets); offsets and word ids, which
post-processing needs, belong to the validation split, scored chunk by chunk from its
rows (:func:`~langarith.train.task_features.evaluate_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from langarith import LangarithError
from langarith.io import read_json, write_json
from langarith.train.task_features import DP_PAD, EncodedTask

__all__ = ["FeatureStore"]

META = "features.json"
#: Per-token arrays (flat, aligned with ``starts``) and their file dtype.
TOKEN_FIELDS = {
    "input_ids": np.int32,
    "attention_mask": np.int8,
    "token_type_ids": np.int8,
    "labels": np.int32,  # NER: per-token tag ids (-100 masked)
    # DP: word starts, gold heads and relation ids, padded with DP_PAD to the feature's length
    "word_starts": np.int32,
    "arc_labels": np.int32,
    "rel_labels": np.int32,
}
#: Per-feature arrays and their dtype.
FEATURE_FIELDS = {
    "labels": np.int64,  # NLI: class id
    "start_positions": np.int64,  # QA
    "end_positions": np.int64,
}


def _token_fields(task: str) -> list[str]:
    fields = ["input_ids", "attention_mask", "token_type_ids"]
    extra = {"ner": ["labels"], "dp": ["word_starts", "arc_labels", "rel_labels"]}
    return fields + extra.get(task, [])


def _feature_fields(task: str) -> list[str]:
    per_task = {"ner": [], "nli": ["labels"], "qa": ["start_positions", "end_positions"]}
    return per_task.get(task, [])


@dataclass
class FeatureStore:
    """Training features in a folder: flat token files, per-feature files, ``features.json``."""

    folder: Path
    task: str
    n_features: int
    n_rows: int
    max_chunk_features: int  # most features held in memory while writing
    starts: np.ndarray
    tokens: dict[str, np.ndarray]
    per_feature: dict[str, np.ndarray]

    def __len__(self) -> int:
        return self.n_features

    @classmethod
    def write(
        cls, chunks: Iterable[tuple[Sequence[dict], EncodedTask]], folder: Path
    ) -> FeatureStore:
        """Append each chunk's features to the files in ``folder`` (created, must be new);
        ``features.json`` is written last, as the mark of a complete store."""
        folder = Path(folder)
        folder.mkdir(parents=True)
        task: str | None = None
        n_features = n_rows = peak = 0
        starts = [0]
        with ExitStack() as stack:
            handles: dict[str, BinaryIO] = {}

            def handle(name: str) -> BinaryIO:
                if name not in handles:
                    handles[name] = stack.enter_context(open(folder / f"{name}.bin", "wb"))
                return handles[name]

            for rows, encoded in chunks:
                task = task or encoded.task
                peak = max(peak, len(encoded))
                n_rows += len(rows)
                for name in _token_fields(encoded.task):
                    values = getattr(encoded, name)
                    if values is None:
                        continue
                    flat = np.fromiter((v for row in values for v in row), dtype=TOKEN_FIELDS[name])
                    flat.tofile(handle(f"tok_{name}"))
                for name in _feature_fields(encoded.task):
                    np.asarray(getattr(encoded, name), dtype=FEATURE_FIELDS[name]).tofile(
                        handle(f"feat_{name}")
                    )
                for ids in encoded.input_ids:
                    starts.append(starts[-1] + len(ids))
                n_features += len(encoded)
                del rows, encoded  # let go before the next chunk is built: one at a time
            stored = sorted(handles)
        if task is None:
            raise LangarithError(f"No features to store in {folder}: the split has no rows.")
        np.asarray(starts, dtype=np.int64).tofile(folder / "starts.bin")
        write_json(
            folder / META,
            {
                "task": task,
                "n_features": n_features,
                "n_rows": n_rows,
                "n_tokens": starts[-1],
                "max_chunk_features": peak,
                "files": stored,
            },
        )
        return cls.open(folder)

    @classmethod
    def open(cls, folder: Path) -> FeatureStore:
        """Memory-map a complete store (one without ``features.json`` is refused)."""
        folder = Path(folder)
        if not (folder / META).exists():
            raise LangarithError(f"{folder} holds no complete feature store (no {META}).")
        meta = read_json(folder / META, "Feature store")
        starts = np.fromfile(folder / "starts.bin", dtype=np.int64)
        if len(starts) != meta["n_features"] + 1 or starts[-1] != meta["n_tokens"]:
            raise LangarithError(f"{folder}/starts.bin does not match {META}; rebuild the store.")
        tokens, per_feature = {}, {}
        for name in meta["files"]:
            kind, field = name.split("_", 1)
            table = TOKEN_FIELDS if kind == "tok" else FEATURE_FIELDS
            target = tokens if kind == "tok" else per_feature
            target[field] = np.memmap(folder / f"{name}.bin", dtype=table[field], mode="r")
        return cls(
            folder=folder,
            task=str(meta["task"]),
            n_features=int(meta["n_features"]),
            n_rows=int(meta["n_rows"]),
            max_chunk_features=int(meta["max_chunk_features"]),
            starts=starts,
            tokens=tokens,
            per_feature=per_feature,
        )

    def batch(
        self, indices: Sequence[int], pad_id: int, *, with_labels: bool = True
    ) -> dict[str, torch.Tensor]:
        """Padded tensors of the features ``indices``, as ``EncodedTask.batch`` makes them."""
        spans = [(int(self.starts[i]), int(self.starts[i + 1])) for i in indices]
        width = max(end - start for start, end in spans)

        def pad(name: str, value: int) -> torch.Tensor:
            out = np.full((len(spans), width), value, dtype=np.int64)
            flat = self.tokens[name]
            for row, (start, end) in enumerate(spans):
                out[row, : end - start] = flat[start:end]
            return torch.from_numpy(out)

        out = {"input_ids": pad("input_ids", pad_id), "attention_mask": pad("attention_mask", 0)}
        if "token_type_ids" in self.tokens:
            out["token_type_ids"] = pad("token_type_ids", 0)
        if self.task == "dp":
            out["word_starts"] = pad("word_starts", DP_PAD)
        if with_labels:
            picked = np.asarray(indices, dtype=np.int64)
            if self.task == "ner":
                out["labels"] = pad("labels", -100)
            elif self.task == "dp":
                out["labels_arcs"] = pad("arc_labels", DP_PAD)
                out["labels_rels"] = pad("rel_labels", DP_PAD)
            elif self.task == "nli":
                out["labels"] = torch.from_numpy(self.per_feature["labels"][picked].copy())
            else:
                for name in ("start_positions", "end_positions"):
                    out[name] = torch.from_numpy(self.per_feature[name][picked].copy())
        return out
