from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.scripting import rule_step
from langarith.tlr.scoring import job_from_lists, score_tlr_job

with rule_step(snakemake):
    score_tlr_job(job_from_lists(backbone=snakemake.input.backbone, **dict(snakemake.params.job)))
