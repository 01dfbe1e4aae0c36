from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.export import export_from_rule
from langarith.scripting import rule_step

with rule_step(snakemake):
    export_from_rule(snakemake.input.scores, snakemake.output[0], snakemake.params.method)
