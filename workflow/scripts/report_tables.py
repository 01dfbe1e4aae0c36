from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.arms import load_arms
from langarith.report import write_table
from langarith.scripting import rule_step

load_arms()  # an arm's table or figure is in the registries once loaded
with rule_step(snakemake):
    params = snakemake.params
    write_table(params.table, snakemake.input, snakemake.output, **dict(params.options))
