"""Every path pattern of the workflow, in one place.

Rules (``rules/*.smk``), planners and report code format these patterns; no other
module or rule spells an artifact path. Patterns are relative to the workflow's
working directory and use Snakemake's ``{wildcard}`` syntax, so the same string is a
rule's output and, formatted with :meth:`str.format`, a concrete path.

Layout (docs/interfaces.md): downloads and backbones under ``resources/``, everything
the study computes under ``results/``, figures under ``figures/``; logs and benchmarks
mirror an artifact's path under ``logs/`` and ``benchmarks/`` (:func:`log` and
:func:`benchmark`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ANALYSIS_COSINE",
    "ANALYSIS_SPARSITY",
    "ANALYSIS_TASK_COSINE",
    "BACKBONE_DIR",
    "BUDGET_ADAPTER_DIR",
    "CHECKPOINT_ROOT",
    "DATA_DIR",
    "EXPORT_DIR",
    "FIGURE",
    "FULLFT_LANG_DIR",
    "FULLFT_SPARSITY",
    "FULLFT_SPARSITY_PART",
    "FULLFT_TASK_DIR",
    "INIT_DIR",
    "LABEL_FREE_CSV",
    "LANG_ADAPTER_DIR",
    "RELATED_TSV",
    "SCORE_CSV",
    "TABLE",
    "TASK_ADAPTER_DIR",
    "TLR_ALIGNMENT_CSV",
    "TLR_BADX_CORPUS_DIR",
    "TLR_BADX_INIT_DIR",
    "TLR_BADX_LANG_ADAPTER_DIR",
    "TLR_PAPER_INIT_DIR",
    "TLR_PAPER_LANG_ADAPTER_DIR",
    "TLR_TASK_ADAPTER_DIR",
    "TLR_TTEST_CSV",
    "TOKENS_DIR",
    "XMOD_ADDED_DIR",
    "XMOD_BACKBONE_DIR",
    "XMOD_TASK_DIR",
    "benchmark",
    "checkpoint",
    "in_setup",
    "log",
    "setup_name",
]

# resources/: inputs the study starts from
DATA_DIR = "resources/data/{dataset}/{lang}"
BACKBONE_DIR = "resources/backbones/{model}"

# results/: what the study computes
RELATED_TSV = "results/related_languages.tsv"
#: A Wikipedia corpus tokenized once per backbone (token files + metadata.json), read by
#: every seed and every token-budget adapter of the language.
TOKENS_DIR = "results/tokens/{model}/{lang}"
INIT_DIR = "results/adapters/{model}/lang/init"
LANG_ADAPTER_DIR = "results/adapters/{model}/lang/{lang}/seed{seed}"
BUDGET_ADAPTER_DIR = "results/adapters/{model}/lang/{lang}/budget{tokens}/seed{seed}"
TASK_ADAPTER_DIR = "results/adapters/{model}/task/{task}/seed{seed}"
SCORE_CSV = "results/scores/{scenario}/{model}/{task}/{target}/seed{seed}.csv"
#: A target-language-ready task adapter (the TLR arm, :mod:`langarith.tlr`); ``target``
#: is ``all`` for the variants that train one adapter per task.
TLR_TASK_ADAPTER_DIR = "results/adapters/{model}/task-tlr/{variant}/{task}/{target}/seed{seed}"
#: The TLR arm's paired t-tests against MAD-X over test items, per (model, task, seed).
TLR_TTEST_CSV = "results/tlr/{model}/{task}/seed{seed}.ttest.csv"
#: The TLR arm's own language-adapter family (``tlr.language_adapters: paper``, the
#: seed's LA setup): its θ_init and its adapters, trained by the core's LA trainer.
TLR_PAPER_INIT_DIR = "results/adapters/{model}/lang-paper/init"
TLR_PAPER_LANG_ADAPTER_DIR = "results/adapters/{model}/lang-paper/{lang}/seed{seed}"
#: The TLR arm's BAD-X baseline: a bilingual corpus per (source, target) (documents of the
#: two Wikipedia folders in turn), its θ_init without invertible adapter, its adapters.
TLR_BADX_CORPUS_DIR = "results/tlr/badx-corpus/{source}-{lang}"
TLR_BADX_INIT_DIR = "results/adapters/{model}/language-badx/init"
TLR_BADX_LANG_ADAPTER_DIR = "results/adapters/{model}/language-badx/{source}-{lang}/seed{seed}"
#: The TLR arm's per-layer [CLS] cosine, English vs target (Figure 3 of its seed).
TLR_ALIGNMENT_CSV = "results/analysis/{model}/tlr_alignment.csv"
#: A merged adapter kept at its chosen λ (config ``merge.keep``, :mod:`langarith.export`).
EXPORT_DIR = "results/exported/{scenario}/{model}/{task}/{target}/seed{seed}"
LABEL_FREE_CSV = "results/label_free/{scenario}/{model}/{task}/{target}/seed{seed}.csv"
ANALYSIS_COSINE = "results/analysis/{model}/cosine.csv"
ANALYSIS_SPARSITY = "results/analysis/{model}/sparsity.csv"
ANALYSIS_TASK_COSINE = "results/analysis/{model}/task_cosine.csv"
#: Task arithmetic with full fine-tuning (``rules/fullft.smk``): fully fine-tuned models
#: (safetensors + metadata.json with the θ0 checksum) and the sparsity curves.
FULLFT_LANG_DIR = "results/fullft/{model}/lang/{lang}/seed{seed}"
FULLFT_TASK_DIR = "results/fullft/{model}/task/{task}/seed{seed}"
FULLFT_SPARSITY_PART = "results/fullft/{model}/sparsity/{task}/seed{seed}.csv"
FULLFT_SPARSITY = "results/analysis/{model}/fullft_sparsity.csv"
TABLE = "results/tables/{table}.{ext}"
#: The X-MOD arm (rules/xmod.smk): an X-MOD or SHARED backbone per language set
#: (``arm``: xmod or shared), a language added post hoc (tokenizer, embeddings,
#: modules), an English-fine-tuned task model; its scores are SCORE_CSV files of
#: scenarios ``xmod`` and ``xmod-shared`` (model: the set).
XMOD_BACKBONE_DIR = "resources/backbones/{arm}-{xset}"
XMOD_ADDED_DIR = "results/xmod/{arm}-{xset}/added/{lang}"
XMOD_TASK_DIR = "results/xmod/{arm}-{xset}/task/{task}/seed{seed}"
FIGURE = "figures/{name}.{ext}"

#: Training checkpoints live outside the declared outputs, so that Snakemake does not
#: delete them when a job fails and a re-started job resumes.
CHECKPOINT_ROOT = ".checkpoints"

_ROOTS = ("results/", "resources/")

#: Artifacts that differ between two setups sharing one results tree (a setup's pool
#: and related pairs change its related table, scores, tables and figures); adapters,
#: backbones, data and the analysis of language vectors are shared.
_SETUP_SCOPED = (
    RELATED_TSV,
    "results/scores/",
    "results/exported/",
    "results/tlr/",
    "results/label_free/",
    "results/tables/",
    "figures/",
)


def setup_name(config: Mapping[str, Any]) -> str:
    """The config's ``setup`` (e.g. ``acl``, ``ecai``), or ``""`` when it has none."""
    return str(config.get("setup") or "").strip()


