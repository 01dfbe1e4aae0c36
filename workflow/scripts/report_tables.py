import langarith.arms  # noqa: F401  (the arms register their tables and figures)
from langarith.report import write_table
from langarith.scripting import rule_step

with rule_step(snakemake):
    params = snakemake.params
    write_table(params.table, snakemake.input, snakemake.output, **dict(params.options))
