from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.scripting import rule_step
from langarith.tlr.badx import train_badx_language_adapter

with rule_step(snakemake):
    train_badx_language_adapter(
        snakemake.input.backbone,
        snakemake.input.init,
        snakemake.input.data,
        snakemake.output[0],
        seed=int(snakemake.wildcards.seed),
        hparams=dict(snakemake.params.hparams),
        checkpoint_dir=snakemake.params.checkpoint_dir,
    )
