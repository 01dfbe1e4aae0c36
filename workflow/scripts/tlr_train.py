from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.scripting import rule_step
from langarith.tlr.trainer import train_tlr_job

with rule_step(snakemake):
    params = snakemake.params
    train_tlr_job(
        snakemake.input.backbone,
        list(params.specs),
        snakemake.input.data,
        params.kind,
        seed=int(snakemake.wildcards.seed),
        hparams=dict(params.hparams),
        leave_out_last=bool(params.leave_out_last),
        o_labels=list(params.o_labels),
    )
