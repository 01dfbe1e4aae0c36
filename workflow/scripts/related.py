from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.related import pick_related, write_related_table
from langarith.scripting import rule_step

with rule_step(snakemake):
    picks = pick_related(
        snakemake.params.targets,
        snakemake.params.pool,
        overrides=dict(snakemake.params.overrides),
    )
    write_related_table(picks, snakemake.output[0])
