"""The papers' figures from the score and analysis CSVs, as PNG and PDF under ``figures/``.

* :func:`lambda_curves_figure`: validation score against λ for each target language
  (small multiples), the two single-adapter baselines as dashed lines and the λ chosen
  on validation marked (the papers' Figures 5, 6 and 8 / ECAI Figures 3 and 6).
* :func:`cosine_figure`: cosine similarity between language vectors, values in the
  cells (ACL Figure 10 / ECAI Figure 5).
* :func:`sparsity_figure`: how the magnitudes of language-vector entries are
  distributed (ACL Figure 9 / ECAI Figure 4).
* :func:`token_budget_figure`: score against the adapter's budget in whitespace tokens, log x,
  adapter alone against language arithmetic (ACL Figure 4 / ECAI Figure 2).

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state, no
display needed) and saved with fixed metadata so reruns give the same files.

Every figure kind is one drawing function and one entry of :data:`FIGURES`, which also
says what the workflow's rule reads and for which models (and tasks) a config wants
it; the report rules are generated from that registry (``rules/report.smk``).
matplotlib is imported where a figure is drawn, so that importing the registry (the
``langarith`` command line, Snakemake parsing the rules) does not load it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from langarith import LangarithError
from langarith.analysis_plan import has_task_vectors
from langarith.io import atomic_file
from langarith.paths import (
    ANALYSIS_COSINE,
    ANALYSIS_SPARSITY,
    ANALYSIS_TASK_COSINE,
    FIGURE,
    in_setup,
)
from langarith.plan import budget_models, model_names
from langarith.registry import lookup
from langarith.report import paper as paper_numbers
from langarith.report.inputs import (
    BUDGET_SCENARIOS,
    Config,
    budget_settings,
    budget_targets,
    configured_scenarios,
    score_paths,
)
from langarith.report.render import named_paths, path_list
from langarith.report.scores import adapter_languages, chosen_points, read_scores, select_metric
from langarith.report.tables import (
    LAYOUTS,
    relative_differences,
    scenario_points,
    token_budget_points,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Imported by the warm server (:mod:`langarith.warm`) before it forks a figure job:
#: matplotlib loads inside the drawing functions, so importing this module stays cheap.
WARM_IMPORTS = (
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "matplotlib.backends.backend_pdf",
)

__all__ = [
    "FIGURES",
    "FigureRequest",
    "FigureSpec",
    "cosine_figure",
    "figure_outputs",
    "figure_spec",
    "lambda_curves_figure",
    "paper_cosine_figure",
    "paper_cosine_matrix",
    "relative_bars_figure",
    "vector_cosines_figure",
    "save_figure",
    "sparsity_figure",
    "token_budget_figure",
    "write_figure",
]

log = logging.getLogger(__name__)

#: One colour per method, the same in every figure (violet/green as the papers' Figure 4).
METHOD_COLORS = {
    "pEA": "#1f77b4",
    "pRA": "#ff7f0e",
    "LA": "#2ca02c",
    "T": "#7b3294",
    "LA(T,en)": "#1b9e77",
    "LA(T,REL)": "#d95f02",
    "MIX": "#555555",
    "MIX-val": "#999999",
    "TIES": "#e7298a",
}
_OTHER_COLORS = ("#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#b2df8a", "#fb9a99")
_LANG_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
)


def _color(method: str, index: int = 0) -> str:
    return METHOD_COLORS.get(method, _OTHER_COLORS[index % len(_OTHER_COLORS)])


def save_figure(figure: Figure, png: str | PathLike[str], pdf: str | PathLike[str] | None) -> None:
    """Save as PNG (150 dpi) and PDF, atomically and without timestamps."""
    with atomic_file(png, "wb") as handle:
        figure.savefig(handle, format="png", dpi=150, metadata={"Software": None})
    if pdf is not None:
        with atomic_file(pdf, "wb") as handle:
            figure.savefig(handle, format="pdf", metadata={"CreationDate": None, "Creator": None})


def _new_figure(**kwargs: Any) -> Figure:
    """A pyplot-free matplotlib figure (matplotlib loads here, on the first drawing)."""
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    """Rows and columns for n panels: at most ``max_cols`` wide, rows filled evenly."""
    rows = max(1, math.ceil(n / max_cols))
    return rows, max(1, math.ceil(n / rows))


# --------------------------------------------------------------------------- relative bars
def relative_bars_figure(scores: pd.DataFrame, scenario: str, model: str, task: str) -> Figure:
    """ACL Figures 2, 6 (zero-shot) and 3, 7 (enhancement): bars per language.

    Bars are the test scores (mean over seeds) of the scenario's methods of
    :func:`~langarith.report.tables.relative_differences`; the number above each
    language is the *relative* difference (%) of its best merge to its reference: LA
    against the better proxy (zero-shot), the better of LA(T,en) and LA(T,REL) against
    T (enhancement), as the papers print them.
    """
    scoped = scores[(scores["model"] == model) & (scores["task"] == task)]
    points = scenario_points(scoped, scenario)
    frame = relative_differences(points, scenario)
    if frame.empty:
        raise LangarithError(f"no {scenario} scores of {model}/{task} to draw bars from")
    methods = [m for m in frame.attrs["methods"] if m in set(frame["method"])]
    targets = list(dict.fromkeys(frame["target"]))
    width = 0.8 / max(1, len(methods))
    figure = _new_figure(figsize=(max(5.0, 0.9 * len(targets) + 1.5), 3.4))
    ax = figure.subplots()
    x = np.arange(len(targets))
    cells = frame.set_index(["method", "target"])
    for i, method in enumerate(methods):
        heights = [cells["mean"].get((method, t), np.nan) for t in targets]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, heights, width, label=method,
               color=_color(method, i))  # fmt: skip
    top = frame.groupby("target")["mean"].max()
    relative = frame.drop_duplicates("target").set_index("target")["relative"]
    for xi, target in zip(x, targets, strict=True):
        value = relative.get(target, np.nan)
        if np.isfinite(value):
            ax.annotate(f"{value:+.1f}%", (xi, top[target]), ha="center", va="bottom", fontsize=7,
                        xytext=(0, 2), textcoords="offset points")  # fmt: skip
    ax.set_xticks(x, targets)
    ax.set_ylabel(f"test {frame['metric'].iloc[0]}", fontsize=8)
    low = np.nanmin(frame["mean"].to_numpy())
    ax.set_ylim(bottom=max(0.0, low - 0.1 * abs(low)))
    ax.legend(fontsize=7, ncols=len(methods), loc="lower right")
    ax.set_title(
        f"{scenario.replace('_', '-')} {task} ({model}): relative difference of "
        f"{frame.attrs['best']} to {frame.attrs['reference']}",
        fontsize=9,
    )
    return figure


# --------------------------------------------------------------------------- λ curves
def lambda_curves_figure(
    scores: pd.DataFrame,
    task: str,
    model: str,
    *,
    scenario: str = "zero_shot",
    method: str | None = None,
) -> Figure:
    """Validation score against λ, one axis per target language.

    Args:
        scores: score rows (:func:`~langarith.report.scores.read_scores`).
        task, model: which curves.
        scenario: whose curves (default zero-shot, as in the papers' λ analysis).
        method: the merge method whose λ curve is drawn (default the scenario's first
            λ method, LA for zero-shot).

    On each axis: the mean curve over seeds (with ± std band and thin per-seed curves),
    the two single-adapter scores as dashed lines (pEA/pRA rows when present, else the
    curve at λ=1 and λ=0) and each seed's chosen λ as a triangle.
    """
    method = method or (LAYOUTS[scenario].lambda_methods or ("LA",))[0]
    scoped = _lambda_scores(scores, scenario, model, task)
    metric = scoped["metric"].iloc[0]
    valid = scoped[scoped["split"] == "validation"]
    curves = valid[(valid["method"] == method) & valid["lambda"].notna()]
    if curves.empty:
        raise LangarithError(
            f"no validation λ curve of {method} in the {scenario} scores of {model}/{task}; "
            "the evaluation must write one validation row per λ"
        )
    chosen = chosen_points(scoped[scoped["method"] == method])
    targets = sorted(set(curves["target"]))
    n_rows, n_cols = _grid(len(targets))
    figure = _new_figure(figsize=(3.3 * n_cols, 2.7 * n_rows + 1.1))
    axes = figure.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes[len(targets) :]:
        figure.delaxes(ax)
    for i, (ax, target) in enumerate(zip(axes, targets, strict=False)):
        _draw_lambda_axis(ax, curves, valid, chosen, target, method)
        if i % n_cols == 0:
            ax.set_ylabel(f"validation {metric}", fontsize=8)
    _lambda_legend(figure, method, curves["seed"].nunique())
    figure.suptitle(
        f"λ interpolation ({scenario.replace('_', '-')}, {task}, {model}): validation {metric} "
        f"of {method}(A, B) = θ_init + λ·τ_A + (1−λ)·τ_B",
        fontsize=10,
    )
    return figure


def _lambda_scores(scores: pd.DataFrame, scenario: str, model: str, task: str) -> pd.DataFrame:
    """One scenario's scores of one model and task, in the task's primary metric."""
    scoped = scores[
        (scores["scenario"] == scenario) & (scores["model"] == model) & (scores["task"] == task)
    ]
    if scoped.empty:
        raise LangarithError(
            f"no {scenario} scores for model {model!r} and task {task!r}; found "
            f"{sorted(set(zip(scores['model'], scores['task'], strict=True)))}"
        )
    return select_metric(scoped)


def _lambda_legend(figure: Figure, method: str, n_seeds: int) -> None:
    """One legend below all panels: the curve, the two adapters alone, the chosen λ."""
    from matplotlib.lines import Line2D

    curve = f"{method}, one seed" if n_seeds == 1 else f"{method}, mean over {n_seeds} seeds"
    handles = [
        Line2D([], [], color=_color(method), lw=2, label=curve),
        Line2D([], [], color=_color("pEA"), ls="--", label="first adapter alone (λ = 1)"),
        Line2D([], [], color=_color("pRA"), ls="--", label="second adapter alone (λ = 0)"),
        Line2D([], [], color="black", marker="v", ls="none", label="λ chosen on validation"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8, frameon=False)


def _draw_lambda_axis(ax, curves, valid, chosen, target, method) -> None:
    rows = curves[curves["target"] == target]
    grid = rows.pivot_table(index="lambda", columns="seed", values="score", aggfunc="mean")
    mean, std = grid.mean(axis=1), grid.std(axis=1, ddof=1)
    lambdas = grid.index.to_numpy(dtype=float)
    color = _color(method)
    for seed in grid.columns:
        ax.plot(lambdas, grid[seed], color=color, lw=0.6, alpha=0.35)
    if grid.shape[1] > 1:
        ax.fill_between(lambdas, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    ax.plot(lambdas, mean, color=color, lw=2)
    langs = adapter_languages(rows["adapters"].iloc[0]) if len(rows) else []
    first, second = (langs + ["A", "B"])[:2] if len(langs) < 2 else langs[:2]
    for proxy, fallback_lambda, lang, baseline_color in (
        ("pEA", 1.0, first, _color("pEA")),
        ("pRA", 0.0, second, _color("pRA")),
    ):
        proxy_rows = valid[(valid["method"] == proxy) & (valid["target"] == target)]
        if len(proxy_rows):
            value = float(proxy_rows["score"].mean())
        elif np.isclose(lambdas, fallback_lambda).any():
            value = float(mean[lambdas[np.isclose(lambdas, fallback_lambda)][0]])
        else:
            continue
        ax.axhline(value, color=baseline_color, ls="--", lw=1.2)
        ax.annotate(
            f"{lang} only",
            xy=(1.0 if fallback_lambda else 0.0, value),
            xycoords=("axes fraction", "data"),
            xytext=(0, 2),
            textcoords="offset points",
            fontsize=7,
            color=baseline_color,
            ha="right" if fallback_lambda else "left",
            va="bottom",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    picks = chosen[chosen["target"] == target].dropna(subset=["lambda"])
    for seed, lam in zip(picks["seed"], picks["lambda"], strict=True):
        at = np.isclose(lambdas, lam)
        if seed in grid.columns and at.any():
            y = float(grid[seed][lambdas[at][0]])
        else:
            y = float(np.interp(lam, lambdas, mean))
        ax.plot([lam], [y], marker="v", color="black", ms=6, ls="none", zorder=5)
    title = f"{target}: {method}({first}, {second})"
    if len(picks):
        lam = picks["lambda"].to_numpy(dtype=float)
        spread = f" ± {lam.std(ddof=1):.2f}" if len(lam) > 1 else ""
        title += f"\nλ* = {lam.mean():.2f}{spread}"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("λ (weight of the first adapter)", fontsize=8)
    ax.set_xlim(min(lambdas.min(), 0.0), max(lambdas.max(), 1.0))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


# --------------------------------------------------------------------------- cosine
def _split_label(label: str) -> tuple[str, str]:
    lang, _, seed = str(label).partition("/")
    return lang, seed


def read_cosine(path: str | PathLike[str]) -> pd.DataFrame:
    """A ``lang_a, lang_b, cosine`` CSV as a language × language matrix.

    Labels like ``es/seed42`` are averaged over seeds, pairing only vectors of the same
    seed. Languages are in alphabetical order, as in the papers' heatmap.
    """
    frame = _read_csv(path, ("lang_a", "lang_b", "cosine"), "cosine similarity")
    rows = []
    for a, b, value in frame[["lang_a", "lang_b", "cosine"]].itertuples(index=False):
        (lang_a, seed_a), (lang_b, seed_b) = _split_label(a), _split_label(b)
        if seed_a == seed_b:
            rows.append((lang_a, lang_b, float(value)))
    tidy = pd.DataFrame(rows, columns=["lang_a", "lang_b", "cosine"])
    matrix = tidy.pivot_table(index="lang_a", columns="lang_b", values="cosine", aggfunc="mean")
    langs = sorted(set(matrix.index) | set(matrix.columns))
    matrix = matrix.reindex(index=langs, columns=langs)
    # Fill a triangle-only table from its mirror image.
    return matrix.combine_first(matrix.T)


def cosine_figure(path: str | PathLike[str], model: str) -> Figure:
    """Heatmap of cosine similarity between language vectors, values in the cells."""
    matrix = read_cosine(path)
    size = max(4.5, 0.55 * len(matrix.index) + 2.0)
    figure = _new_figure(figsize=(size + 1.0, size))
    ax = figure.subplots()
    vmin, vmax = _cosine_axis(figure, ax, matrix)
    ax.set_title(
        f"Cosine similarity between language vectors τ = θ − θ_init ({model})\n"
        f"off-diagonal range {vmin:.2f} to {vmax:.2f}; task vectors: 0.01 to 0.03 (Ilharco et al.)",
        fontsize=9,
    )
    return figure


def _cosine_axis(figure: Figure, ax: Any, matrix: pd.DataFrame) -> tuple[float, float]:
    """Draw a cosine matrix with its values on ``ax``; returns the colour range used."""
    langs = list(matrix.index)
    values = matrix.to_numpy(dtype=float)
    off = values[~np.eye(len(langs), dtype=bool)]
    off = off[np.isfinite(off)]
    vmin, vmax = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.05, vmax + 0.05
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="#d9d9d9")
    shown = np.ma.masked_array(values, mask=np.eye(len(langs), dtype=bool) | ~np.isfinite(values))
    image = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(langs)), langs)
    fontsize = 8 if len(langs) <= 14 else 6
    norm = image.norm
    for i in range(len(langs)):
        for j in range(len(langs)):
            value = values[i, j]
            if not np.isfinite(value):
                continue
            r, g, b, _ = (
                (0.85, 0.85, 0.85, 1) if i == j else cmap(norm(min(max(value, vmin), vmax)))
            )
            text_color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize, color=text_color
            )
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label(
        "cosine similarity (colours span the off-diagonal range; diagonal grey)", fontsize=8
    )
    return vmin, vmax


#: The zh *row* of ACL Figure 10 as the seed text prints it (ar … vi). The figure's zh
#: *column* differs from it in 8 of 12 cells; paper_numbers.csv keeps the column (upper
#: triangle) and this row is kept here only to say where the printed matrix is not
#: symmetric.
ACL_FIGURE10_ZH_ROW = {
    "ar": 0.21, "bg": 0.22, "de": 0.22, "el": 0.23, "es": 0.22, "fr": 0.22,
    "hi": 0.24, "ru": 0.20, "sw": 0.22, "tr": 0.21, "ur": 0.25, "vi": 0.21,
}  # fmt: skip


def paper_cosine_matrix() -> tuple[pd.DataFrame, list[str]]:
    """ACL Figure 10 as a symmetric matrix, and the zh pairs where the print is not.

    Built from the upper triangle in ``paper_numbers.csv``; the second value lists
    ``zh-xx (column c, row r)`` for every cell where the printed zh row differs.
    """
    numbers = paper_numbers.load()
    rows = numbers[(numbers["table"] == "Figure 10") & (numbers["metric"] == "cosine")]
    langs = sorted(set(rows["language"]) | set(rows["partner"]))
    matrix = pd.DataFrame(np.eye(len(langs)), index=langs, columns=langs)
    for a, b, value in zip(rows["language"], rows["partner"], rows["score"], strict=True):
        matrix.loc[a, b] = matrix.loc[b, a] = float(value)
    asymmetric = [
        f"zh-{lang} (column {matrix.loc[lang, 'zh']:.2f}, row {row:.2f})"
        for lang, row in ACL_FIGURE10_ZH_ROW.items()
        if lang in matrix.index and abs(matrix.loc[lang, "zh"] - row) > 1e-9
    ]
    return matrix, asymmetric


#: Reference ranges of the Appendix E contrast: the papers' language vectors (ACL
#: Figure 10, off-diagonal) and Ilharco et al.'s task vectors.
PAPER_LANGUAGE_COSINES = (0.19, 0.31)
ILHARCO_TASK_COSINES = (0.01, 0.03)


def _off_diagonal(matrix: pd.DataFrame) -> list[tuple[str, float]]:
    labels = list(matrix.index)
    return [
        (f"{a}-{b}", float(matrix.loc[a, b]))
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
        if np.isfinite(matrix.loc[a, b])
    ]


def vector_cosines_figure(
    language_csv: str | PathLike[str], task_csv: str | PathLike[str], model: str
) -> Figure:
    """Appendix E's contrast from the run: language-vector against task-vector cosines.

    Each dot is one pair (mean over seeds); shaded bands are the papers' language
    vectors (ACL Figure 10: 0.19-0.31) and Ilharco et al.'s task vectors (0.01-0.03).
    """
    language = _off_diagonal(read_cosine(language_csv))
    tasks = _off_diagonal(read_cosine(task_csv))
    figure = _new_figure(figsize=(6.0, 4.0))
    ax = figure.subplots()
    for x, (pairs, color) in enumerate(((language, _color("LA")), (tasks, _color("T")))):
        values = np.array([v for _, v in pairs], dtype=float)
        jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(x + jitter[: len(values)], values, s=14, color=color, alpha=0.8, zorder=3)
        if len(values):
            ax.hlines(values.mean(), x - 0.25, x + 0.25, color="black", lw=1.5, zorder=4)
    for label, value in tasks:
        ax.annotate(label, (1.18, value), fontsize=7, va="center")
    for (low, high), text, color in (
        (PAPER_LANGUAGE_COSINES, "papers' language vectors", _color("LA")),
        (ILHARCO_TASK_COSINES, "Ilharco et al.'s task vectors", _color("T")),
    ):
        ax.axhspan(low, high, color=color, alpha=0.12, lw=0)
        ax.annotate(text, (-0.45, high), fontsize=7, va="bottom", color=color)
    ax.set_xticks(
        [0, 1], [f"language vectors ({len(language)} pairs)", f"task vectors ({len(tasks)} pairs)"]
    )
    ax.set_xlim(-0.5, 1.6)
    ax.set_ylabel("cosine similarity (mean over seeds)", fontsize=8)
    ax.set_title(f"Language and task vectors τ = θ − θ_init ({model})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return figure


def paper_cosine_figure(path: str | PathLike[str], model: str) -> Figure:
    """ACL Figure 10's published matrix beside the run's (Appendix E).

    The paper's matrix is symmetrised from its upper triangle; the title says in how
    many zh cells the printed matrix is not symmetric. The run's is averaged over seeds.
    """
    paper_matrix, asymmetric = paper_cosine_matrix()
    run = read_cosine(path)
    size = max(4.5, 0.5 * max(len(paper_matrix), len(run)) + 2.0)
    figure = _new_figure(figsize=(2 * size + 2.0, size + 0.8))
    left, right = figure.subplots(1, 2)
    _cosine_axis(figure, left, paper_matrix)
    left.set_title(
        "ACL Figure 10 (backbone not stated), symmetrised from the upper triangle;\n"
        f"the printed zh row differs from the zh column in {len(asymmetric)} of "
        f"{len(ACL_FIGURE10_ZH_ROW)} cells",
        fontsize=8,
    )
    _cosine_axis(figure, right, run)
    right.set_title(f"this run ({model}), mean over seeds", fontsize=8)
    figure.suptitle("Cosine similarity between language vectors: paper and run", fontsize=10)
    return figure


# --------------------------------------------------------------------------- sparsity
def _read_csv(path: str | PathLike[str], required: Sequence[str], what: str) -> pd.DataFrame:
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise LangarithError(f"{what} file {path} does not exist; run the analysis first") from None
    except pd.errors.EmptyDataError:
        raise LangarithError(f"{what} file {path} is empty; rerun the analysis") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LangarithError(
            f"{what} file {path} lacks the column(s) {missing}; it has {list(frame.columns)}"
        )
    return frame


def sparsity_figure(path: str | PathLike[str], model: str) -> Figure:
    """Distribution of language-vector magnitudes, one line per language.

    Understands the three tables :mod:`langarith.analysis` writes: a histogram of
    log10|τ| (``label, log10_lo, log10_hi, fraction``), a histogram of τ values
    (``label, bin_lo, bin_hi, density``) and the summary of ``sparsity_table``
    (``label``, ``frac_below_<t>`` and ``q<p>_abs`` columns), which is drawn as the
    share of entries below t·max|τ| (a cumulative distribution) and the quantiles of |τ|.
    Labels like ``es/seed42`` are averaged over seeds.
    """
    frame = _read_csv(path, ("label",), "sparsity")
    frame["lang"] = [_split_label(label)[0] for label in frame["label"]]
    if {"log10_lo", "log10_hi"} <= set(frame.columns):
        return _sparsity_histogram(frame, model, log_scale=True)
    if {"bin_lo", "bin_hi", "density"} <= set(frame.columns):
        return _sparsity_histogram(frame, model, log_scale=False)
    return _sparsity_summary(frame, path, model)


def _sparsity_summary(frame: pd.DataFrame, path: str | PathLike[str], model: str) -> Figure:
    """The summary table drawn as a cumulative share (left) and |τ| quantiles (right)."""
    below = sorted(
        (float(c.removeprefix("frac_below_")), c)
        for c in frame.columns
        if c.startswith("frac_below_")
    )
    quantiles = sorted(
        (float(c[1:].removesuffix("_abs")), c)
        for c in frame.columns
        if c.startswith("q") and c.endswith("_abs")
    )
    if not below and not quantiles:
        raise LangarithError(
            f"sparsity file {path} has neither histogram columns (log10_lo, log10_hi, fraction "
            "or bin_lo, bin_hi, density) nor summary columns (frac_below_<t>, q<p>_abs)"
        )
    numeric = [c for _, c in below + quantiles] + [c for c in ("max_abs",) if c in frame.columns]
    per_lang = frame.groupby("lang", sort=True)[numeric].mean()
    figure = _new_figure(figsize=(10, 4.2))
    left, right = figure.subplots(1, 2)
    for i, (lang, row) in enumerate(per_lang.iterrows()):
        color = _LANG_COLORS[i % len(_LANG_COLORS)]
        if below:
            left.plot(
                [t for t, _ in below],
                [row[c] for _, c in below],
                marker="o",
                ms=3,
                color=color,
                label=lang,
            )
        if quantiles:
            values = [row[c] for _, c in quantiles]
            if "max_abs" in per_lang.columns:
                values.append(row["max_abs"])
            right.plot(range(len(values)), values, marker="o", ms=3, color=color, label=lang)
    left.set_xscale("log")
    left.set_xlabel("threshold t (relative to the vector's max |τ|)")
    left.set_ylabel("share of entries with |τ| < t · max|τ|")
    left.set_ylim(0, 1.02)
    left.set_title("Most entries are tiny: cumulative share by relative magnitude", fontsize=9)
    left.grid(alpha=0.3)
    labels = [f"q{q:g}" for q, _ in quantiles] + (["max"] if "max_abs" in per_lang.columns else [])
    right.set_xticks(range(len(labels)), labels)
    right.set_yscale("log")
    right.set_ylabel("|τ|")
    right.set_title("Quantiles of |τ|: a long tail of few large entries", fontsize=9)
    right.grid(alpha=0.3)
    (left if below else right).legend(fontsize=7, ncols=2)
    figure.suptitle(f"Sparsity of language vectors τ = θ − θ_init ({model})", fontsize=10)
    return figure


def _sparsity_histogram(frame: pd.DataFrame, model: str, *, log_scale: bool) -> Figure:
    lo, hi = ("log10_lo", "log10_hi") if log_scale else ("bin_lo", "bin_hi")
    value = next(c for c in ("fraction", "density", "count") if c in frame.columns)
    figure = _new_figure(figsize=(7, 4.2))
    ax = figure.subplots()
    for i, (lang, group) in enumerate(frame.groupby("lang", sort=True)):
        mean = group.groupby([lo, hi], sort=True)[value].mean().reset_index()
        centers = (mean[lo].to_numpy() + mean[hi].to_numpy()) / 2
        ax.plot(centers, mean[value], color=_LANG_COLORS[i % len(_LANG_COLORS)], label=lang, lw=1.2)
    if log_scale:
        ax.set_xlabel("log10 |τ|")
        ax.set_ylabel(f"{value} of entries")
        ax.set_title(f"Distribution of |τ| on a log scale ({model})", fontsize=10)
    else:
        ax.set_xlabel("τ")
        ax.set_ylabel(value)
        ax.set_yscale("log")
        ax.set_title(
            f"Distribution of language-vector entries τ ({model}): peaked at 0", fontsize=10
        )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2)
    return figure


# --------------------------------------------------------------------------- token budget
def token_budget_figure(scores: pd.DataFrame, task: str, model: str) -> Figure:
    """Test score against the language adapter's token budget (log x), per target.

    x is the budget in whitespace tokens, the papers' unit (ACL Figure 4, ECAI Figure
    2) and the config's (``token_budget.tokens``); the sub-word tokens each adapter saw
    are in the token-budget table. One line per method (the adapter alone, T, solid;
    language arithmetic dotted), error bars ± std over seeds. Full-corpus adapters (no
    budget) are dashed horizontal lines.
    """
    points = token_budget_points(scores)
    points = points[(points["model"] == model) & (points["task"] == task)]
    if points.empty:
        raise LangarithError(f"no token-budget scores for model {model!r} and task {task!r}")
    metric = points["metric"].iloc[0]
    targets = sorted(set(points["target"]))
    n_rows, n_cols = _grid(len(targets), max_cols=3)
    figure = _new_figure(figsize=(max(6.5, 4.2 * n_cols), 3.4 * n_rows + 1.0))
    axes = figure.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes[len(targets) :]:
        figure.delaxes(ax)
    order = LAYOUTS["low_resource"].methods
    methods = sorted(set(points["method"]), key=lambda m: (order.index(m) if m in order else 99, m))
    for ax, target in zip(axes, targets, strict=False):
        _draw_budget_axis(ax, points[points["target"] == target], methods)
        ax.set_xscale("log")
        ax.set_title(f"target {target}", fontsize=10)
        ax.set_ylabel(f"test {metric}", fontsize=8)
        ax.set_xlabel(BUDGET_AXIS_LABEL, fontsize=8)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    figure.suptitle(
        f"Language adapters trained on a budget of whitespace tokens ({task}, {model}):\n"
        "the adapter alone (T, solid) against language arithmetic (dotted), ± std over seeds",
        fontsize=10,
    )
    return figure


#: x label of the token-budget figure: the budget's unit, as the config counts it.
BUDGET_AXIS_LABEL = "token budget (whitespace tokens)"


def _draw_budget_axis(ax: Any, rows: pd.DataFrame, methods: list[str]) -> None:
    """One target's panel: each method's mean ± std per budget, full corpus dashed."""
    for i, method in enumerate(methods):
        color = _color(method, i)
        style = "-" if method == "T" else ":"
        budgeted = rows[(rows["method"] == method) & rows["budget"].notna()]
        stats = budgeted.groupby("budget")["score"].agg(["mean", "std"]).sort_index()
        if len(stats):
            x = np.asarray(stats.index, dtype=float)
            dodge = 10 ** (0.015 * (i - (len(methods) - 1) / 2))  # keep error bars apart
            ax.errorbar(
                x * dodge,
                stats["mean"],
                yerr=stats["std"].fillna(0),
                color=color,
                ls=style,
                marker="o",
                ms=4,
                lw=1.8,
                capsize=3,
                label=method,
            )
        full = rows[(rows["method"] == method) & rows["budget"].isna()]
        if len(full):
            ax.axhline(
                full["score"].mean(), color=color, ls="--", lw=1, label=f"{method}, full corpus"
            )


# --------------------------------------------------------------------------- registry
@dataclasses.dataclass(frozen=True)
class FigureRequest:
    """What a figure's drawing gets: its named inputs, the model and (maybe) the task."""

    name: str
    inputs: Mapping[str, list[str]]
    model: str
    task: str | None = None

    def paths(self, key: str) -> list[str]:
        """The files of one named input (empty when the rule gives none)."""
        return list(self.inputs.get(key) or [])

    def scores(self) -> pd.DataFrame:
        """The score files read into one table."""
        return read_scores(self.paths("scores"))

    def first(self, key: str) -> str:
        """The single file of a one-file input (an analysis CSV)."""
        paths = self.paths(key)
        if not paths:
            raise LangarithError(f"figure {self.name!r} needs the input {key!r}")
        return paths[0]


