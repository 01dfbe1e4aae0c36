"""The report rules, generated from the table and figure registries.

``rules/report.smk`` defines one Snakemake rule per :class:`ReportRule` returned by
:func:`report_rules`: a rule per table (the scenario tables share ``scenario_table``
with a ``{scenario}`` wildcard) and a rule per figure kind. Everything that differs
between the rules (output files, inputs, caption, report category, resources) is
here; what they share (conda environment, one thread, the script) is in the rule file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from langarith.paths import FIGURE, TABLE, benchmark, in_setup, log
from langarith.report.figures import FIGURES, FigureSpec, figure_outputs
from langarith.report.inputs import Config
from langarith.report.tables import TABLES, TableSpec, table_outputs

__all__ = ["ReportRule", "report_outputs", "report_rules"]

#: A rule's input function: (config, wildcards) → named input files.
RuleInputs = Callable[[Config, Mapping[str, str]], dict[str, list[str]]]


@dataclasses.dataclass(frozen=True)
class ReportRule:
    """The facts of one report rule (see the module docstring)."""

    name: str
    kind: str  # "table" or "figure": which script runs and which params it gets
    pattern: str  # one output file with ``{ext}`` still open, e.g. figures/x_{model}.{ext}
    formats: tuple[str, ...]
    caption: str
    category: str
    subcategory: str
    labels: dict[str, str]
    inputs: RuleInputs
    constraints: dict[str, str] = dataclasses.field(default_factory=dict)
    options: Callable[[Config], dict[str, Any]] | None = None
    registry_name: str = ""  # the table or figure kind; a wildcard pattern when shared
    mem_mb: int = 2000
    runtime: int = 10

    def outputs(self) -> dict[str, str]:
        """Output patterns by format (``csv``/``md``/``tex`` or ``png``/``pdf``)."""
        return {ext: self.pattern.replace("{ext}", ext) for ext in self.formats}

    @property
    def log(self) -> str:
        """The rule's log file (mirrors the output path under ``logs/``)."""
        return log(self.pattern)

    @property
    def benchmark(self) -> str:
        """The rule's benchmark file (mirrors the output path under ``benchmarks/``)."""
        return benchmark(self.pattern)

    def params(self, config: Config) -> dict[str, Any]:
        """The script's parameters: which table and its options, or which figure.

        ``script`` names the script (``workflow/scripts/<script>.py``): a rule defined
        in a loop formats its script path when the job runs, after the loop has moved
        on, so the path must come from the rule's own params, not from the loop
        variable. (Not the bare kind: ``figure`` is a prefix of the output paths, which
        ``snakemake --lint`` reads as a hard-coded path.)
        """
        script = f"report_{self.kind}s"
        if self.kind == "table":
            options = self.options(config) if self.options else {}
            return {"script": script, "table": self.registry_name, "options": options}
        return {"script": script, "figure": self.registry_name}

    def input_function(self, config: Config) -> Callable[[Any], dict[str, list[str]]]:
        """The rule's input function (for ``unpack``), bound to a config."""

        def named_inputs(wildcards: Any) -> dict[str, list[str]]:
            return self.inputs(config, dict(wildcards.items()))

        return named_inputs


def _table_rule(name: str, names: list[str], spec: TableSpec) -> ReportRule:
    """The rule of one table, or of a group of tables sharing a rule and a wildcard."""
    stem = spec.stem or name
    constraints = {}
    wildcards = re.findall(r"{(\w+)}", stem)
    if wildcards:
        constraints = {wildcards[0]: "|".join(names)}

    def inputs(config: Config, values: Mapping[str, str]) -> dict[str, list[str]]:
        table = stem.format(**values)
        return TABLES[table].inputs(config, table)

    return ReportRule(
        name=spec.rule or f"{name}_table",
        kind="table",
        pattern=TABLE.format(table=stem, ext="{ext}"),
        formats=spec.formats,
        caption=spec.caption,
        category="Tables",
        subcategory=spec.subcategory,
        labels={"table": stem},
        inputs=inputs,
        constraints=constraints,
        options=spec.options,
        registry_name=stem,
        mem_mb=spec.mem_mb,
        runtime=spec.runtime,
    )


def table_rules() -> list[ReportRule]:
    """One rule per table of :data:`~langarith.report.tables.TABLES` (shared rules once)."""
    groups: dict[str, list[str]] = {}
    for name, spec in TABLES.items():
        groups.setdefault(spec.rule or f"{name}_table", []).append(name)
    return [_table_rule(names[0], names, TABLES[names[0]]) for names in groups.values()]


def _figure_rule(name: str, spec: FigureSpec) -> ReportRule:
    def inputs(config: Config, values: Mapping[str, str]) -> dict[str, list[str]]:
        return spec.inputs(config, values["model"], values.get("task"))

    return ReportRule(
        name=f"{name}_figure",
        kind="figure",
        pattern=FIGURE.format(name=spec.stem(name), ext="{ext}"),
        formats=("png", "pdf"),
        caption=spec.caption,
        category="Figures",
        subcategory=spec.subcategory,
        labels=spec.labels(name),
        inputs=inputs,
        constraints={"model": spec.model_pattern} if spec.model_pattern else {},
        registry_name=name,
        mem_mb=spec.mem_mb,
        runtime=spec.runtime,
    )


def figure_rules() -> list[ReportRule]:
    """One rule per figure kind of :data:`~langarith.report.figures.FIGURES`."""
    return [_figure_rule(name, spec) for name, spec in FIGURES.items()]


def report_rules(config: Config | None = None) -> list[ReportRule]:
    """Every report rule: tables, then figures (outputs in the config's setup folder)."""
    found = table_rules() + figure_rules()
    if config is None:
        return found
    return [dataclasses.replace(r, pattern=in_setup(r.pattern, config)) for r in found]


def report_outputs(config: Config) -> list[str]:
    """Every table and figure file of a config: what ``rule all`` adds for the report."""
    tables = [path for paths in table_outputs(config).values() for path in paths.values()]
    return tables + figure_outputs(config)
