"""``langarith export``: the merged language adapter a finished run chose, as a folder.

A run scores merged adapters on a λ grid but keeps only the scores; a user who wants
the adapter for a zero-shot target must rebuild it. This module reads one score CSV
(``<results>/scores/<scenario>/<model>/<task>/<target>/seed<s>.csv``), takes the test
row of a merged method (the λ the evaluation chose on the target's validation split,
:func:`langarith.report.scores.chosen_points`), merges the same adapters at that λ
with :func:`langarith.merge.merge_adapters`, and writes an AdapterHub folder
(``adapters``' default ``model.load_adapter(path)`` loads it) with ``metadata.json``
and a model card ``README.md``: sources, weights, how λ was chosen, the validation and
test scores and the command that made it.

The merge repeats the evaluation's: a curve between two adapters is
LA(A, B) = λθ_A + (1 − λ)θ_B (``linear``), a TIES curve θ_init + λ·TIES(τ…) with its
top-k (:class:`langarith.evaluate.jobs.Curve`), an N-way ``LA-k`` θ_init + Σ wᵢτᵢ at
the weights its search chose (written in the row's ``adapters`` cell, ``en=0.5,...``;
``linear`` on the simplex, ``task-arithmetic`` otherwise). The adapters are the score row's
``adapters`` cell, found where the workflow writes them (:mod:`langarith.paths`) under
the results folder or, for a paper setup's ``results/<setup>``, its parent.
"""

from __future__ import annotations

import argparse
import math
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from langarith import LangarithError
from langarith.adapter_io import ADAPTER_FILES, METADATA_NAME
from langarith.evaluate.scenarios import SCENARIOS
from langarith.evaluate.score_files import parse_weights
from langarith.export_plan import keep_inputs, keep_method, keep_outputs
from langarith.io import OutputKind, atomic_dir
from langarith.merge import merge_adapters
from langarith.paths import (
    BUDGET_ADAPTER_DIR,
    INIT_DIR,
    LANG_ADAPTER_DIR,
    SCORE_CSV,
)
from langarith.report.scores import chosen_points, read_scores, select_metric

__all__ = [
    "EXPORT_OUTPUT",
    "ChosenMerge",
    "choose_merge",
    "export_adapter",
    "export_from_rule",
    "keep_inputs",
    "keep_method",
    "keep_outputs",
    "register_cli",
]

CARD_NAME = "README.md"

#: An exported folder: a merged adapter plus its model card; nothing else is replaced.
EXPORT_OUTPUT = OutputKind(
    "exported adapter",
    record=METADATA_NAME,
    record_kinds=("merged_language_adapter",),
    allowed=lambda name: name in ADAPTER_FILES or name == CARD_NAME,
)


@dataclass(frozen=True)
class ChosenMerge:
    """The merge a score file chose: what to merge, how, and how it scored."""

    score_file: Path
    method: str
    labels: tuple[str, ...]
    merge: str
    weights: tuple[float, ...]
    lam: float
    top_k: float | None
    metric: str
    validation: float
    test: float
    grid: tuple[float, ...]
    #: N-way only: the number of merged models the weight search scored on validation.
    candidates: int = 0


def _results_path(results: Path, pattern: str, **fields: object) -> Path:
    return results / Path(pattern.format(**fields)).relative_to("results")


def score_file(
    results: Path, scenario: str, model: str, target: str, task: str | None, seed: int | None
) -> Path:
    """The one score CSV of the triple (task and seed may be left out when unique)."""
    if scenario not in SCENARIOS:
        raise LangarithError(f"Unknown scenario {scenario!r}. Must be one of {sorted(SCENARIOS)}")
    model_dir = results / "scores" / scenario / model
    tasks = (
        [task]
        if task
        else sorted(p.parent.name for p in model_dir.glob(f"*/{target}") if p.is_dir())
    )
    if len(tasks) != 1:
        found = f"tasks {tasks}: choose one with --task" if tasks else "no score file"
        raise LangarithError(
            f"{scenario}/{model}/{target} under {results / 'scores'}: {found} "
            "(run the evaluation first, or check --results, --model and --target)"
        )
    target_dir = model_dir / tasks[0] / target
    seeds = (
        [seed]
        if seed is not None
        else sorted(int(p.stem[4:]) for p in target_dir.glob("seed*.csv"))
    )
    if len(seeds) > 1:
        raise LangarithError(f"{target_dir} holds seeds {seeds}: choose one with --seed")
    path = _results_path(
        results, SCORE_CSV, scenario=scenario, model=model, task=tasks[0], target=target,
        seed=seeds[0] if seeds else 0,
    )  # fmt: skip
    if not seeds or not path.is_file():
        raise LangarithError(
            f"No score file {path}: run the {scenario} evaluation of {model}/{tasks[0]}/"
            f"{target} first, or check --task and --seed"
        )
    return path


