from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.analysis import write_task_cosine
from langarith.scripting import rule_step

with rule_step(snakemake):
    write_task_cosine(
        snakemake.input.backbone,
        dict(snakemake.params.adapters),
        snakemake.output.cosine,
    )
