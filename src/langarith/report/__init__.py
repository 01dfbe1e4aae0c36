"""Tables, figures and the Snakemake report: what a researcher takes away from a run.

Modules:

* :mod:`~langarith.report.scores`: read and check the evaluation's score CSVs.
* :mod:`~langarith.report.stats`: mean ± std over seeds, crossed bootstrap CIs.
* :mod:`~langarith.report.inputs`: the score files and adapters a config's report reads.
* :mod:`~langarith.report.tables`: the papers' tables (CSV, Markdown, LaTeX) and the
  table registry :data:`TABLES`.
* :mod:`~langarith.report.figures`: λ curves, cosine heatmap, sparsity, token budget,
  and the figure registry :data:`FIGURES`.
* :mod:`~langarith.report.rules`: the report rules generated from both registries.
* :mod:`~langarith.report.paper`: the published numbers and which runs match them.
* :mod:`~langarith.report.cli`: ``langarith summary``.

The Snakemake scripts call :func:`write_table` and :func:`write_figure`; ``rule all``
asks for :func:`report_outputs`. matplotlib loads when the first figure is drawn.
"""

from __future__ import annotations

from langarith.report.cli import register_cli, summary
from langarith.report.figures import FIGURES, figure_outputs, write_figure
from langarith.report.inputs import score_paths
from langarith.report.paper import paper_backbones
from langarith.report.rules import report_outputs, report_rules
from langarith.report.scores import read_scores
from langarith.report.stats import BootstrapCI, bootstrap_ci, mean_std
from langarith.report.tables import TABLES, table_inputs, table_outputs, write_table

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
    "report_rules",
    "score_paths",
    "summary",
    "table_inputs",
    "table_outputs",
    "write_figure",
    "write_table",
]