def draw_lambda_curves(request: FigureRequest) -> Figure:
    """Zero-shot validation score against λ (:func:`lambda_curves_figure`)."""
    return lambda_curves_figure(request.scores(), str(request.task), request.model)


def draw_zero_shot_bars(request: FigureRequest) -> Figure:
    """ACL Figures 2 and 6 (:func:`relative_bars_figure`)."""
    return relative_bars_figure(request.scores(), "zero_shot", request.model, str(request.task))


def draw_enhancement_bars(request: FigureRequest) -> Figure:
    """ACL Figures 3 and 7 (:func:`relative_bars_figure`)."""
    return relative_bars_figure(request.scores(), "enhancement", request.model, str(request.task))


def draw_cosine_similarity(request: FigureRequest) -> Figure:
    """Cosine similarity between language vectors (:func:`cosine_figure`)."""
    return cosine_figure(request.first("cosine"), request.model)


def draw_vector_cosines(request: FigureRequest) -> Figure:
    """Language against task vectors (:func:`vector_cosines_figure`)."""
    return vector_cosines_figure(
        request.first("cosine"), request.first("task_cosine"), request.model
    )


def draw_cosine_paper(request: FigureRequest) -> Figure:
    """ACL Figure 10 beside the run's matrix (:func:`paper_cosine_figure`)."""
    return paper_cosine_figure(request.first("cosine"), request.model)


