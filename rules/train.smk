# Adapters: one shared θ_init per backbone, language adapters (MLM) and English task
# adapters, each an AdapterHub folder. Checkpoints live under .checkpoints/ (outside
# the declared outputs) so that a killed job resumes instead of starting over.


rule init_language_adapter:
    input:
        backbone=plan.BACKBONE_DIR,
    output:
        directory(plan.INIT_DIR),
    log:
        "logs/train/{model}/lang/init.log",
    benchmark:
        "benchmarks/train/{model}/lang/init.tsv"
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
        backbone=plan.BACKBONE_DIR,
        init=plan.INIT_DIR,
        data="resources/data/wikipedia/{lang}",
    output:
        directory(plan.LANG_ADAPTER_DIR),
    log:
        "logs/train/{model}/lang/{lang}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{model}/lang/{lang}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 24 * 60 * attempt,
        gpu=1,
    params:
        hparams=get_language_training,
        checkpoint_dir=".checkpoints/{model}/lang/{lang}/seed{seed}",
    script:
        "../workflow/scripts/train_language_adapter.py"


use rule train_language_adapter as train_budget_adapter with:
    output:
        directory(plan.BUDGET_ADAPTER_DIR),
    log:
        "logs/train/{model}/lang/{lang}/budget{tokens}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{model}/lang/{lang}/budget{tokens}/seed{seed}.tsv"
    params:
        hparams=get_language_training,
        checkpoint_dir=".checkpoints/{model}/lang/{lang}/budget{tokens}/seed{seed}",


rule train_task_adapter:
    input:
        backbone=plan.BACKBONE_DIR,
        lang_adapter=get_source_adapter,
        data=get_task_data,
    output:
        directory(plan.TASK_ADAPTER_DIR),
    log:
        "logs/train/{model}/task/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{model}/task/{task}/seed{seed}.tsv"
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
        checkpoint_dir=".checkpoints/{model}/task/{task}/seed{seed}",
    script:
        "../workflow/scripts/train_task_adapter.py"
