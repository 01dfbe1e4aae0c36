from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.scripting import rule_step
from langarith.tlr.alignment import run_alignment_job

with rule_step(snakemake):
    run_alignment_job(snakemake.input.backbone, dict(snakemake.params.job))