def draw_sparsity(request: FigureRequest) -> Figure:
    """Magnitudes of language-vector entries (:func:`sparsity_figure`)."""
    return sparsity_figure(request.first("sparsity"), request.model)


def draw_token_budget(request: FigureRequest) -> Figure:
    """Score against the token budget (:func:`token_budget_figure`)."""
    return token_budget_figure(request.scores(), str(request.task), request.model)


def lambda_curve_inputs(config: Config, model: str, task: str | None) -> dict[str, list[str]]:
    """λ curves read the zero-shot scores of one model and task."""
    return {"scores": score_paths(config, ["zero_shot"], model=model, task=task)}


def enhancement_bar_inputs(config: Config, model: str, task: str | None) -> dict[str, list[str]]:
    """The enhancement bars read the enhancement scores of one model and task."""
    return {"scores": score_paths(config, ["enhancement"], model=model, task=task)}


def cosine_inputs(config: Config, model: str, task: str | None) -> dict[str, list[str]]:
    """The cosine heatmap reads the analysis stage's cosine CSV of the model."""
    return {"cosine": [ANALYSIS_COSINE.format(model=model)]}


def vector_cosine_inputs(config: Config, model: str, task: str | None) -> dict[str, list[str]]:
    """The language vectors' and the task vectors' cosine CSVs of the model."""
    return {
        "cosine": [ANALYSIS_COSINE.format(model=model)],
        "task_cosine": [ANALYSIS_TASK_COSINE.format(model=model)],
    }