def choose_merge(path: Path, method: str | None = None) -> ChosenMerge:
    """The merged method's test row of ``path`` at its chosen λ, with its validation curve."""
    scores = select_metric(read_scores([path]))
    merged = scores[scores["lambda"].notna()]
    nway = scores[scores["adapters"].str.contains("=", regex=False)]
    methods = sorted(set(merged["method"]) | set(nway["method"]))
    if method is None:
        if len(methods) != 1:
            raise LangarithError(
                f"{path} scores merged methods {methods}: choose one with --method"
                if methods
                else f"{path} has no merged method (no row with a λ) to export"
            )
        method = methods[0]
    if method not in methods:
        raise LangarithError(f"{path} has no merged method {method!r}; it has {methods}")
    if method in set(nway["method"]):
        return _choose_weights(path, nway[nway["method"] == method], method)
    rows = merged[merged["method"] == method]
    chosen = chosen_points(rows)
    if len(chosen) != 1:
        raise LangarithError(
            f"{path}: method {method!r} has {len(chosen)} chosen points (several top-k or "
            "budgets); a score file of one curve per method is needed"
        )
    point = chosen.iloc[0]
    lam = float(point["lambda"])
    validation = rows[rows["split"] == "validation"]
    at = validation[(validation["lambda"] - lam).abs() < 1e-9]
    if at.empty:
        raise LangarithError(f"{path}: no validation score of {method} at the chosen λ {lam:g}")
    test_row = rows[(rows["split"] == "test") & ((rows["lambda"] - lam).abs() < 1e-9)].iloc[0]
    labels = tuple(s.strip() for s in str(test_row["adapters"]).split(",") if s.strip())
    top_k = None if pd.isna(test_row["top_k"]) else float(test_row["top_k"])
    if top_k is not None:
        merge, weights = "ties", tuple(1.0 for _ in labels)
    elif len(labels) == 2:
        merge, weights = "linear", (lam, 1.0 - lam)
    else:
        raise LangarithError(
            f"{path}: {method} merges {list(labels)}; export knows two-adapter λ curves "
            "and TIES only"
        )
    return ChosenMerge(
        score_file=path,
        method=method,
        labels=labels,
        merge=merge,
        weights=weights,
        lam=lam,
        top_k=top_k,
        metric=str(point["metric"]),
        validation=float(at["score"].iloc[0]),
        test=float(point["score"]),
        grid=tuple(sorted(float(x) for x in validation["lambda"].unique())),
    )


def _choose_weights(path: Path, rows: pd.DataFrame, method: str) -> ChosenMerge:
    """An N-way method's test row: the weights its search chose on validation."""
    test = rows[rows["split"] == "test"]
    if len(test) != 1:
        raise LangarithError(f"{path}: {method} has {len(test)} test rows; one was expected")
    row = test.iloc[0]
    labels, weights = parse_weights(row["adapters"])
    validation = rows[rows["split"] == "validation"]
    at = validation[validation["adapters"] == row["adapters"]]
    if at.empty:
        raise LangarithError(f"{path}: no validation score of {method} at its chosen weights")
    simplex = min(weights) >= 0 and abs(math.fsum(weights) - 1.0) < 1e-9
    return ChosenMerge(
        score_file=path, method=method, labels=labels,
        merge="linear" if simplex else "task-arithmetic", weights=weights, lam=math.nan,
        top_k=None, metric=str(row["metric"]), validation=float(at["score"].iloc[0]),
        test=float(row["score"]), grid=(), candidates=len(validation),
    )  # fmt: skip


def _adapters_root(results: Path, model: str) -> Path:
    """The results folder holding the adapters: ``results`` or, for a setup's, its parent."""
    for root in (results, results.parent):
        if (_results_path(root, INIT_DIR, model=model)).is_dir():
            return root
    raise LangarithError(
        f"No θ_init {_results_path(results, INIT_DIR, model=model)} (nor in the parent folder): "
        "export needs the run's adapters next to its scores"
    )


def _adapter_dir(root: Path, model: str, label: str, seed: int) -> Path:
    lang, _, budget = label.partition("/")
    if budget:
        tokens = budget.removeprefix("budget")
        return _results_path(
            root, BUDGET_ADAPTER_DIR, model=model, lang=lang, tokens=tokens, seed=seed
        )
    return _results_path(root, LANG_ADAPTER_DIR, model=model, lang=lang, seed=seed)


