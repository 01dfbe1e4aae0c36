# Tables (results/tables/) and figures (figures/) from the score and analysis CSVs.
# One rule per table and per figure kind, generated from the registries in
# langarith.report.tables (TABLES) and langarith.report.figures (FIGURES): adding a
# table or a figure adds its rule. Every output is registered with report(), so
# `snakemake --report report.zip` gives a browsable report. The jobs are seconds of
# pandas and matplotlib: they run locally, not as cluster jobs.
# Inside the loop, only directives read when the rule is defined may use `spec`; the
# script path is formatted when a job runs, so it takes its name from the params.
from langarith.report.rules import report_rules


def report_rule_outputs(spec):
    """A rule's outputs; the first format is shown in the report with its caption."""
    outputs = spec.outputs()
    first = spec.formats[0]
    outputs[first] = report(
        outputs[first],
        caption=f"../workflow/report/{spec.caption}",
        category=spec.category,
        subcategory=spec.subcategory,
        labels=spec.labels,
    )
    return outputs


for spec in report_rules(config):

    rule:
        name:
            spec.name
        input:
            unpack(spec.input_function(config)),
        output:
            **report_rule_outputs(spec),
        log:
            spec.log,
        benchmark:
            spec.benchmark
        wildcard_constraints:
            **spec.constraints,
        localrule: True
        conda:
            "../envs/report.yaml"
        threads: 1
        resources:
            mem_mb=spec.mem_mb,
            runtime=spec.runtime,
        params:
            **spec.params(config),
        script:
            "../workflow/scripts/{params.script}.py"
