"""The fast λ-grid engine: one model, merged weights written in place, cached scores.

A λ grid is many evaluations of one backbone whose language adapter differs slightly
from point to point. :class:`LambdaGridEngine` therefore

* loads the backbone, the task adapter and head, and a language-adapter slot once
  (:func:`~langarith.evaluate.model.load_task_model`);
* reads θ_init and the adapters of the job once and keeps them on the evaluation device
  (:class:`~langarith.merge.LanguageVectorSet`);
* writes each point's merged weights straight into the slot's live parameters
  (``copy_``, no new modules, no reload), with the in-place form of the point's
  registered merge method;
* encodes each split once, in length-sorted dynamic batches already on the device
  (:func:`~langarith.evaluate.tasks.encode_split`);
* runs the forward passes under ``torch.inference_mode()``, through a
  :class:`~langarith.evaluate.replay.ForwardRunner`: on a CPU, once a batch has been
  passed a few times, from a TorchScript trace checked bit for bit against the eager
  pass, and with several threads on lanes (whole batches side by side, each operator
  single-threaded) rather than every operator split over the threads;
* remembers every (split, point) score, so a point shared by two methods (λ = 1 of
  ``LA(en, rel)`` is the pEA baseline) is evaluated once;
* gives, on request, per-row statistics of a point on a split
  (:meth:`LambdaGridEngine.example_stats`) for the racing search, from the same pass
  as the point's score (a raced point is not run again to be reported);
* shows every raw model output to its ``observers`` (the label-free selectors read the
  entropy of the validation passes from them, without a pass of their own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
import torch

from langarith import LangarithError
from langarith.evaluate.model import TaskModel, load_task_model, pick_device
from langarith.evaluate.replay import ForwardRunner
from langarith.evaluate.tasks import DEFAULT_MAX_BATCH, Batch, EncodedSplit, encode_split
from langarith.merge import LanguageVectorSet, live_adapter_parameters
from langarith.train.task_features import EncodedTask

__all__ = ["LambdaGridEngine", "Observer", "Point"]

#: ``observer(split, model output, batch, point key)``: called for every batch a pass runs.
Observer = Callable[[EncodedSplit, Any, Batch, tuple], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Point:
    """One set of language-adapter weights to evaluate.

    Attributes:
        merge: a registered merge method (:data:`~langarith.merge.MERGE_METHODS`):
            ``linear`` (Σ wᵢθᵢ, weights summing to 1: a single adapter, or
            LA(A, B) = λθ_A + (1 − λ)θ_B = θ_init + λτ_A + (1 − λ)τ_B) or ``ties``
            (θ_init + λ·TIES(τ…) with ``top_k``).
        weights: (adapter label, weight) pairs; labels not listed weigh 0.
        lam: TIES' λ (``None`` for ``linear``).
        top_k: TIES' top-k percentage (``None`` for ``linear``).
    """

    merge: str
    weights: tuple[tuple[str, float], ...]
    lam: float | None = None
    top_k: float | None = None

    @classmethod
    def single(cls, label: str) -> Point:
        return cls("linear", ((label, 1.0),))

    @classmethod
    def pair(cls, first: str, second: str, lam: float) -> Point:
        """LA(first, second) at λ: θ_init + λτ_first + (1 − λ)τ_second."""
        return cls("linear", ((first, float(lam)), (second, 1.0 - float(lam))))

    @classmethod
    def ties(cls, labels: Sequence[str], lam: float, top_k: float) -> Point:
        return cls("ties", tuple((label, 1.0) for label in labels), float(lam), float(top_k))

    def params(self) -> dict[str, float]:
        """The merge method's parameters this point sets (``lam``, ``top_k``)."""
        given = {"lam": self.lam, "top_k": self.top_k}
        return {name: float(value) for name, value in given.items() if value is not None}

    def key(self) -> tuple:
        """Identity of the merged weights: zero weights dropped, order-free, rounded.

        ``LA(en, it)`` at λ = 1 and the single adapter ``en`` have the same key, because
        the merge writes exactly θ_en for both; two TIES points differ by λ (to 12
        decimals) or top-k.
        """
        weights = tuple(sorted((label, round(w, 12)) for label, w in self.weights if w != 0))
        params = tuple((name, round(value, 12)) for name, value in self.params().items())
        return (self.merge, weights, *params)


