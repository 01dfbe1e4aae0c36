# The workflow's own Python: config validation, wildcard constraints, input functions.
# The planning logic lives in the package (langarith.config, langarith.plan).
import sys

from langarith import LangarithError, analysis_plan, paths, plan
from langarith.evaluate import scenarios
from langarith.config import check_config, config_warnings, validate_schema
from langarith.report import report_outputs
from langarith.export_plan import keep_outputs
from langarith.arm_registry import arm_outputs
from langarith.arms import load_arms
from langarith.evaluate.label_free import check_label_free, label_free_outputs

# the arms (rules/tlr.smk, ...) join the registries of tables, figures and outputs
load_arms()

# Offline first (a missing model or dataset fails at once instead of hanging), jobs in
# conda envs (--use-conda) import the package from the source tree, and local jobs fork
# from a warm process when warm_start is on (never the jobs of a cluster executor).
plan.prepare_environment(config, Path(workflow.basedir), remote=workflow.remote_exec)
# Snakemake finds the rules that produce a path once per path, not once per reader.
plan.memoize_producer_lookups()

# The schema's defaults are filled in (except where the training code applies them,
# langarith.config.AS_WRITTEN); then the checks a schema cannot express, including the
# typed training settings. Either stops the dry run with one message.
try:
    SCHEMA = Path(str(workflow.current_basedir)).parent / "workflow/schemas"
    validate_schema(config, SCHEMA / "config.schema.yaml")
    check_config(config, base_dir=Path(workflow.basedir))
    keep_outputs(config)  # a merge.keep triple without a score file stops here
    check_label_free(config)  # unknown selectors, scenarios not run, no target text
except LangarithError as err:
    sys.exit(f"Config error: {err}")
for _warning in config_warnings(config):
    print(f"Config warning: {_warning}", file=sys.stderr)


# Once the last job is done, Snakemake's interpreter would still wait for the job-rate
# limiter's timers (up to the profile's 10 s timespan) before it exits.
onsuccess:
    plan.release_rate_limiter_timers()


onerror:
    plan.release_rate_limiter_timers()


wildcard_constraints:
    model="|".join(plan.model_names(config)),
    lang="[a-z]{2,3}",
    seed=r"\d+",
    tokens=r"\d+",
    dataset="[a-z0-9_]+",
    task="[a-z0-9_]+",


def _canonical(value):
    """Sort mapping keys, so that reordering a config file is not a params change.

    Snakemake's params trigger compares the rendered params; without this, a config
    rewritten by a tool (keys sorted) would re-run every training job.
    """
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    return value


def get_final_outputs():
    return (
        plan.final_targets(config)
        + scenarios.score_outputs(config)
        + keep_outputs(config)
        + label_free_outputs(config)
        + analysis_plan.analysis_outputs(config)
        + report_outputs(config)
        + arm_outputs(config)
    )


def get_dataset_options(wildcards):
    """Options of one (dataset, language): the only config a dataset's rule depends on."""
    data = config["data"]
    if data["source"] == "demo":
        return _canonical(
            dict(data.get("demo") or {}, **_wikipedia_options(wildcards.dataset))
        )
    options = dict(_wikipedia_options(wildcards.dataset))
    revision = (data.get("revisions") or {}).get(wildcards.dataset)
    if revision:
        options["revision"] = revision
    local = (
        (data.get("local_paths") or {}).get(wildcards.dataset, {}).get(wildcards.lang)
    )
    if local:
        options["local_path"] = str(Path(workflow.basedir) / local)
    # SMSA leaves out NusaX's Indonesian test texts (the folder is the rule's input)
    for path in plan.dataset_inputs(config, wildcards.dataset, wildcards.lang).values():
        options["exclude_texts_of"] = path
    text = plan.text_manifest(config, wildcards.lang)
    if wildcards.dataset == "wikipedia" and text:
        options["text_manifest"] = str(Path(workflow.basedir) / text)
    return _canonical(options)


def _wikipedia_options(dataset):
    if dataset != "wikipedia":
        return {}
    return {
        k: v
        for k, v in (config["data"].get("wikipedia") or {}).items()
        if v is not None
    }


def get_model_spec(wildcards):
    return _canonical(plan.model_spec(config, wildcards.model))


def get_backbone_corpora(wildcards):
    """A demo backbone is pre-trained on every adapter language's demo Wikipedia."""
    if "demo" not in plan.model_spec(config, wildcards.model):
        return []
    # ancient(): the backbone is a fixed pre-trained model, as a hub model is; a later
    # change of one language's corpus re-trains that language's adapters, not the
    # backbone (and with it every adapter).
    return [
        ancient(paths.DATA_DIR.format(dataset="wikipedia", lang=lang))
        for lang in config["languages"]
    ]


def get_init_adapter_config():
    return _canonical(dict(config["language_adapter"]["adapter_config"]))


def get_language_training(wildcards):
    """Language adapter hyper-parameters, with the token budget of a budget adapter."""
    spec = config["language_adapter"]
    hparams = dict(spec.get("training") or {})
    hparams.update((spec.get("per_language") or {}).get(wildcards.lang, {}))
    if "tokens" in wildcards.keys():
        hparams["max_train_tokens"] = int(wildcards.tokens)
    return _canonical(hparams)


def get_task_training(wildcards):
    """Task adapter hyper-parameters: shared training settings plus the task's own."""
    spec = config["task_adapter"]
    hparams = dict(spec.get("training") or {})
    hparams.update((spec.get("per_task") or {}).get(wildcards.task, {}))
    hparams["adapter_config"] = dict(spec.get("adapter_config") or {})
    return _canonical(hparams)


def get_task_data(wildcards):
    """English training (and validation) data of a task adapter."""
    spec = config["tasks"][wildcards.task]
    return paths.DATA_DIR.format(
        dataset=spec["train_dataset"], lang=config.get("source_language", "en")
    )


def get_source_adapter(wildcards):
    """The frozen source-language adapter stacked below a task adapter (same seed)."""
    return paths.LANG_ADAPTER_DIR.format(
        model=wildcards.model,
        lang=config.get("source_language", "en"),
        seed=wildcards.seed,
    )


def get_threads(stage):
    """Threads of a GPU/CPU-heavy stage (config `threads`), default 2."""
    return int((config.get("threads") or {}).get(stage, 2))