def sparsity_inputs(config: Config, model: str, task: str | None) -> dict[str, list[str]]:
    """The sparsity figure reads the analysis stage's sparsity CSV of the model."""
    return {"sparsity": [ANALYSIS_SPARSITY.format(model=model)]}


def token_budget_figure_inputs(
    config: Config, model: str, task: str | None
) -> dict[str, list[str]]:
    """Budget scores of one model and task (x is the configured budget)."""
    return {"scores": score_paths(config, BUDGET_SCENARIOS, model=model, task=task)}


def zero_shot_tasks(config: Config) -> list[str]:
    """λ curves are drawn for the zero-shot scenario's tasks."""
    return list(configured_scenarios(config).get("zero_shot", {}).get("tasks") or [])


def enhancement_tasks(config: Config) -> list[str]:
    """Enhancement bars are drawn for the enhancement scenario's tasks."""
    return list(configured_scenarios(config).get("enhancement", {}).get("tasks") or [])


def budget_tasks(config: Config) -> list[str]:
    """Token-budget figures are drawn for budget tasks that have a target language."""
    tasks = budget_settings(config).get("tasks") or []
    return [task for task in tasks if budget_targets(config, task)]


@dataclasses.dataclass(frozen=True)
class FigureSpec:
    """One figure kind of the report: its drawing and what the workflow's rule needs.

    A figure ``x`` is drawn per model (``x_{model}``) or, with ``tasks`` set, per task
    and model (``x_{task}_{model}``, for the tasks ``tasks(config)`` returns); its rule
    is ``x_figure``. ``models`` narrows the backbones (default: every model), as the
    token-budget study's ``token_budget.models``.
    """

    draw: Callable[[FigureRequest], Figure]
    inputs: Callable[[Config, str, str | None], dict[str, list[str]]]
    caption: str
    subcategory: str
    tasks: Callable[[Config], list[str]] | None = None
    mem_mb: int = 2000
    runtime: int = 10
    wanted: Callable[[Config], bool] | None = None
    models: Callable[[Config], list[str]] | None = None
    #: The ``model`` wildcard's pattern when the figure is drawn per something other than
    #: a backbone (the X-MOD arm's language sets); default: the backbones' constraint.
    model_pattern: str = ""

    def stem(self, name: str) -> str:
        """The file name without extension, with Snakemake wildcards."""
        return f"{name}_{{task}}_{{model}}" if self.tasks else f"{name}_{{model}}"

    def labels(self, name: str) -> dict[str, str]:
        """The figure's labels in the Snakemake report."""
        if self.tasks:
            return {"task": "{task}", "model": "{model}"}
        return {"figure": name.replace("_", " "), "model": "{model}"}

    def instances(self, config: Config) -> list[dict[str, str]]:
        """The wildcards of every figure of this kind a config ends with."""
        if self.wanted is not None and not self.wanted(config):
            return []
        models = model_names(config) if self.models is None else self.models(config)
        if self.tasks is None:
            return [{"model": model} for model in models]
        return [{"task": task, "model": model} for task in self.tasks(config) for model in models]


