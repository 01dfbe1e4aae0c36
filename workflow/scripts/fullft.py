from langarith.warm import handoff

handoff()  # in the warm process when the workflow has it on (config warm_start)

from pathlib import Path

from langarith.scripting import rule_step

with rule_step(snakemake) as log:
    rule = snakemake.rule
    if rule == "fullft_language":
        from langarith.fullft.train import finetune_language

        finetune_language(
            Path(snakemake.input.backbone),
            Path(snakemake.input.data),
            Path(snakemake.input.tokens),
            Path(snakemake.output[0]),
            seed=int(snakemake.wildcards.seed),
            hparams=dict(snakemake.params.hparams),
            checkpoint_dir=Path(snakemake.params.checkpoint_dir),
        )
    elif rule == "fullft_task":
        from langarith.fullft.train import finetune_task

        finetune_task(
            Path(snakemake.input.backbone),
            Path(snakemake.input.data),
            Path(snakemake.output[0]),
            kind=str(snakemake.params.kind),
            seed=int(snakemake.wildcards.seed),
            hparams=dict(snakemake.params.hparams),
            checkpoint_dir=Path(snakemake.params.checkpoint_dir),
            metric=str(snakemake.params.metric) or None,
        )
    elif rule == "fullft_sparsity":
        from langarith.fullft.report import combine_sparsity

        combine_sparsity(list(snakemake.input.parts), snakemake.output[0])
    else:
        from langarith.fullft.evaluate import FullFtJob, run_fullft_job

        job = FullFtJob(**dict(snakemake.params.job))
        for target in job.skipped:
            log.info("fullft %s: target %s has no text; skipped", job.task, target)
        run_fullft_job(job)
