# The TLR arm (issue 17): target language-ready task adapters, trained over a cycle of
# frozen language adapters (one per optimiser step), scored on each target as
# Stack(target LA, task adapter) against MAD-X (langarith.tlr). Rules are generated per
# task of the config's `tlr.tasks`: one training job per (model, seed) trains every
# variant's adapters of the task one after the other (each job costs seconds of start-up
# on the demo, so adapters are not one job each), and one scoring job scores them all on
# every target, which also pairs the test items for the t-tests against MAD-X.
from langarith.tlr import register as tlr_register  # the arm's table and figures
from langarith.tlr.variants import (
    alignment_inputs as tlr_alignment_inputs,
    alignment_settings as tlr_alignment_settings,
    alignment_spec as tlr_alignment_spec,
    badx_la_config as tlr_badx_la_config,
    badx_la_hparams as tlr_badx_la_hparams,
    la_family as tlr_la_family,
    paper_la_config as tlr_paper_la_config,
    paper_la_hparams as tlr_paper_la_hparams,
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


if TLR_PLAN is not None and tlr_la_family(config) == "paper":

    # tlr.language_adapters: paper: the seed's LA setup as a family of its own, trained
    # by the core's rules (θ_init, then MLM on the core's token files) with its settings.
    use rule init_language_adapter as tlr_paper_init with:
        output:
            directory(paths.TLR_PAPER_INIT_DIR),
        log:
            paths.log(paths.TLR_PAPER_INIT_DIR),
        benchmark:
            paths.benchmark(paths.TLR_PAPER_INIT_DIR)
        params:
            adapter_config=_canonical(tlr_paper_la_config(config)),

    use rule train_language_adapter as tlr_paper_language_adapter with:
        input:
            backbone=paths.BACKBONE_DIR,
            init=paths.TLR_PAPER_INIT_DIR,
            data=paths.DATA_DIR.format(dataset="wikipedia", lang="{lang}"),
            tokens=paths.TOKENS_DIR,
        output:
            directory(paths.TLR_PAPER_LANG_ADAPTER_DIR),
        log:
            paths.log(paths.TLR_PAPER_LANG_ADAPTER_DIR),
        benchmark:
            paths.benchmark(paths.TLR_PAPER_LANG_ADAPTER_DIR)
        params:
            hparams=lambda wc: _canonical(tlr_paper_la_hparams(config, wc.lang)),
            checkpoint_dir=paths.checkpoint(paths.TLR_PAPER_LANG_ADAPTER_DIR),


if TLR_PLAN is not None and TLR_PLAN.badx_pairs():

    # BAD-X (variant badx): a bilingual corpus per (source, target), a θ_init without the
    # invertible adapter, and the bilingual language adapter by the core's trainer.
    use rule init_language_adapter as tlr_badx_init with:
        output:
            directory(paths.TLR_BADX_INIT_DIR),
        log:
            paths.log(paths.TLR_BADX_INIT_DIR),
        benchmark:
            paths.benchmark(paths.TLR_BADX_INIT_DIR)
        params:
            adapter_config=_canonical(tlr_badx_la_config(config)),

    rule tlr_badx_corpus:
        input:
            source=paths.DATA_DIR.format(dataset="wikipedia", lang="{source}"),
            target=paths.DATA_DIR.format(dataset="wikipedia", lang="{lang}"),
        output:
            directory(paths.TLR_BADX_CORPUS_DIR),
        log:
            paths.log(paths.TLR_BADX_CORPUS_DIR),
        benchmark:
            paths.benchmark(paths.TLR_BADX_CORPUS_DIR)
        wildcard_constraints:
            source="[a-z]{2,3}",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=lambda wc, attempt: 60 * attempt,
        script:
            "../workflow/scripts/tlr_badx_corpus.py"

    rule tlr_badx_language_adapter:
        input:
            backbone=paths.BACKBONE_DIR,
            init=paths.TLR_BADX_INIT_DIR,
            data=paths.TLR_BADX_CORPUS_DIR,
        output:
            directory(paths.TLR_BADX_LANG_ADAPTER_DIR),
        log:
            paths.log(paths.TLR_BADX_LANG_ADAPTER_DIR),
        benchmark:
            paths.benchmark(paths.TLR_BADX_LANG_ADAPTER_DIR)
        wildcard_constraints:
            source="[a-z]{2,3}",
        conda:
            "../envs/train.yaml"
        threads: get_threads("train")
        resources:
            mem_mb=16000,
            runtime=lambda wc, attempt: 24 * 60 * attempt,
            gpu=1,
        params:
            hparams=lambda wc: _canonical(tlr_badx_la_hparams(config, wc.lang)),
            checkpoint_dir=paths.checkpoint(paths.TLR_BADX_LANG_ADAPTER_DIR),
        script:
            "../workflow/scripts/tlr_badx_language_adapter.py"


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


if tlr_alignment_settings(config) is not None:

    # Figure 3 of the TLR seed: per-layer [CLS] cosine, English vs target, per variant.
    rule tlr_alignment:
        input:
            backbone=paths.BACKBONE_DIR,
            folders=lambda wc: tlr_alignment_inputs(config, wc.model),
        output:
            paths.TLR_ALIGNMENT_CSV,
        log:
            paths.log(paths.TLR_ALIGNMENT_CSV),
        benchmark:
            paths.benchmark(paths.TLR_ALIGNMENT_CSV)
        conda:
            "../envs/train.yaml"
        threads: get_threads("evaluate")
        resources:
            mem_mb=8000,
            runtime=lambda wc, attempt: 60 * attempt,
            gpu=1,
        params:
            job=lambda wc: tlr_alignment_spec(config, wc.model),
        script:
            "../workflow/scripts/tlr_alignment.py"