#: Every figure kind, in the order a config's outputs list them. Adding a figure: a
#: ``draw_x(request) -> Figure`` function and one line here.
FIGURES: dict[str, FigureSpec] = {
    "lambda_curves": FigureSpec(
        draw_lambda_curves,
        lambda_curve_inputs,
        "lambda_curves.rst",
        "λ curves",
        tasks=zero_shot_tasks,
    ),
    "zero_shot_bars": FigureSpec(
        draw_zero_shot_bars,
        lambda_curve_inputs,
        "zero_shot_bars.rst",
        "Relative differences",
        tasks=zero_shot_tasks,
    ),
    "enhancement_bars": FigureSpec(
        draw_enhancement_bars,
        enhancement_bar_inputs,
        "enhancement_bars.rst",
        "Relative differences",
        tasks=enhancement_tasks,
    ),
    "cosine_similarity": FigureSpec(
        draw_cosine_similarity,
        cosine_inputs,
        "cosine_similarity.rst",
        "Language vectors",
        mem_mb=1000,
        runtime=5,
    ),
    "vector_cosines": FigureSpec(
        draw_vector_cosines,
        vector_cosine_inputs,
        "vector_cosines.rst",
        "Language vectors",
        mem_mb=1000,
        runtime=5,
        wanted=has_task_vectors,
    ),
    "cosine_paper": FigureSpec(
        draw_cosine_paper,
        cosine_inputs,
        "cosine_paper.rst",
        "Language vectors",
        mem_mb=1000,
        runtime=5,
    ),
    "sparsity": FigureSpec(
        draw_sparsity,
        sparsity_inputs,
        "sparsity.rst",
        "Language vectors",
        mem_mb=1000,
        runtime=5,
    ),
    "token_budget": FigureSpec(
        draw_token_budget,
        token_budget_figure_inputs,
        "token_budget.rst",
        "Token budget",
        tasks=budget_tasks,
        models=budget_models,
    ),
}


