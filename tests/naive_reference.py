"""The naive λ loop, kept as a reference for tests and ``benchmarks/lambda_grid.py``.

Test code, kept out of the package (the benchmark puts ``tests/`` on ``sys.path``).

For each λ it does what a straightforward script would: build a fresh model from the
backbone folder, load the task adapter and both language adapters from disk, average
them with the ``adapters`` library (``average_adapter``, which leaves the invertible
adapter out) and merge the invertible adapter's weights by hand, then evaluate with
``langarith.train.task_features.evaluate_task`` (batches of 32 in dataset order, per-example
decoding in Python). Its encoders and decoders are the training stage's, not the
engine's, so equal scores check the engine's whole evaluation path, not only the merge.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import torch
from adapters.composition import Stack

from langarith.adapter_io import load_adapter_into
from langarith.evaluate.model import LANG_SLOT, load_task_model
from langarith.modeling import quiet_transformers
from langarith.train.task_features import encode_task, evaluate_task

__all__ = ["naive_lambda_scores"]


def _merge_invertible(model: Any, names: Sequence[str], weights: Sequence[float]) -> None:
    """θ_slot = Σ wᵢ θᵢ over the invertible adapter's parameters, by hand."""
    base = model.base_model
    if LANG_SLOT not in base.invertible_adapters:  # average_adapter skipped it
        base.add_invertible_adapter(LANG_SLOT)
    modules = base.invertible_adapters
    target = modules[LANG_SLOT].state_dict()
    sources = [modules[name].state_dict() for name in names]
    merged = {
        key: sum(w * src[key] for w, src in zip(weights, sources, strict=True)) for key in target
    }
    modules[LANG_SLOT].load_state_dict(merged)


def _merge_pair(tm: Any, weights: Sequence[float]) -> None:
    """Replace the model's language slot by Σ wᵢθᵢ of ``la_first``/``la_second``."""
    model = tm.model
    with quiet_transformers():
        model.delete_adapter(LANG_SLOT)
        model.average_adapter(
            LANG_SLOT, ["la_first", "la_second"], weights=list(weights), normalize_weights=False
        )
        _merge_invertible(model, ["la_first", "la_second"], weights)
        model.active_adapters = Stack(LANG_SLOT, tm.task_name)
    model.to(tm.device).eval()


def _load_pair(tm: Any, first_dir, second_dir) -> None:
    with quiet_transformers():
        load_adapter_into(tm.model, first_dir, load_as="la_first", with_head=False)
        load_adapter_into(tm.model, second_dir, load_as="la_second", with_head=False)


def naive_lambda_scores(
    backbone_dir: str | PathLike[str],
    task_adapter_dir: str | PathLike[str],
    init_dir: str | PathLike[str],
    first_dir: str | PathLike[str],
    second_dir: str | PathLike[str],
    kind: str,
    rows: Sequence[Mapping[str, Any]],
    lambdas: Sequence[float],
    *,
    max_length: int = 128,
    doc_stride: int = 128,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    load_once: bool = False,
) -> tuple[dict[float, dict[str, float]], float]:
    """Scores of LA(first, second) at each λ with the ``adapters`` library's averaging.

    By default everything is reloaded per λ (backbone, task adapter and head, both
    language adapters). With ``load_once`` the loop is what a researcher would write:
    the model and the two language adapters are loaded once, before the clock starts as
    the engine's load is not in its per-λ time either, and each λ only re-merges the
    language adapters (``average_adapter`` + the invertible adapter) and evaluates.

    Returns (λ → metrics, seconds of the λ loop). The features are built once, before
    the clock starts, as the engine's are.
    """
    probe = load_task_model(backbone_dir, task_adapter_dir, init_dir, kind, device=device)
    labels, tokenizer = probe.labels, probe.tokenizer
    encoded = encode_task(
        kind, rows, tokenizer, labels=labels, max_length=max_length, doc_stride=doc_stride
    )
    if load_once:
        _load_pair(probe, first_dir, second_dir)
    else:
        del probe
    scores: dict[float, dict[str, float]] = {}
    started = time.perf_counter()
    for lam in lambdas:
        if load_once:
            tm = probe
        else:
            tm = load_task_model(backbone_dir, task_adapter_dir, init_dir, kind, device=device)
            _load_pair(tm, first_dir, second_dir)
        _merge_pair(tm, [float(lam), 1.0 - float(lam)])
        scores[float(lam)] = evaluate_task(
            tm.model,
            kind,
            encoded,
            rows=rows,
            labels=labels,
            batch_size=batch_size,
            device=tm.device,
            pad_id=tokenizer.pad_token_id,
        )
    return scores, time.perf_counter() - started
