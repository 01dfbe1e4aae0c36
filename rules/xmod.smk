# The X-MOD arm (issue 15): tiny X-MOD and SHARED backbones pre-trained with a module per
# language (or a released X-MOD checkpoint), languages added post hoc, English
# fine-tuning with embeddings and modules frozen, and the core's score CSVs (scenarios
# xmod and xmod-shared). What a config makes, and every input and parameter below:
# langarith.xmod.plan.
from langarith.xmod import plan as xmod_plan

try:
    xmod_plan.check_xmod(config)
except LangarithError as err:
    sys.exit(f"Config error: {err}")


wildcard_constraints:
    arm="xmod|shared",
    xset="|".join(xmod_plan.sets(config)) or "no-xmod-set",
    xscenario="xmod|xmod-shared",


rule xmod_backbone:
    input:
        unpack(lambda wc: xmod_plan.backbone_inputs(config, wc.xset)),
    output:
        directory(paths.XMOD_BACKBONE_DIR),
    log:
        paths.log(paths.XMOD_BACKBONE_DIR),
    benchmark:
        paths.benchmark(paths.XMOD_BACKBONE_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 24 * 60 * attempt,
        gpu=1,
    params:
        spec=lambda wc: xmod_plan.set_params(config, wc.xset),
    script:
        "../workflow/scripts/xmod_backbone.py"


rule xmod_add_language:
    input:
        backbone=paths.XMOD_BACKBONE_DIR,
        corpus=paths.DATA_DIR.format(dataset="wikipedia", lang="{lang}"),
    output:
        directory(paths.XMOD_ADDED_DIR),
    log:
        paths.log(paths.XMOD_ADDED_DIR),
    benchmark:
        paths.benchmark(paths.XMOD_ADDED_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 12 * 60 * attempt,
        gpu=1,
    params:
        settings=xmod_plan.adding_params(config),
    script:
        "../workflow/scripts/xmod_add_language.py"


rule xmod_finetune:
    input:
        backbone=paths.XMOD_BACKBONE_DIR,
        data=lambda wc: xmod_plan.train_data(config, wc.task),
        dev=lambda wc: sorted(
            set(xmod_plan.dev_data(config, wc.xset, wc.task).values())
        ),
    output:
        directory(paths.XMOD_TASK_DIR),
    log:
        paths.log(paths.XMOD_TASK_DIR),
    benchmark:
        paths.benchmark(paths.XMOD_TASK_DIR)
    conda:
        "../envs/train.yaml"
    threads: get_threads("train")
    resources:
        mem_mb=16000,
        runtime=lambda wc, attempt: 12
        * 60
        * attempt
        * len(xmod_plan.grid_points(config, wc.task)),
        gpu=1,
    params:
        kind=lambda wc: config["tasks"][wc.task]["kind"],
        source=config.get("source_language", "en"),
        settings=lambda wc: xmod_plan.finetune_params(config, wc.task),
        grid=lambda wc: xmod_plan.grid_points(config, wc.task),
        dev=lambda wc: xmod_plan.dev_data(config, wc.xset, wc.task),
    script:
        "../workflow/scripts/xmod_finetune.py"


# One job per (arm, set, seed) scores every task and target: a job per target would
# spend more on starting Python than on scoring the demo's 300 rows.
rule xmod_score:
    input:
        unpack(
            lambda wc: xmod_plan.score_inputs(
                config, xmod_plan.arm_of_scenario(wc.xscenario), wc.xset, wc.seed
            )
        ),
    output:
        xmod_plan.score_outputs(config),
    log:
        "logs/scores/{xscenario}/{xset}/seed{seed}.log",
    benchmark:
        "benchmarks/scores/{xscenario}/{xset}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    threads: get_threads("evaluate")
    resources:
        mem_mb=8000,
        runtime=lambda wc, attempt: 6 * 60 * attempt,
        gpu=1,
    params:
        job=lambda wc: xmod_plan.score_job(
            config, xmod_plan.arm_of_scenario(wc.xscenario), wc.xset, wc.seed
        ),
    script:
        "../workflow/scripts/xmod_score.py"


# Scenario xmod_la (beyond the paper): for each added target, the en and related modules
# merged by language arithmetic, λ searched on validation, training-free (base
# tokenizer and embeddings). One job per (set, seed), as xmod_score.
if xmod_plan.la_wanted(config):

    rule xmod_la_score:
        input:
            unpack(lambda wc: xmod_plan.la_inputs(config, wc.xset, wc.seed)),
        output:
            xmod_plan.la_score_outputs(config),
        log:
            "logs/scores/xmod-la/{xset}/seed{seed}.log",
        benchmark:
            "benchmarks/scores/xmod-la/{xset}/seed{seed}.tsv"
        conda:
            "../envs/train.yaml"
        threads: get_threads("evaluate")
        resources:
            mem_mb=8000,
            runtime=lambda wc, attempt: 6 * 60 * attempt,
            gpu=1,
        params:
            job=lambda wc: xmod_plan.la_job(config, wc.xset, wc.seed),
        script:
            "../workflow/scripts/xmod_la.py"
