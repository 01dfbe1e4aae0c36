# The X-MOD arm (issue 15): tiny X-MOD and SHARED backbones pre-trained with a module per
# language (or a released X-MOD checkpoint), languages added post hoc, English
# fine-tuning with embeddings and modules frozen, and the core's score CSVs (scenarios
# xmod and xmod-shared). What a config makes: langarith.xmod.plan.
from langarith.xmod import plan as xmod_plan

try:
    xmod_plan.check_xmod(config)
except LangarithError as err:
    sys.exit(f"Config error: {err}")


wildcard_constraints:
    arm="xmod|shared",
    xset="|".join(xmod_plan.sets(config)) or "no-xmod-set",
    xscenario="xmod|xmod-shared",


def get_xmod_backbone_inputs(wildcards):
    return xmod_plan.backbone_inputs(config, wildcards.xset)


def get_xmod_set(wildcards):
    """The set's spec with the pre-training settings it overrides merged in."""
    spec = xmod_plan.set_spec(config, wildcards.xset)
    demo = dict(spec.get("demo") or {})
    demo.pop("like", None)
    pretrain = dict(xmod_plan.xmod_section(config).get("pretrain") or {}, **demo)
    return _canonical(dict(spec, pretrain=pretrain))


def get_xmod_settings(section):
    return _canonical(dict(xmod_plan.xmod_section(config).get(section) or {}))


def get_xmod_finetune(wildcards):
    """Fine-tuning settings: xmod.finetune with the task's xmod.per_task overrides."""
    section = xmod_plan.xmod_section(config)
    per_task = (section.get("per_task") or {}).get(wildcards.task) or {}
    return _canonical(dict(section.get("finetune") or {}, **per_task))


def get_xmod_score_inputs(wildcards):
    arm = xmod_plan.arm_of_scenario(wildcards.xscenario)
    return xmod_plan.score_inputs(config, arm, wildcards.xset, wildcards.seed)


def get_xmod_finetune_all(wildcards):
    """Each task's fine-tuning settings (scoring reads max_length and max_eval_rows)."""
    section = xmod_plan.xmod_section(config)
    return {
        task: _canonical(
            dict(
                section.get("finetune") or {},
                **((section.get("per_task") or {}).get(task) or {}),
            )
        )
        for task in xmod_plan.tasks(config)
    }


rule xmod_backbone:
    input:
        unpack(get_xmod_backbone_inputs),
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
        spec=get_xmod_set,
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
        settings=get_xmod_settings("adding"),
    script:
        "../workflow/scripts/xmod_add_language.py"


rule xmod_finetune:
    input:
        backbone=paths.XMOD_BACKBONE_DIR,
        data=lambda wc: paths.DATA_DIR.format(
            dataset=config["tasks"][wc.task]["train_dataset"],
            lang=config.get("source_language", "en"),
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
        runtime=lambda wc, attempt: 12 * 60 * attempt,
        gpu=1,
    params:
        kind=lambda wc: config["tasks"][wc.task]["kind"],
        source=config.get("source_language", "en"),
        settings=get_xmod_finetune,
    script:
        "../workflow/scripts/xmod_finetune.py"


rule xmod_score:
    input:
        unpack(get_xmod_score_inputs),
    output:
        xmod_plan.score_outputs(config),
    log:
        f"logs/scores/{{xscenario}}/{{xset}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/scores/{{xscenario}}/{{xset}}/seed{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: get_threads("evaluate")
    resources:
        mem_mb=8000,
        runtime=lambda wc, attempt: 6 * 60 * attempt,
        gpu=1,
    params:
        arm=lambda wc: xmod_plan.arm_of_scenario(wc.xscenario),
        targets=lambda wc: {
            task: xmod_plan.target_data(config, task)
            for task in xmod_plan.tasks(config)
        },
        added=lambda wc: xmod_plan.added_dirs(
            config, xmod_plan.arm_of_scenario(wc.xscenario), wc.xset
        ),
        tasks=lambda wc: xmod_plan.task_dirs(
            config, xmod_plan.arm_of_scenario(wc.xscenario), wc.xset, wc.seed
        ),
        scores=lambda wc: xmod_plan.score_paths(
            config, xmod_plan.arm_of_scenario(wc.xscenario), wc.xset, wc.seed
        ),
        settings=get_xmod_finetune_all,
    script:
        "../workflow/scripts/xmod_score.py"
