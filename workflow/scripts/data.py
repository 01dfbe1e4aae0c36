from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.data import prepare_demo_dataset, prepare_real_dataset
from langarith.scripting import rule_step

with rule_step(snakemake):
    prepare = prepare_demo_dataset if snakemake.params.source == "demo" else prepare_real_dataset
    prepare(
        snakemake.wildcards.dataset,
        snakemake.wildcards.lang,
        Path(snakemake.output[0]),
        options=dict(snakemake.params.options),
    )
