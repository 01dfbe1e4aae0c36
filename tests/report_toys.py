"""A toy table and a toy figure: all that adding a table or a figure to the report takes.

Each is one function and one registry entry. ``register()`` adds them for a Snakefile
(tests/test_report.py's plan test); the tests' fixture adds and removes them itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.figure import Figure

from langarith.report.figures import FIGURES, FigureRequest, FigureSpec
from langarith.report.inputs import score_paths
from langarith.report.render import markdown_table
from langarith.report.tables import TABLES, BuiltTable, TableRequest, TableSpec, always_wanted


def build_toy_table(request: TableRequest) -> BuiltTable:
    """How many test rows each method has."""
    scores = request.scores()
    frame = scores[scores["split"] == "test"].groupby("method", as_index=False).size()
    return BuiltTable(frame, "# Toy\n\n" + markdown_table(frame))


def draw_toy_figure(request: FigureRequest) -> Figure:
    """A bar per method: how many rows the model's zero-shot scores hold."""
    counts = request.scores()["method"].value_counts().sort_index()
    figure = Figure(figsize=(3, 2))
    ax = figure.subplots()
    ax.bar(list(counts.index), list(counts.to_numpy()))
    ax.set_title(f"toy {request.model}")
    return figure


def zero_shot_scores(config: Mapping[str, Any], table: str) -> dict[str, list[str]]:
    """The toy table reads every zero-shot score file."""
    return {"scores": score_paths(config, ["zero_shot"])}


def zero_shot_model_scores(
    config: Mapping[str, Any], model: str, task: str | None
) -> dict[str, list[str]]:
    """The toy figure reads one model's zero-shot score files."""
    return {"scores": score_paths(config, ["zero_shot"], model=model)}


TOY_TABLE = TableSpec(build_toy_table, zero_shot_scores, always_wanted, "gains.rst", "Toy")
TOY_FIGURE = FigureSpec(draw_toy_figure, zero_shot_model_scores, "sparsity.rst", "Toy")


def register() -> None:
    """Add the toys to the registries (for a Snakefile; tests use a fixture)."""
    TABLES["toy"] = TOY_TABLE
    FIGURES["toy"] = TOY_FIGURE
