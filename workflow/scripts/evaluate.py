from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from langarith.evaluate import run_job
from langarith.scripting import rule_step

with rule_step(snakemake):
    run_job(
        snakemake.params.job,
        output=snakemake.output[0],
        related_tsv=snakemake.input.get("related"),
        threads=snakemake.threads,
    )
