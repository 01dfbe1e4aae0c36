from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.evaluate import run_job
from langarith.evaluate.runner import LabelFreeRequest
from langarith.scripting import rule_step

with rule_step(snakemake):
    label_free_csv = snakemake.output.get("label_free")  # rule lambda_grid_label_free
    label_free = None
    if label_free_csv is not None:
        label_free = LabelFreeRequest(
            snakemake.params.label_free,
            Path(label_free_csv),
            tokens_dir=snakemake.input.get("tokens"),
            text_dir=snakemake.input.get("text"),
        )
    run_job(
        snakemake.params.job,
        output=snakemake.output[0],
        related_tsv=snakemake.input.get("related"),
        threads=snakemake.threads,
        label_free=label_free,
    )
