from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.scripting import rule_step
from langarith.train.tokens import tokenize_corpus

with rule_step(snakemake):
    tokenize_corpus(
        Path(snakemake.input.backbone), Path(snakemake.input.data), Path(snakemake.output[0])
    )
