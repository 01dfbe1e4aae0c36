from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.scripting import rule_step
from langarith.train.language_adapter import init_language_adapter

with rule_step(snakemake):
    adapter_config = dict(snakemake.params.adapter_config)
    init_language_adapter(
        Path(snakemake.input.backbone),
        Path(snakemake.output[0]),
        adapter_config=adapter_config,
        seed=int(adapter_config.pop("init_seed", 0)),
    )