def _model_card(
    chosen: ChosenMerge, *, scenario: str, model: str, task: str, target: str, seed: int,
    sources: Sequence[Path], command: str,
) -> str:  # fmt: skip
    weights = ", ".join(
        f"{w:g}·{label}" for w, label in zip(chosen.weights, chosen.labels, strict=True)
    )
    if chosen.merge == "ties":
        formula = f"θ_init + {chosen.lam:g}·TIES(τ) with top-k {chosen.top_k:g} %"
    else:
        formula = f"{weights} (= θ_init + Σ wᵢτᵢ, language arithmetic)"
    source_lines = "\n".join(
        f"- `{label}`: `{path}`" for label, path in zip(chosen.labels, sources, strict=True)
    )
    grid = ", ".join(f"{x:g}" for x in chosen.grid)
    if chosen.candidates:  # N-way: searched weights, no λ
        title = f"{chosen.method}, searched weights"
        how = f"""## How the weights were chosen

They have the best {chosen.metric} on the `{target}` **validation** split among the
{chosen.candidates} merged models a gradient-free search scored (nevergrad CMA-ES on a
lattice, starting from LA's λ*; equal scores: the first scored). Target-language labels
were used for this choice (the papers' protocol); the test split was not."""
    else:
        title = f"{chosen.method}, λ = {chosen.lam:g}"
        how = f"""## How λ was chosen

λ = {chosen.lam:g} has the best {chosen.metric} on the `{target}` **validation** split among
the evaluated grid [{grid}] (equal scores: the larger λ). Target-language labels were
used for this choice (the papers' protocol); the test split was not."""
    return f"""# Merged language adapter for `{target}` ({title})

A MAD-X language adapter for **{target}** on backbone `{model}`, merged from adapters of
other languages without training ({scenario} scenario, task `{task}`, seed {seed}). Load
it with `model.load_adapter("<this folder>")` and stack the task adapter on it.

## Sources

{source_lines}

## Merge

- method: `{chosen.merge}` ({chosen.method}); weights: {weights}
- adapter: {formula}
- `metadata.json` records the inputs' checksums, θ_init and the library versions.

{how}

## Scores ({task}, {chosen.metric})

| split | score |
|---|---|
| validation | {chosen.validation:.2f} |
| test | {chosen.test:.2f} |

From `{chosen.score_file}`.

## Made by

```
{command}
```
"""


def export_adapter(
    results: str | Path,
    scenario: str,
    model: str,
    target: str,
    out: str | Path,
    *,
    task: str | None = None,
    seed: int | None = None,
    method: str | None = None,
    command: str | None = None,
) -> Path:
    """Write the merged adapter the run chose for (scenario, model, target) to ``out``.

    ``out`` may replace only a missing path or an earlier export (the replace rule of
    :func:`langarith.io.check_replaceable`). Returns ``out``.
    """
    results, out = Path(results), Path(out)
    path = score_file(results, scenario, model, target, task, seed)
    task_name, seed_value = path.parent.parent.name, int(path.stem[4:])
    chosen = choose_merge(path, method)
    root = _adapters_root(results, model)
    init = _results_path(root, INIT_DIR, model=model)
    sources = [_adapter_dir(root, model, label, seed_value) for label in chosen.labels]
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        raise LangarithError(f"Adapter folder(s) {missing} of {path} are missing")
    params = {"lam": chosen.lam, "top_k": chosen.top_k} if chosen.merge == "ties" else {}
    if command is None:
        command = shlex.join(
            ["langarith", "export", "--results", str(results), "--scenario", scenario]
            + ["--model", model, "--target", target, "--task", task_name]
            + ["--seed", str(seed_value), "--method", chosen.method, "--out", str(out)]
        )
    with atomic_dir(out, EXPORT_OUTPUT, protect=[*sources, init, path]) as tmp:
        merged = merge_adapters(
            chosen.merge, sources, list(chosen.weights), out_dir=tmp / "adapter",
            init_dir=init, name=f"{target}_{chosen.method}", **params,
        )  # fmt: skip
        for item in merged.iterdir():
            shutil.move(str(item), tmp / item.name)
        merged.rmdir()
        card = _model_card(
            chosen, scenario=scenario, model=model, task=task_name, target=target,
            seed=seed_value, sources=sources, command=command,
        )  # fmt: skip
        (tmp / CARD_NAME).write_text(card, encoding="utf-8")
    return out


def _run(args: argparse.Namespace) -> int:
    out = export_adapter(
        args.results, args.scenario, args.model, args.target, args.out,
        task=args.task, seed=args.seed, method=args.method,
    )  # fmt: skip
    print(out)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith export``."""
    parser = subparsers.add_parser(
        "export",
        help="write the merged adapter a finished run chose (AdapterHub folder + model card)",
        description="Merge the adapters of a score file's merged method at the λ the run "
        "chose on validation data, and write them as an AdapterHub folder with "
        "metadata.json and a README.md model card. Example: langarith export --results "
        "results --scenario zero_shot --model xlmr --target sw --out sw_adapter/",
    )
    parser.add_argument(
        "--results", type=Path, default=Path("results"), help="the run's results folder"
    )
    parser.add_argument("--scenario", default="zero_shot", help="scenario (default zero_shot)")
    parser.add_argument("--model", required=True, help="backbone key of the config")
    parser.add_argument("--target", required=True, help="target language")
    parser.add_argument("--task", help="task key (needed when the target has several)")
    parser.add_argument("--seed", type=int, help="seed (needed when the run has several)")
    parser.add_argument("--method", help="merged method of the score file (default: its only one)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.set_defaults(func=_run)


def export_from_rule(score_csv: str | Path, out: str | Path, method: str | None = None) -> Path:
    """What the ``export_adapter`` rule runs: export the job behind ``score_csv``
    (``method``: the ``merge.keep`` entry's, e.g. ``LA-2`` of an N-way file)."""
    path = Path(score_csv)
    target, task, model, scenario = (p.name for p in path.parents[:4])
    return export_adapter(
        path.parents[5], scenario, model, target, out, task=task, seed=int(path.stem[4:]),
        method=method or None,
    )  # fmt: skip