def in_setup(pattern: str, config: Mapping[str, Any]) -> str:
    """``pattern`` inside the config's setup folder, when it is a per-setup artifact.

    A config naming a ``setup`` (``config/config.yaml``: ``acl``, ``config/ecai.yaml``:
    ``ecai``) keeps its related table, scores, tables and figures under
    ``results/<setup>/`` and ``figures/<setup>/``, so that the papers' two setups, which
    share adapters but not partners, live side by side in one results tree. Without a
    ``setup`` (demo, tests, a user's own config) the patterns are unchanged. Shared
    artifacts (adapters, data, backbones, analysis) are returned as they are; so is a
    pattern or path already inside a setup folder.
    """
    name = setup_name(config)
    if not name or not pattern.startswith(_SETUP_SCOPED):
        return pattern
    root, _, rest = pattern.partition("/")
    return f"{root}/{name}/{rest}"


def _stem(pattern: str) -> str:
    """An artifact pattern without ``results/`` or ``resources/`` and its file extension."""
    for root in _ROOTS:
        if pattern.startswith(root):
            pattern = pattern[len(root) :]
            break
    head, _, tail = pattern.rpartition("/")
    if "." in tail and not tail.startswith("{"):
        tail = tail.rsplit(".", 1)[0]
    elif tail.endswith("}.{ext}"):
        tail = tail[: -len(".{ext}")]
    return f"{head}/{tail}" if head else tail


def log(pattern: str) -> str:
    """The log file of the rule that writes ``pattern``: its path under ``logs/``."""
    return f"logs/{_stem(pattern)}.log"


def benchmark(pattern: str) -> str:
    """The benchmark file of the rule that writes ``pattern``, under ``benchmarks/``."""
    return f"benchmarks/{_stem(pattern)}.tsv"


def checkpoint(pattern: str) -> str:
    """The checkpoint folder of the training rule that writes ``pattern``."""
    return f"{CHECKPOINT_ROOT}/{_stem(pattern)}"
