# Adapters: one shared θ_init per backbone, language adapters (MLM, blocks read from the
# token files of rules/tokens.smk; memory does not grow with the corpus) and English task
# adapters, each an AdapterHub folder. Checkpoints live under .checkpoints/ (outside
# the declared outputs) so that a killed job resumes instead of starting over.


rule init_language_adapter:
    input:
        backbone=paths.BACKBONE_DIR,
    output:
        directory(paths.INIT_DIR),
    log:
        paths.log(paths.INIT_DIR),
    benchmark:
        paths.benchmark(paths.INIT_DIR)
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        adapter_config=get_init_adapter_config(),
    script:
        "../workflow/scripts/init_language_adapter.py"


rule train_language_adapter:
    input:
        backbone=paths.BACKBONE_DIR,
        init=paths.INIT_DIR,
        data=paths.DATA_DIR.format(dataset="wikipedia", lang="{lang}"),
        tokens=paths.TOKENS_DIR,
    output:
        directory(paths.LANG_ADAPTER_DIR),
    log:
        paths.log(paths.LANG_ADAPTER_DIR),
    benchmark:
        paths.benchmark(paths.LANG_ADAPTER_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 24 * 60 * attempt,
        gpu=1,
    params:
        hparams=get_language_training,
        checkpoint_dir=paths.checkpoint(paths.LANG_ADAPTER_DIR),
    script:
        "../workflow/scripts/train_language_adapter.py"


use rule train_language_adapter as train_budget_adapter with:
    output:
        directory(paths.BUDGET_ADAPTER_DIR),
    log:
        paths.log(paths.BUDGET_ADAPTER_DIR),
    benchmark:
        paths.benchmark(paths.BUDGET_ADAPTER_DIR)
    params:
        hparams=get_language_training,
        checkpoint_dir=paths.checkpoint(paths.BUDGET_ADAPTER_DIR),


rule train_task_adapter:
    input:
        backbone=paths.BACKBONE_DIR,
        lang_adapter=get_source_adapter,
        data=get_task_data,
    output:
        directory(paths.TASK_ADAPTER_DIR),
    log:
        paths.log(paths.TASK_ADAPTER_DIR),
    benchmark:
        paths.benchmark(paths.TASK_ADAPTER_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 12 * 60 * attempt,
        gpu=1,
    params:
        hparams=get_task_training,
        kind=lambda wc: config["tasks"][wc.task]["kind"],
        checkpoint_dir=paths.checkpoint(paths.TASK_ADAPTER_DIR),
    script:
        "../workflow/scripts/train_task_adapter.py"
