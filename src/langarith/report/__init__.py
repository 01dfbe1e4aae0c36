"""Tables, figures and the Snakemake report: what a researcher takes away from a run.

Modules:

* :mod:`~langarith.report.scores`: read and check the evaluation's score CSVs.
* :mod:`~langarith.report.stats`: mean ± std over seeds, crossed bootstrap CIs.
* :mod:`~langarith.report.tables`: the papers' tables (CSV, Markdown, LaTeX).
* :mod:`~langarith.report.figures`: λ curves, cosine heatmap, sparsity, token budget.
* :mod:`~langarith.report.paper`: the published numbers and which runs match them.
* :mod:`~langarith.report.inputs`: the report rules' inputs and outputs for a config.
* :mod:`~langarith.report.cli`: ``langarith summary``.

The Snakemake scripts call :func:`write_table` and :func:`write_figure`; ``rule all``
asks for :func:`report_outputs`. Figures import matplotlib, so they load on first use.
"""

from __future__ import annotations

from typing import Any

from langarith.report.cli import register_cli, summary
from langarith.report.inputs import (
    figure_outputs,
    paper_backbones,
    report_outputs,
    score_paths,
    table_inputs,
    table_outputs,
)
from langarith.report.scores import read_scores
from langarith.report.stats import BootstrapCI, bootstrap_ci, mean_std
from langarith.report.tables import TABLES, write_table

__all__ = [
    "FIGURES",
    "TABLES",
    "BootstrapCI",
    "bootstrap_ci",
    "figure_outputs",
    "mean_std",
    "paper_backbones",
    "read_scores",
    "register_cli",
    "report_outputs",
    "score_paths",
    "summary",
    "table_inputs",
    "table_outputs",
    "write_figure",
    "write_table",
]


def __getattr__(name: str) -> Any:
    if name in ("write_figure", "FIGURES"):
        from langarith.report import figures

        return getattr(figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
