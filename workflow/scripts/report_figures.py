from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.arms import load_arms
from langarith.report import write_figure
from langarith.scripting import rule_step

load_arms()  # an arm's table or figure is in the registries once loaded
with rule_step(snakemake):
    figure_of = dict(snakemake.wildcards.items())  # model, and task where the figure has one
    write_figure(snakemake.params.figure, snakemake.input, snakemake.output, **figure_of)
