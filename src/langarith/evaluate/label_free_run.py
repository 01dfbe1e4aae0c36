"""Label-free λ choice inside an evaluation job: signals, choices, then test.

A job of a scenario listed in ``label_free.scenarios`` runs as every evaluation job
does (:mod:`langarith.evaluate.runner`: validation curves, labelled choices, test) and,
with the merged weights already in place for each λ, also gathers the selectors'
signals (:mod:`langarith.evaluate.selectors`):

* ``entropy`` costs no forward pass: an observer of the λ engine reads the logits of
  the validation pass each λ runs anyway and averages their entropy over the positions
  a prediction is made at (NLI rows, the first sub-token of each NER word, each QA
  window's context for start and end). Those positions come from the validation
  rows' *input fields only* (:func:`unlabelled_rows`), and the logits depend on the
  inputs alone, so a label that is missing, poisoned or wrong changes nothing (tested);
* ``mlm_loss`` is the masked-LM loss of the merged language adapter on the first
  ``blocks`` blocks of the target's held-out Wikipedia text (its token folder's
  validation split), masked once with a fixed seed so that every λ sees the same
  masks; the backbone's masked-LM model has a language slot of its own that the same
  :class:`~langarith.merge.LanguageVectorSet` fills in place.

The order is the runner's: every selector has picked its λ before the test split is
read; the test scores at those λ are then computed on the job's test split (a λ the
labelled search also chose costs nothing, the engine caches it).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import adapters
import numpy as np
import torch

from langarith import LangarithError
from langarith.backbone.folder import load_backbone, load_tokenizer
from langarith.evaluate.jobs import Curve, ScoreJob
from langarith.evaluate.label_free import LabelFreeRow
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point
from langarith.evaluate.selectors import pick, signals_of
from langarith.evaluate.tasks import Batch, EncodedSplit
from langarith.merge import LanguageVectorSet, live_adapter_parameters
from langarith.modeling import LANG_ADAPTER_NAME, load_language_adapter, quiet_transformers
from langarith.train.task_features import encode_task
from langarith.train.tokens import tokenizer_checksum
from langarith.training.blocks import TokenBlocks
from langarith.training.inputs import data_checksum
from langarith.training.mlm import MlmObjective, special_ids
from langarith.training.token_files import open_token_split

__all__ = [
    "INPUT_FIELDS",
    "EntropySignal",
    "LabelFreeSelection",
    "MlmSignal",
    "prediction_entropy",
    "prediction_positions",
    "target_blocks",
    "unlabelled_rows",
]

log = logging.getLogger(__name__)

#: The fields of a task row a model reads; labels (``ner_tags``, ``label``,
#: ``answers``) are not among them.
INPUT_FIELDS = {
    "ner": ("id", "tokens"),
    "nli": ("id", "premise", "hypothesis"),
    "qa": ("id", "question", "context"),
}

#: Rows per MLM batch.
_MLM_BATCH = 32


def unlabelled_rows(rows: Sequence[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Copies of ``rows`` with their input fields only: nothing else is ever read."""
    if kind not in INPUT_FIELDS:
        raise LangarithError(f"Unknown task kind {kind!r}. Must be one of {list(INPUT_FIELDS)}")
    return [{key: row[key] for key in INPUT_FIELDS[kind]} for row in rows]


def prediction_positions(
    rows: Sequence[Mapping[str, Any]],
    kind: str,
    tokenizer: Any,
    *,
    labels: Sequence[str] | None = None,
    max_length: int = 128,
    doc_stride: int = 128,
) -> tuple[list[int], list[list[bool]] | None]:
    """(length of each feature, positions predicted in each feature) of ``rows``' inputs.

    The features are the evaluation's (``encode_task`` with the same lengths, in the
    same order), built from :func:`unlabelled_rows`; a position is predicted at the
    first sub-token of each NER word and at each context token of a QA window; NLI
    predicts once per row (``None``). ``labels`` are the task *head's* label names.
    """
    encoded = encode_task(
        kind,
        unlabelled_rows(rows, kind),
        tokenizer,
        labels=labels,
        max_length=max_length,
        doc_stride=doc_stride,
    )
    lengths = [len(ids) for ids in encoded.input_ids]
    if kind == "ner":
        flags = []
        for words in encoded.word_ids:
            previous, first = None, []
            for word in words:
                first.append(word is not None and word != previous)
                previous = word
            flags.append(first)
        return lengths, flags
    if kind == "qa":
        return lengths, [[o is not None for o in offsets] for offsets in encoded.offset_mapping]
    return lengths, None


