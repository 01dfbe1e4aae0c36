# The TLR arm (issue 17): target language-ready task adapters, trained over a cycle of
# frozen language adapters (one per optimiser step), scored on each target as
# Stack(target LA, task adapter) against MAD-X (langarith.tlr). Rules are generated per
# task of the config's `tlr.tasks`: one training job per (model, seed) trains every
# variant's adapters of the task one after the other (each job costs seconds of start-up
# on the demo, so adapters are not one job each), and one scoring job scores them all on
# every target, which also pairs the test items for the t-tests against MAD-X.
from langarith.tlr import register as tlr_register  # the arm's table and figures
from langarith.tlr.variants import (
    score_inputs as tlr_score_inputs,
    score_spec as tlr_score_spec,
    task_data as tlr_task_data,
    tlr_hparams,
    tlr_plan,
    tlr_task as tlr_task_spec,
    train_inputs as tlr_train_inputs,
    train_specs as tlr_train_specs,
)

TLR_PLAN = tlr_plan(config)
TLR_TASKS = list(TLR_PLAN.tasks) if TLR_PLAN is not None else []
TLR_JOB = "results/adapters/{model}/task-tlr/jobs/{task}/seed{seed}"
# scoring is per setup (config `setup`): its log and benchmark follow its scores
TLR_SCORE_JOB = "results/tlr/{model}/{task}/seed{seed}.score"


for tlr_task in TLR_TASKS:
    if TLR_PLAN.adapter_patterns(tlr_task):

        rule:
            name:
                f"tlr_train_{tlr_task}"
            input:
                backbone=paths.BACKBONE_DIR,
                lang_adapters=lambda wc, task=tlr_task: tlr_train_inputs(
                    config, task, wc.model, wc.seed
                ),
                data=tlr_task_data(
                    config,
                    tlr_task,
                    config.get("source_language", "en"),
                    "train_dataset",
                ),
            output:
                [directory(p) for p in TLR_PLAN.adapter_patterns(tlr_task)],
            log:
                paths.log(TLR_JOB.replace("{task}", f"train-{tlr_task}")),
            benchmark:
                paths.benchmark(TLR_JOB.replace("{task}", f"train-{tlr_task}"))
            conda:
                "../envs/train.yaml"
            threads: get_threads("train")
            resources:
                mem_mb=16000,
                runtime=lambda wc, attempt: 48 * 60 * attempt,
                gpu=1,
            params:
                specs=lambda wc, task=tlr_task: tlr_train_specs(
                    config, task, wc.model, wc.seed
                ),
                hparams=tlr_hparams(config, tlr_task),
                kind=tlr_task_spec(config, tlr_task).kind,
                leave_out_last=bool(config["tlr"].get("leave_out_last", True)),
                o_labels=list(config["tlr"].get("o_labels") or []),
            script:
                "../workflow/scripts/tlr_train.py"

    rule:
        name:
            f"tlr_score_{tlr_task}"
        input:
            backbone=paths.BACKBONE_DIR,
            folders=lambda wc, task=tlr_task: tlr_score_inputs(
                config, task, wc.model, wc.seed
            ),
        output:
            [
                *TLR_PLAN.score_files(config, tlr_task),
                TLR_PLAN.ttest_file(config, tlr_task),
            ],
        log:
            paths.log(paths.in_setup(TLR_SCORE_JOB.replace("{task}", tlr_task), config)),
        benchmark:
            paths.benchmark(
                paths.in_setup(TLR_SCORE_JOB.replace("{task}", tlr_task), config)
            )
        conda:
            "../envs/train.yaml"
        threads: get_threads("evaluate")
        resources:
            mem_mb=8000,
            runtime=lambda wc, attempt: 120 * attempt,
            gpu=1,
        params:
            job=lambda wc, task=tlr_task: tlr_score_spec(
                config, task, wc.model, wc.seed
            ),
        script:
            "../workflow/scripts/tlr_score.py"
