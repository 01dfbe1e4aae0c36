# Task arithmetic with full fine-tuning (task-arithmetic-crosslingual; langarith.fullft):
# the whole backbone fine-tuned with MLM per language and once per task dataset, each
# a safetensors folder recording the θ0 it started from; one scoring job per (model,
# dataset, seed) runs the five variants over the dataset's targets (λ chosen on their
# mean validation score) and the sparsity curves. Planned from the config's `fullft`
# section by langarith.fullft.plan; its tables and figure come from the report
# registries (rules/common.smk loads the arms before rules/report.smk is read).
import langarith.fullft.plan as fullft_plan


rule fullft_language:
    input:
        backbone=paths.BACKBONE_DIR,
        data=paths.DATA_DIR.format(dataset="wikipedia", lang="{lang}"),
        tokens=paths.TOKENS_DIR,
    output:
        directory(paths.FULLFT_LANG_DIR),
    log:
        paths.log(paths.FULLFT_LANG_DIR),
    benchmark:
        paths.benchmark(paths.FULLFT_LANG_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 48 * 60 * attempt,
        gpu=1,
    params:
        hparams=lambda wc: _canonical(
            fullft_plan.language_hparams(config, wc.lang, wc.model)
        ),
        checkpoint_dir=paths.checkpoint(paths.FULLFT_LANG_DIR),
    script:
        "../workflow/scripts/fullft.py"


rule fullft_task:
    input:
        backbone=paths.BACKBONE_DIR,
        data=lambda wc: fullft_plan.task_data(config, wc.task),
    output:
        directory(paths.FULLFT_TASK_DIR),
    log:
        paths.log(paths.FULLFT_TASK_DIR),
    benchmark:
        paths.benchmark(paths.FULLFT_TASK_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 24 * 60 * attempt,
        gpu=1,
    params:
        hparams=lambda wc: _canonical(
            fullft_plan.task_hparams(config, wc.task, wc.model)
        ),
        kind=lambda wc: fullft_plan.fullft_datasets(config)[wc.task].get("kind", "nli"),
        metric=lambda wc: fullft_plan.task_metric(config, wc.task) or "",
        checkpoint_dir=paths.checkpoint(paths.FULLFT_TASK_DIR),
    script:
        "../workflow/scripts/fullft.py"


for _task in (
    fullft_plan.fullft_datasets(config) if fullft_plan.fullft_models(config) else []
):

    rule:
        name:
            f"fullft_evaluate_{_task}"
        input:
            unpack(
                lambda wc, task=_task: fullft_plan.job_inputs(
                    config, wc.model, task, wc.seed
                )
            ),
        output:
            **fullft_plan.job_outputs(config, _task),
        log:
            paths.log(paths.FULLFT_SPARSITY_PART.replace("{task}", _task)),
        benchmark:
            paths.benchmark(paths.FULLFT_SPARSITY_PART.replace("{task}", _task))
        wildcard_constraints:
            model="|".join(fullft_plan.fullft_models(config)),
        conda:
            "../envs/train.yaml"
        threads: get_threads("evaluate")
        resources:
            mem_mb=16000,
            runtime=lambda wc, attempt: 240 * attempt,
            gpu=1,
        params:
            job=lambda wc, task=_task: fullft_plan.fullft_job(
                config, wc.model, task, int(wc.seed)
            ),
        script:
            "../workflow/scripts/fullft.py"


rule fullft_sparsity:
    input:
        parts=lambda wc: fullft_plan.sparsity_parts(config, wc.model),
    output:
        paths.FULLFT_SPARSITY,
    log:
        paths.log(paths.FULLFT_SPARSITY),
    benchmark:
        paths.benchmark(paths.FULLFT_SPARSITY)
    localrule: True
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/fullft.py"
