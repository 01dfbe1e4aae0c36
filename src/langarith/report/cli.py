"""``langarith summary``: the key table of a finished run, printed in the terminal.

Reads the score CSVs under ``<results>/scores/<scenario>/`` (zero-shot by default) and
prints, per backbone and task, each method's average over languages (mean ± std over
seeds), the λ chosen on validation and each gain over its baseline with its bootstrap
95% interval, the same numbers as ``results/tables/<scenario>.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from langarith import LangarithError
from langarith.report.render import format_fixed, format_mean_std
from langarith.report.scores import find_score_files, read_scores
from langarith.report.tables import (
    LAYOUTS,
    ScenarioLayout,
    coverage_note,
    gains_table,
    method_label,
    scenario_points,
    scenario_table,
    score_decimals,
)

__all__ = ["register_cli", "summary"]


def plain_table(frame: pd.DataFrame) -> str:
    """Columns padded with spaces, a dashed rule under the header: for terminals."""
    header = [str(c) for c in frame.columns]
    body = [["" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def summary(
    results: str | Path = "results", scenario: str = "zero_shot", *, n_resamples: int = 10_000
) -> str:
    """The averages table of one scenario as text (see the module docstring)."""
    if scenario not in LAYOUTS:
        raise LangarithError(f"Unknown scenario {scenario!r}. Must be one of {list(LAYOUTS)}")
    paths = find_score_files(results, [scenario])
    if scenario == "ties":
        paths += find_score_files(results, ["zero_shot"])
    if not paths:
        raise LangarithError(
            f"no score files under {Path(results) / 'scores' / scenario}; run the workflow "
            "first (e.g. `make demo`) or pass --results DIR"
        )
    scores = read_scores(paths)
    long = scenario_table(scores, scenario)
    decimals = score_decimals(long["mean"])
    layout = LAYOUTS[scenario]
    gains = (
        gains_table(scenario_points(scores, scenario), scenario, n_resamples=n_resamples)
        if layout.comparisons
        else pd.DataFrame()
    )
    avg = long[long["target"] == "AVG"]
    rows = [
        _summary_row(block, gains, layout, decimals)
        for _, block in avg.groupby(["model", "task", "metric"], sort=True)
    ]
    if not rows:
        raise LangarithError(f"no complete {scenario} averages in {results}")
    table = pd.DataFrame(rows)
    lines = [
        layout.title,
        "Test split; AVG over languages per seed, then mean ± std over seeds; λ* chosen on "
        "validation; gains are paired with a bootstrap 95% CI over languages and seeds "
        "(* = the interval excludes 0; no * for a gain over fewer languages than the "
        "table's, where scores were missing).",
        "",
        plain_table(table),
    ]
    tables = Path(results) / "tables" / f"{scenario}.md"
    if tables.exists():
        lines += ["", f"Per-language table: {tables}"]
    return "\n".join(lines)


def _summary_row(
    block: pd.DataFrame, gains: pd.DataFrame, layout: ScenarioLayout, decimals: int
) -> dict[str, object]:
    """One model and task: each method's average, its λ*, and each gain with its CI."""
    first = block.iloc[0]
    model, task = first["model"], first["task"]
    row: dict[str, object] = {
        "model": model,
        "task": task,
        "metric": first["metric"],
        "langs": int(block["of_targets"].max()),
        "seeds": int(block["n_seeds"].max()),
    }
    for cell in block.itertuples(index=False):
        label = method_label(cell.method, cell.top_k, cell.budget)
        if cell.partner:
            label += f" (+{cell.partner})"
        row[label] = format_mean_std(cell.mean, cell.std, decimals) + coverage_note(
            cell.n_targets, cell.of_targets
        )
        if cell.method in layout.lambda_methods and pd.notna(cell.lambda_mean):
            row[f"λ* {label}"] = format_mean_std(cell.lambda_mean, cell.lambda_std)
    if gains.empty:
        return row
    mine = gains[(gains["model"] == model) & (gains["task"] == task)]
    for gain in mine.itertuples(index=False):
        label = f"{method_label(gain.method, gain.top_k, gain.budget)} − {gain.baseline}"
        low, high = (format_fixed(v, decimals) for v in (gain.ci_low, gain.ci_high))
        mark = " *" if gain.real else coverage_note(gain.n_targets, gain.of_targets)
        row[label] = f"{format_fixed(gain.gain, decimals)} [{low}, {high}]{mark}"
    return row


def _cli_summary(args: argparse.Namespace) -> int:
    print(summary(args.results, args.scenario, n_resamples=args.resamples))
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith summary``."""
    parser = subparsers.add_parser(
        "summary",
        help="print the key table of a finished run (zero-shot averages)",
        description="Print each method's average over languages (mean ± std over seeds), "
        "the chosen λ and the gains with bootstrap 95%% CIs, from the score CSVs.",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="the run's results folder (default: results; a paper setup's: results/acl)",
    )
    parser.add_argument(
        "--scenario",
        default="zero_shot",
        choices=list(LAYOUTS),
        help="which scenario (default: zero_shot)",
    )
    parser.add_argument(
        "--resamples", type=int, default=10_000, help="bootstrap resamples (default: 10000)"
    )
    parser.set_defaults(func=_cli_summary)