def prediction_entropy(logits: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[float, int]:
    """(sum, count) of the entropies (nats) of ``softmax(logits)`` over the last axis.

    ``mask`` (the shape of ``logits`` without its last axis) keeps the positions that
    count; ``-inf`` logits are impossible classes. The caller divides the sums of all
    batches by their counts.
    """
    logp = torch.log_softmax(logits.double(), dim=-1)
    entropy = -(logp.exp() * logp).nansum(dim=-1)
    if mask is not None:
        entropy = entropy[mask]
    return float(entropy.sum()), int(entropy.numel())


def _positions(flags: Sequence[Sequence[bool]], index: np.ndarray, width: int) -> torch.Tensor:
    mask = np.zeros((len(index), width), dtype=bool)
    for row, i in enumerate(index):
        mask[row, : len(flags[i])] = flags[i]
    return torch.from_numpy(mask)


class EntropySignal:
    """Mean prediction entropy per merged point, read from the engine's validation passes.

    An observer of :class:`LambdaGridEngine` (:attr:`LambdaGridEngine.observers`): for
    each batch of the split named ``split_name`` it adds the entropies of the
    predictions at the positions of :func:`prediction_positions` under the point's key.
    The engine runs each (split, point) once, so every point is counted once.
    """

    def __init__(
        self,
        kind: str,
        lengths: Sequence[int],
        flags: list[list[bool]] | None,
        split_name: str = "validation",
    ) -> None:
        self.kind = kind
        self.lengths = list(lengths)
        self.flags = flags
        self.split_name = split_name
        self._sums: dict[tuple, dict[int, tuple[float, int]]] = {}
        self._masks: dict[int, torch.Tensor] = {}

    def _mask(self, batch: Batch, width: int, device: torch.device) -> torch.Tensor:
        assert self.flags is not None
        key = id(batch)
        if key not in self._masks:
            self._masks[key] = _positions(self.flags, batch.index, width).to(device)
        return self._masks[key]

    def check(self, split: EncodedSplit) -> None:
        """The split's features are the ones the positions were made for."""
        if list(split.info.get("lengths", [])) != self.lengths:
            raise LangarithError(
                f"the {split.name} split's features differ from those of its unlabelled "
                "inputs; the entropy selector cannot read this split"
            )

    def __call__(self, split: EncodedSplit, output: Any, batch: Batch, key: tuple | None) -> None:
        if split.name != self.split_name or key is None:
            return
        if self.kind == "qa":
            logits = output.start_logits
            mask = self._mask(batch, logits.shape[1], logits.device)
            keep = mask.any(dim=-1)  # windows with a context to answer from
            starts = _masked_entropy(output.start_logits, mask)
            ends = _masked_entropy(output.end_logits, mask)
            value = (float((0.5 * (starts + ends))[keep].sum()), int(keep.sum()))
        elif self.kind == "ner":
            mask = self._mask(batch, output.logits.shape[1], output.logits.device)
            value = prediction_entropy(output.logits, mask)
        else:
            value = prediction_entropy(output.logits)
        self._sums.setdefault(key, {})[id(batch)] = value

    def value(self, point: Point) -> float:
        """The mean entropy of ``point`` (its validation pass must have run)."""
        parts = self._sums.get(point.key())
        if not parts:
            raise LangarithError(f"no validation pass of {point} was observed")
        total = sum(s for s, _ in parts.values())
        count = sum(n for _, n in parts.values())
        if count == 0:
            raise LangarithError("the unlabelled target inputs have no position to predict")
        return total / count


def _masked_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Entropy per row of ``softmax(logits)`` restricted to the positions of ``mask``."""
    logp = torch.log_softmax(logits.double().masked_fill(~mask, -math.inf), dim=-1)
    return -(logp.exp() * logp).nansum(dim=-1)


class MlmSignal:
    """The masked-LM loss of merged language adapters on fixed, masked target text.

    The backbone's masked-LM model with a language-adapter slot (θ_init's architecture)
    is loaded once; :meth:`loss` writes a point's merged weights into the slot in
    place, as the λ engine does in the task model, and averages the cross-entropy over
    the same masked tokens for every point.
    """

    def __init__(
        self,
        backbone_dir: str | PathLike[str],
        init_dir: str | PathLike[str],
        vectors: LanguageVectorSet,
        blocks: torch.Tensor,
        *,
        mask_seed: int,
        mlm_probability: float,
        device: torch.device,
    ) -> None:
        with quiet_transformers():
            model, tokenizer = load_backbone(backbone_dir)
            adapters.init(model)
            load_language_adapter(model, init_dir)
        model.set_active_adapters(LANG_ADAPTER_NAME)
        for param in model.parameters():
            param.requires_grad_(False)
        self.model = model.to(device).eval()
        self.vectors = vectors
        self.live = live_adapter_parameters(self.model, LANG_ADAPTER_NAME, vectors.names)
        start_id, end_id = special_ids(tokenizer)
        objective = MlmObjective(
            mask_token_id=tokenizer.mask_token_id,
            vocab_size=len(tokenizer),
            special_ids=tuple(sorted({start_id, end_id, int(tokenizer.pad_token_id or start_id)})),
            probability=float(mlm_probability),
            seed=int(mask_seed),
            device=device,
        )
        self._evaluate = objective.evaluator(self.model, blocks, _MLM_BATCH)  # masks drawn once
        self.n_blocks = int(blocks.shape[0])

    def loss(self, point: Point) -> float:
        """Mean MLM loss (nats per masked token) with ``point``'s merged language adapter."""
        given = dict(point.weights)
        weights = [float(given.get(label, 0.0)) for label in self.vectors.labels]
        self.vectors.fill(point.merge, weights, out=self.live, **point.params())
        with torch.inference_mode():
            return float(self._evaluate()["loss"])


