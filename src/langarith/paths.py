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

__all__ = [
    "ANALYSIS_COSINE",
    "ANALYSIS_SPARSITY",
    "BACKBONE_DIR",
    "BUDGET_ADAPTER_DIR",
    "CHECKPOINT_ROOT",
    "DATA_DIR",
    "FIGURE",
    "INIT_DIR",
    "LANG_ADAPTER_DIR",
    "RELATED_TSV",
    "SCORE_CSV",
    "TABLE",
    "TASK_ADAPTER_DIR",
    "TOKENS_DIR",
    "benchmark",
    "checkpoint",
    "log",
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
ANALYSIS_COSINE = "results/analysis/{model}/cosine.csv"
ANALYSIS_SPARSITY = "results/analysis/{model}/sparsity.csv"
TABLE = "results/tables/{table}.{ext}"
FIGURE = "figures/{name}.{ext}"

#: Training checkpoints live outside the declared outputs, so that Snakemake does not
#: delete them when a job fails and a re-started job resumes.
CHECKPOINT_ROOT = ".checkpoints"

_ROOTS = ("results/", "resources/")


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