class LambdaGridEngine:
    """Evaluate many merges of a job's language adapters on one loaded model.

    Args:
        task_model: the loaded model (see :func:`~langarith.evaluate.model.load_task_model`).
        vectors: θ_init and the job's adapters, labelled (e.g. ``en``, ``it``,
            ``pt/budget10000``), on the model's device.
    """

    def __init__(self, task_model: TaskModel, vectors: LanguageVectorSet) -> None:
        self.task_model = task_model
        self.vectors = vectors
        self.live = live_adapter_parameters(task_model.model, task_model.lang_slot, vectors.names)
        self._start_state()

    def _start_state(self) -> None:
        """Empty caches and counters, no point in the weights: what a new engine has
        (a subclass that finds its live parameters elsewhere calls it too)."""
        self._cache: dict[tuple[str, tuple], dict[str, float]] = {}
        self._stats: dict[tuple[str, tuple], np.ndarray] = {}
        self._outputs_of: dict[tuple[str, tuple], list[Any]] = {}
        self.keep_outputs = False
        self._current: tuple | None = None
        self.forward_passes = 0
        self.forward_seconds = 0.0
        self.fill_seconds = 0.0
        self.observers: list[Observer] = []
        self.runner = ForwardRunner(self.task_model.model, self.task_model.device)

    @classmethod
    def load(
        cls,
        backbone_dir: str | PathLike[str],
        task_adapter_dir: str | PathLike[str],
        init_dir: str | PathLike[str],
        adapter_dirs: Mapping[str, str | PathLike[str]],
        kind: str,
        *,
        device: str | torch.device | None = None,
    ) -> LambdaGridEngine:
        """Load the model and the adapters (label → folder) of one evaluation job."""
        device = pick_device(device)
        started = time.perf_counter()
        vectors = LanguageVectorSet.from_dirs(init_dir, dict(adapter_dirs), device=device)
        task_model = load_task_model(backbone_dir, task_adapter_dir, init_dir, kind, device=device)
        log.info(
            "loaded %s model with task adapter %s and %d language adapter(s) on %s in %.1f s",
            kind,
            task_adapter_dir,
            len(vectors),
            device,
            time.perf_counter() - started,
        )
        return cls(task_model, vectors)

    @property
    def labels(self) -> list[str]:
        return list(self.vectors.labels)

    def encode(
        self,
        name: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        max_length: int = 128,
        doc_stride: int = 128,
        max_tokens: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        sort: bool = True,
        batch_size: int = 32,
        encoded: EncodedTask | None = None,
    ) -> EncodedSplit:
        """Encode a split for this model (see :func:`~langarith.evaluate.tasks.encode_split`)."""
        tm = self.task_model
        split = encode_split(
            name,
            rows,
            tm.kind,
            tm.tokenizer,
            labels=tm.labels,
            max_length=max_length,
            doc_stride=doc_stride,
            device=tm.device,
            max_tokens=max_tokens,
            max_batch=max_batch,
            sort=sort,
            batch_size=batch_size,
            encoded=encoded,
        )
        log.info(
            "%s split: %d examples, %d features in %d batches (%d padded tokens)",
            name,
            split.n_examples,
            split.n_features,
            len(split.batches),
            split.tokens,
        )
        return split

    # --- weights ---------------------------------------------------------------------

    def _full_weights(self, point: Point) -> list[float]:
        given = dict(point.weights)
        unknown = sorted(set(given) - set(self.vectors.labels))
        if unknown:
            raise LangarithError(
                f"Point uses adapter(s) {unknown} that the job did not load; loaded: "
                f"{self.vectors.labels}"
            )
        return [float(given.get(label, 0.0)) for label in self.vectors.labels]

    def apply(self, point: Point) -> None:
        """Write the point's merged language adapter into the live parameters.

        The merge is the registered method's in-place form
        (:meth:`LanguageVectorSet.fill`); a point equal to the one in the model is free.
        """
        key = point.key()
        if key == self._current:
            return
        started = time.perf_counter()
        weights = self._full_weights(point)
        self._current = None  # a failed fill leaves weights of no known point
        self.vectors.fill(point.merge, weights, out=self.live, **point.params())
        self._current = key
        self.fill_seconds += time.perf_counter() - started

    # --- evaluation ------------------------------------------------------------------

    def _forward(self, split: EncodedSplit) -> list[Any]:
        """One pass over ``split`` with the current weights: the reduced outputs."""
        if not self.observers:  # each batch is reduced on its lane, right after its pass
            return list(self.runner.run(split.batches, then=split.reduce))
        parts = []
        key = self._current
        with torch.inference_mode():
            for batch, output in zip(split.batches, self.runner.run(split.batches), strict=True):
                for observe in self.observers:
                    observe(split, output, batch, key)
                parts.append(split.reduce(output, batch))
        return parts

    def expect_passes(self, split: EncodedSplit, passes: int) -> None:
        """Say ``split`` is about to be scored at ``passes`` points (a job's full grid or
        coarse-to-fine search): the runner then checks its replay from the first pass."""
        self.runner.expect(split.batches, passes)

    def run(self, split: EncodedSplit) -> dict[str, float]:
        """One pass over ``split`` with the weights currently in the model."""
        started = time.perf_counter()
        metrics = split.finish(self._forward(split))
        self.forward_passes += 1
        self.forward_seconds += time.perf_counter() - started
        return metrics

    def _outputs(self, point: Point, split: EncodedSplit) -> list[Any]:
        """The reduced outputs of one pass of ``point`` over ``split``.

        With :attr:`keep_outputs` (the racing search sets it) they are kept per point and
        :meth:`score` and :meth:`example_stats` share them, so a point the race scored on
        every row is not run again to be reported, nor a baseline raced; otherwise (the
        full grid on a large split) nothing is held beyond the scores.
        """
        key = (split.name, point.key())
        if key in self._outputs_of:
            return self._outputs_of[key]
        self.apply(point)
        started = time.perf_counter()
        outputs = self._forward(split)
        self.forward_passes += 1
        self.forward_seconds += time.perf_counter() - started
        if self.keep_outputs:
            self._outputs_of[key] = outputs
        return outputs

    def score(self, point: Point, split: EncodedSplit) -> dict[str, float]:
        """Metrics of ``point`` on ``split`` (cached per split and merged weights)."""
        key = (split.name, point.key())
        if key not in self._cache:
            outputs = self._outputs(point, split)
            started = time.perf_counter()
            self._cache[key] = split.finish(outputs)
            self.forward_seconds += time.perf_counter() - started
        return dict(self._cache[key])

    def example_stats(self, point: Point, split: EncodedSplit) -> np.ndarray:
        """Per-row statistics of ``point`` on ``split`` (see ``EncodedSplit.example_stats``).

        Cached like :meth:`score`, and from the same pass; the racing search scores
        subsets of the validation rows with it.
        """
        key = (split.name, point.key())
        if key not in self._stats:
            self._stats[key] = split.example_stats(self._outputs(point, split))
        return self._stats[key]

    def clear_cache(self) -> None:
        """Forget every cached score (benchmarks re-time points they already scored)."""
        self._cache.clear()
        self._stats.clear()
        self._outputs_of.clear()

    def bare_pass(self, split: EncodedSplit) -> float:
        """Seconds of the forward passes alone over ``split`` (no scoring): the limit.

        The passes run as the engine's do (:class:`~langarith.evaluate.replay.ForwardRunner`:
        replayed once checked, on lanes).
        """
        if self.task_model.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in self.runner.run(split.batches):
            pass
        if self.task_model.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started
