"""Figure 3 of the TLR seed: how close English and target representations are, per layer.

For each variant (MAD-X and ALL-MULTI by default) the backbone runs with the inference
stack of that variant, ``Stack(L_lang, TA)``: English examples through the English
language adapter, target examples through the target's. The first token's hidden state
([CLS] for BERT, ``<s>`` for XLM-R) of example i in English and example i in the target
are compared by cosine similarity, at every layer (0: the embedding output), and the
mean over examples is averaged over targets and seeds. Examples are paired by their
index in the split: XNLI's splits are translations of the same items in the same order.
The offline demo's NLI is generated per language, not translated, so its pairs are not
parallel and its curves show the stacks only, not alignment of meaning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from langarith import LangarithError
from langarith.adapter_io import load_adapter_into
from langarith.backbone.folder import load_tokenizer
from langarith.data import read_split
from langarith.io import read_json, write_csv_records
from langarith.modeling import (
    activate_task_stack,
    load_adapter_model,
    load_language_adapter,
    quiet_transformers,
)
from langarith.task_kinds import TASK_MAX_LENGTH

__all__ = [
    "ALIGNMENT_COLUMNS",
    "AlignmentRun",
    "first_token_states",
    "layer_cosines",
    "run_alignment_job",
    "write_alignment",
]

log = logging.getLogger(__name__)

#: Columns of the alignment CSV: one row per (variant, layer).
ALIGNMENT_COLUMNS = (
    "model",
    "task",
    "variant",
    "method",
    "layer",
    "cosine",
    "targets",
    "seeds",
    "examples",
)


@dataclass(frozen=True)
class AlignmentRun:
    """One task adapter of a variant (one seed) and the language adapters it stacks on."""

    variant: str
    method: str
    seed: int
    task_adapter: Path
    lang_adapters: Mapping[str, Path]


def _texts(row: Mapping[str, Any], kind: str) -> tuple[Any, Any]:
    """The model input of a row, as the task encodes it (pair for NLI and QA)."""
    if kind == "nli":
        return row["premise"], row["hypothesis"]
    if kind == "qa":
        return row["question"], row["context"]
    if kind == "ner":
        return list(row["tokens"]), None
    raise LangarithError(
        f"tlr.alignment: task kind {kind!r} has no [CLS] input; use nli, ner or qa"
    )


def _encode(tokenizer, rows: Sequence[Mapping[str, Any]], kind: str, max_length: int) -> dict:
    first, second = zip(*(_texts(r, kind) for r in rows), strict=True)
    pair = None if kind == "ner" else list(second)
    return tokenizer(
        list(first),
        pair,
        is_split_into_words=kind == "ner",
        truncation="only_second" if kind == "qa" else True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


def first_token_states(
    model,
    tokenizer,
    rows: Sequence[Mapping[str, Any]],
    kind: str,
    *,
    max_length: int,
    batch_size: int = 32,
) -> np.ndarray:
    """Hidden states of the first token, ``[layers + 1, examples, hidden]``, with the
    model's active adapters (the base model's outputs, no head)."""
    parts = []
    base = model.base_model
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            enc = _encode(tokenizer, rows[start : start + batch_size], kind, max_length)
            out = base(**enc, output_hidden_states=True)
            parts.append(torch.stack([h[:, 0, :] for h in out.hidden_states]).float().numpy())
    return np.concatenate(parts, axis=1)


def layer_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over examples of cos(a_i, b_i), per layer (inputs ``[layers, examples, hidden]``)."""
    if a.shape != b.shape:
        raise LangarithError(f"tlr.alignment: paired states of shapes {a.shape} and {b.shape}")
    dot = (a * b).sum(-1)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (dot / np.maximum(norms, 1e-12)).mean(-1)


def _max_length(ta_dir: Path, kind: str) -> int:
    meta_path = ta_dir / "metadata.json"
    meta = read_json(meta_path, "Task adapter metadata") if meta_path.exists() else {}
    return int((meta.get("hparams") or {}).get("max_length") or TASK_MAX_LENGTH[kind])