def target_blocks(
    backbone_dir: str | PathLike[str],
    tokens_dir: str | PathLike[str],
    text_dir: str | PathLike[str],
    *,
    block_size: int,
    blocks: int,
) -> torch.Tensor:
    """The first ``blocks`` blocks of the target's held-out text (validation split of its
    token folder, checked against the backbone's tokenizer and the corpus)."""
    tokenizer = load_tokenizer(backbone_dir)
    start_id, end_id = special_ids(tokenizer)
    split = open_token_split(
        tokens_dir,
        "validation",
        tokenizer_sha256=tokenizer_checksum(backbone_dir),
        corpus_checksum=data_checksum(text_dir),
    )
    held_out = TokenBlocks(split, int(block_size), start_id, end_id, split.tokens)
    n = min(int(blocks), len(held_out))
    if n == 0:
        raise LangarithError(
            f"{tokens_dir}: the validation text is shorter than one block of {block_size} "
            "tokens; mlm_loss has no text to score"
        )
    return held_out.take(np.arange(n))


@dataclass
class LabelFreeSelection:
    """The selectors of one evaluation job: signals gathered, λ picked, then test rows.

    Made by :meth:`start` before the job's validation passes (so the entropy observer
    sees them); :meth:`choose` runs before the test split is opened; :meth:`rows` after.
    ``point_of(curve, λ)`` is the merge a curve evaluates at λ
    (:func:`langarith.evaluate.runner.curve_point`).
    """

    job: ScoreJob
    engine: LambdaGridEngine
    selectors: tuple[str, ...]
    point_of: Callable[[Curve, float], Point]
    entropy: EntropySignal | None = None
    mlm: MlmSignal | None = None
    signals: dict[str, dict[str, dict[float, float]]] | None = None
    chosen: dict[str, dict[str, float]] | None = None
    seconds: float = 0.0

    @classmethod
    def start(
        cls,
        job: ScoreJob,
        engine: LambdaGridEngine,
        settings: Mapping[str, Any],
        validation_inputs: Sequence[Mapping[str, Any]],
        point_of: Callable[[Curve, float], Point],
        *,
        tokens_dir: str | PathLike[str] | None = None,
        text_dir: str | PathLike[str] | None = None,
    ) -> LabelFreeSelection:
        """Set up the signals ``settings`` (``label_free_params``' ``label_free``) need.

        ``validation_inputs``: the validation rows, of which only the input fields are
        read (:func:`unlabelled_rows`).
        """
        started = time.perf_counter()
        selectors = tuple(str(s) for s in settings["selectors"])
        wanted = signals_of(selectors)
        selection = cls(job, engine, selectors, point_of)
        if "entropy" in wanted:
            tm = engine.task_model
            lengths, flags = prediction_positions(
                validation_inputs,
                job.kind,
                tm.tokenizer,
                labels=tm.labels,
                max_length=job.max_length,
                doc_stride=job.doc_stride,
            )
            selection.entropy = EntropySignal(job.kind, lengths, flags)
            engine.observers.append(selection.entropy)
        if "mlm_loss" in wanted:
            if tokens_dir is None or text_dir is None:
                raise LangarithError("selector mlm_loss needs the target's token folder and text")
            blocks = target_blocks(
                job.backbone,
                tokens_dir,
                text_dir,
                block_size=int(settings["block_size"]),
                blocks=int(settings["blocks"]),
            )
            selection.mlm = MlmSignal(
                job.backbone,
                job.init,
                engine.vectors,
                blocks,
                mask_seed=int(settings["mask_seed"]),
                mlm_probability=float(settings["mlm_probability"]),
                device=engine.task_model.device,
            )
        selection.seconds += time.perf_counter() - started
        return selection

    def choose(self, validation: EncodedSplit) -> dict[str, dict[str, float]]:
        """Every selector's λ of every curve (curve method → selector → λ).

        Every grid point is passed through the engine on ``validation`` (free when the
        λ search already scored it: the engine caches points), so the entropy observer
        has seen it; no label is read for the choice.
        """
        started = time.perf_counter()
        if self.entropy is not None:
            self.entropy.check(validation)
        signals: dict[str, dict[str, dict[float, float]]] = {}
        for curve in self.job.curves:
            per = signals.setdefault(curve.method, {})
            for lam in curve.grid:
                point = self.point_of(curve, lam)
                if self.entropy is not None:
                    self.engine.score(point, validation)
                    per.setdefault("entropy", {})[float(lam)] = self.entropy.value(point)
                if self.mlm is not None:
                    per.setdefault("mlm_loss", {})[float(lam)] = self.mlm.loss(point)
        self.signals = signals
        self.chosen = {
            curve.method: {
                name: pick(name, curve.grid, signals[curve.method]) for name in self.selectors
            }
            for curve in self.job.curves
        }
        self.seconds += time.perf_counter() - started
        return self.chosen

    def rows(self, test: Callable[[Point], Mapping[str, float]]) -> list[LabelFreeRow]:
        """Signal rows of every λ, and each selector's λ with its test metrics."""
        if self.signals is None or self.chosen is None:
            raise LangarithError("label-free λ: choose() must run before the test rows")
        started = time.perf_counter()
        job = self.job
        identity = (job.scenario, job.model, job.task, job.target, job.seed)
        rows: list[LabelFreeRow] = []
        for curve in job.curves:
            of_curve = (*identity, curve.method, ",".join(curve.adapters))
            for signal, values in self.signals[curve.method].items():
                for lam, value in sorted(values.items()):
                    rows.append(LabelFreeRow(*of_curve, "", lam, "signal", signal, value))
            for name, lam in self.chosen[curve.method].items():
                metrics = test(self.point_of(curve, lam))
                for metric, value in sorted(metrics.items()):
                    rows.append(LabelFreeRow(*of_curve, name, lam, "choice", metric, float(value)))
        self.seconds += time.perf_counter() - started
        log.info(
            "label-free λ of %s/%s/%s/%s/seed%d: %s (%.1f s)",
            *identity,
            "; ".join(
                f"{method}: " + ", ".join(f"{name} λ={lam:g}" for name, lam in picks.items())
                for method, picks in self.chosen.items()
            ),
            self.seconds,
        )
        return rows
