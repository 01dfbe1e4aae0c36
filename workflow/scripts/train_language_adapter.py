from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.scripting import rule_step
from langarith.train.language_adapter import train_language_adapter

with rule_step(snakemake):
    train_language_adapter(
        Path(snakemake.input.backbone),
        Path(snakemake.input.init),
        Path(snakemake.input.data),
        Path(snakemake.output[0]),
        seed=int(snakemake.wildcards.seed),
        hparams=dict(snakemake.params.hparams),
        checkpoint_dir=Path(snakemake.params.checkpoint_dir),
        tokens_dir=Path(snakemake.input.tokens),
    )
