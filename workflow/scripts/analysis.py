from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.analysis import write_analysis
from langarith.scripting import rule_step

with rule_step(snakemake):
    write_analysis(
        snakemake.input.init,
        dict(snakemake.params.adapters),
        snakemake.output.cosine,
        snakemake.output.sparsity,
    )
