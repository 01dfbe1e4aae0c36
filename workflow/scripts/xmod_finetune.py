from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.scripting import rule_step
from langarith.xmod.finetune import finetune_xmod_grid

with rule_step(snakemake):
    finetune_xmod_grid(
        Path(snakemake.input.backbone),
        Path(snakemake.input.data),
        Path(snakemake.output[0]),
        kind=snakemake.params.kind,
        seed=int(snakemake.wildcards.seed),
        source_language=snakemake.params.source,
        settings=dict(snakemake.params.settings),
        grid=[dict(point) for point in snakemake.params.grid],
        dev=dict(snakemake.params.dev),
    )
