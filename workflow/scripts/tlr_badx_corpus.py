from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.scripting import rule_step
from langarith.tlr.badx import write_bilingual_corpus

with rule_step(snakemake):
    write_bilingual_corpus(snakemake.input.source, snakemake.input.target, snakemake.output[0])