def figure_spec(figure: str) -> FigureSpec:
    """The registry entry of a figure kind, or an error that lists the known ones."""
    return lookup(FIGURES, figure, "figure")


def figure_outputs(config: Config) -> list[str]:
    """Figures a config ends with (PNG and PDF each)."""
    stems = [
        spec.stem(name).format(**wildcards)
        for name, spec in FIGURES.items()
        for wildcards in spec.instances(config)
    ]
    return [
        in_setup(FIGURE.format(name=stem, ext=ext), config)
        for stem in stems
        for ext in ("png", "pdf")
    ]


# --------------------------------------------------------------------------- writing
def write_figure(
    figure: str,
    inputs: Mapping[str, Any] | Any,
    outputs: Mapping[str, Any] | Any,
    *,
    model: str,
    task: str | None = None,
) -> Figure:
    """Draw one figure and save it: the entry point of the Snakemake figure rules.

    Args:
        figure: a name in :data:`FIGURES`.
        inputs: named inputs: ``scores`` (λ curves, token budget), ``cosine``,
            ``sparsity``.
        outputs: named outputs ``png`` and ``pdf``.
        model, task: what the figure shows (task for the per-task figures).

    Returns the figure (tests inspect its axes).
    """
    outputs = named_paths(outputs)
    if "png" not in outputs:
        raise LangarithError(f"figure {figure!r} needs the output 'png'")
    spec = figure_spec(figure)
    if spec.tasks is not None and not task:
        raise LangarithError(f"figure {figure!r} needs a task")
    named = {key: path_list(value) for key, value in named_paths(inputs).items()}
    drawn = spec.draw(FigureRequest(figure, named, model, task))
    save_figure(drawn, outputs["png"], outputs.get("pdf"))
    log.info("figure %s: %s", figure, outputs["png"])
    return drawn