def _leave_out(ta_dir: Path) -> list[int]:
    config = read_json(ta_dir / "adapter_config.json", "Task adapter config")
    return [int(x) for x in ((config.get("config") or {}).get("leave_out") or [])]


def _run_cosines(
    backbone: Path, run: AlignmentRun, rows: Mapping[str, list], kind: str, source: str
) -> dict[str, np.ndarray]:
    """Per target, the per-layer mean cosine of one task adapter's stacks."""
    tokenizer = load_tokenizer(backbone)
    leave_out = _leave_out(run.task_adapter)
    with quiet_transformers():
        model = load_adapter_model(backbone, for_inference=True)
        slots = {}
        for i, (lang, folder) in enumerate(run.lang_adapters.items()):
            slots[lang] = f"align{i}"
            load_language_adapter(model, folder, name=slots[lang], leave_out=leave_out or None)
        task_name = load_adapter_into(model, run.task_adapter, with_head=True)
    model.eval()
    max_length = _max_length(run.task_adapter, kind)
    states = {}
    for lang in [source, *[t for t in rows if t != source]]:
        activate_task_stack(model, task_name, slots[lang])
        states[lang] = first_token_states(model, tokenizer, rows[lang], kind, max_length=max_length)
    return {t: layer_cosines(states[source], states[t]) for t in rows if t != source}


def write_alignment(
    output: Path | str,
    *,
    model: str,
    task: str,
    kind: str,
    backbone: Path | str,
    source: str,
    data: Mapping[str, Path | str],
    runs: Sequence[AlignmentRun],
    examples: int,
    split: str = "test",
) -> Path:
    """Compute every run's per-layer cosines and write one row per (variant, layer):
    the mean over the targets of ``data`` (all but ``source``) and the runs' seeds."""
    if source not in data:
        raise LangarithError(f"tlr.alignment needs the source {source}'s {split} data")
    rows = {lang: read_split(folder, split)[:examples] for lang, folder in data.items()}
    n = min(len(r) for r in rows.values())
    if n == 0:
        raise LangarithError(f"tlr.alignment: a {split} split of {sorted(data)} has no rows")
    rows = {lang: r[:n] for lang, r in rows.items()}
    targets = [t for t in rows if t != source]
    per_variant: dict[str, list[np.ndarray]] = {}
    methods, seeds = {}, {}
    for run in runs:
        missing = sorted(set(rows) - set(run.lang_adapters))
        if missing:
            raise LangarithError(f"tlr.alignment: no language adapter for {missing}")
        cosines = _run_cosines(Path(backbone), run, rows, kind, source)
        per_variant.setdefault(run.variant, []).extend(cosines[t] for t in targets)
        methods[run.variant] = run.method
        seeds.setdefault(run.variant, set()).add(run.seed)
        log.info(
            "alignment %s seed %d: %s",
            run.variant,
            run.seed,
            np.round(np.mean(list(cosines.values()), 0), 3),
        )
    records = [
        {
            "model": model,
            "task": task,
            "variant": variant,
            "method": methods[variant],
            "layer": layer,
            "cosine": round(float(value), 6),
            "targets": " ".join(targets),
            "seeds": len(seeds[variant]),
            "examples": n,
        }
        for variant, curves in per_variant.items()
        for layer, value in enumerate(np.mean(curves, axis=0))
    ]
    return write_csv_records(output, ALIGNMENT_COLUMNS, records)


def run_alignment_job(backbone: Path | str, job: Mapping[str, Any]) -> Path:
    """The workflow job: :func:`write_alignment` from the plain values of
    :func:`langarith.tlr.variants.alignment_spec`."""
    runs = [
        AlignmentRun(
            str(r["variant"]),
            str(r["method"]),
            int(r["seed"]),
            Path(r["task_adapter"]),
            {lang: Path(d) for lang, d in dict(r["lang_adapters"]).items()},
        )
        for r in job["runs"]
    ]
    return write_alignment(
        job["output"],
        model=str(job["model"]),
        task=str(job["task"]),
        kind=str(job["kind"]),
        backbone=backbone,
        source=str(job["source"]),
        data=dict(job["data"]),
        runs=runs,
        examples=int(job["examples"]),
    )
