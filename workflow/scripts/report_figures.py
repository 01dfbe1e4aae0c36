import langarith.arms  # noqa: F401  (the arms register their tables and figures)
from langarith.report import write_figure
from langarith.scripting import rule_step

with rule_step(snakemake):
    figure_of = dict(snakemake.wildcards.items())  # model, and task where the figure has one
    write_figure(snakemake.params.figure, snakemake.input, snakemake.output, **figure_of)
