from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.scripting import rule_step
from langarith.xmod.adding import add_language

with rule_step(snakemake):
    add_language(
        Path(snakemake.input.backbone),
        Path(snakemake.input.corpus),
        Path(snakemake.output[0]),
        language=snakemake.wildcards.lang,
        settings=dict(snakemake.params.settings),
    )
