"""Scenario ``xmod_la``: language arithmetic on X-MOD's modules (beyond the X-MOD paper).

For a target without a module, instead of training one (X-MOD §3.3), merge the modules
of English and the target's related pre-trained language on every layer,
``m = λ·m_en + (1 − λ)·m_rel``, with λ searched on the target's validation split by the
core's search (:func:`~langarith.evaluate.search.search_lambda`, the config's
``lambda_grid`` and ``lambda_search``) and the test split scored once at the chosen λ.
No published system does this.

* **Related language**: the core's URIEL pick (:func:`~langarith.related.pick_related`)
  from the checkpoint's own pre-trained module languages other than the source
  language (a released checkpoint has 13 to 75), overridable per target
  (``xmod.la.related``).
* **Training-free**: the target is tokenized by the base tokenizer and embedded by the
  base embeddings. The added language's tokenizer and embeddings (``xmod.added``) were
  trained together with the target's own fresh module; pairing them with a merged
  module would mix a trained language with a training-free one, and the comparison of
  interest is "train a module" against "no training at all".
* **In place**: one extra module (the target's key) is added to the loaded task model
  once; every λ writes its merge into that module's parameters with the core's in-place
  linear merge (:class:`~langarith.merge.in_place.LanguageVectorSet`), so the model is
  loaded once per task, and λ = 1 writes m_en (λ = 0 m_rel) bit for bit.
* **Splits**: λ on ``validation``, the score on ``test``; for XQuAD, which the X-MOD
  rows score on both halves, the test half only (the validation half chose λ).

Rows go to ``results/scores/xmod-la/<model>/<task>/<target>/seed<s>.csv`` in the core's
format: the primary metric on validation per λ, every metric on test at the chosen λ,
method ``X-MOD LA``, adapters ``en,<related>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from langarith import LangarithError
from langarith.backbone.folder import load_tokenizer
from langarith.evaluate.score_files import ScoreRow, write_scores
from langarith.evaluate.search import best_lambda, search_lambda
from langarith.io import read_json
from langarith.merge.in_place import LanguageVectorSet
from langarith.related import iso3, pick_related
from langarith.settings import XmodFinetuneSettings
from langarith.train.task_features import TASK_METRIC, encode_task, evaluate_task
from langarith.training.inputs import read_rows
from langarith.xmod.finetune import TASK_CLASSES
from langarith.xmod.model import (
    add_module,
    demo_key,
    is_shared,
    layers,
    load_xmod,
    module_key,
    module_keys,
    module_state,
)

__all__ = ["METHOD", "SCENARIO", "la_pool", "live_module", "related_modules", "score_la_targets"]

#: The score folder and CSV scenario of the LA rows.
SCENARIO = "xmod-la"
#: The method column.
METHOD = "X-MOD LA"


def la_pool(config: Any, source: str) -> list[str]:
    """The related-language pool: the checkpoint's module languages other than
    ``source`` that URIEL knows (a locale key URIEL has no features for is left out)."""
    pool = []
    for lang in sorted(module_keys(config)):
        if lang == source:
            continue
        try:
            iso3(lang)
        except LangarithError:
            continue
        pool.append(lang)
    return pool


def related_modules(
    config: Any, targets: Sequence[str], *, source: str, overrides: Mapping[str, str] | None
) -> dict[str, str]:
    """Target → related pre-trained language, by URIEL over :func:`la_pool`."""
    where = "xmod.la"
    if is_shared(config):
        raise LangarithError(
            f"{where}: a SHARED model has one module for every language, so there is no "
            "pair of modules to merge; run xmod_la on an X-MOD set."
        )
    keys = module_keys(config)
    has = [t for t in targets if t in keys]
    if has:
        raise LangarithError(
            f"{where}: target(s) {has} already have a module in this checkpoint; language "
            "arithmetic on modules is for targets without one (xmod.added)."
        )
    wanted = {t: v for t, v in (overrides or {}).items() if t in targets}
    picks = pick_related(targets, la_pool(config, source), wanted)
    return {p.target: p.related for p in picks}


def live_module(model, key: str) -> dict[str, torch.nn.Parameter]:
    """The parameters of module ``key`` in every layer, named as
    :func:`~langarith.xmod.model.module_state` names them (``layer.<i>.<param>``)."""
    return {
        f"layer.{i}.{name}": param
        for i, layer in enumerate(layers(model))
        for name, param in layer.output.adapter_modules[key].named_parameters()
    }


def score_la_targets(
    task_dir: Path | str,
    targets: Mapping[str, Path | str],
    outputs: Mapping[str, Path | str],
    *,
    model: str,
    task: str,
    seed: int,
    grid: Sequence[float],
    search: str = "full",
    source: str = "en",
    overrides: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Search λ of ``LA(en, rel)`` on each target's validation split and score its test
    split at the chosen λ; writes one score CSV per target (``outputs``)."""
    hp = XmodFinetuneSettings.from_mapping(settings or {}, where="xmod.finetune")
    meta = read_json(Path(task_dir) / "metadata.json", "X-MOD task model metadata")
    kind, labels = str(meta["task_kind"]), list(meta["labels"]) or None
    net = load_xmod(task_dir, TASK_CLASSES[kind])
    net.eval()
    tokenizer = load_tokenizer(task_dir)
    related = related_modules(net.config, list(targets), source=source, overrides=overrides)
    where = f"xmod_la on {task_dir}"
    en_key = module_key(net.config, source, where)
    metric = TASK_METRIC[kind]
    written = []
    for target, data_dir in targets.items():
        rel = related[target]
        held = LanguageVectorSet(
            None,
            [module_state(net, en_key), module_state(net, module_key(net.config, rel, where))],
            labels=[source, rel],
        )
        key = demo_key(target)
        add_module(net, key, seed)  # its weights are overwritten by every merge
        live = live_module(net, key)
        net.set_default_language(key)

        curve, chosen, tested = _search(
            net, kind, labels, tokenizer, data_dir, held, live, grid, search, hp
        )
        rows = [
            ScoreRow(SCENARIO, model, task, target, seed, METHOD, f"{source},{rel}",
                     lam, None, split, name, float(value))
            for lam, split, name, value in [
                *((lam, "validation", metric, v) for lam, v in curve.items()),
                *((chosen, "test", name, v) for name, v in sorted(tested.items())),
            ]
        ]  # fmt: skip
        written.append(write_scores(rows, outputs[target]))
    return written


def _search(net, kind, labels, tokenizer, data_dir, held, live, grid, search, hp):
    """The validation curve over λ, the chosen λ and the test metrics at it."""
    metric = TASK_METRIC[kind]
    splits = {}
    for split in ("validation", "test"):
        rows = read_rows(data_dir, split)[: hp.max_eval_rows]
        if not rows:
            raise LangarithError(f"{data_dir} has no {split} rows; xmod_la needs them.")
        encoded = encode_task(kind, rows, tokenizer, labels=labels, max_length=hp.max_length)
        splits[split] = (rows, encoded)

    def at(lam: float, split: str) -> dict[str, float]:
        held.fill("linear", [lam, 1.0 - lam], out=live)
        rows, encoded = splits[split]
        pad_id = tokenizer.pad_token_id
        return evaluate_task(net, kind, encoded, rows=rows, labels=labels, pad_id=pad_id)

    curve = search_lambda(grid, lambda lam: float(at(lam, "validation")[metric]), search)
    chosen = best_lambda(curve)
    return curve, chosen, at(chosen, "test")
