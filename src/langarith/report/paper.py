"""The published numbers of the two language-arithmetic papers, and which runs match them.

``langarith/resources/paper_numbers.csv`` holds every number the seeds' tables print
(and a few quoted in the text), one row each, with the paper and table it comes from:

``paper``
    ``acl`` (ACL version) or ``ecai`` (ECAI version) of Klimaszewski, Andruszkiewicz and
    Birch, "No Train but Gain: Language Arithmetic for training-free Language Adapters
    enhancement"; ``xmod`` for the averages and per-language numbers of Tables 2 and 3
    of Pfeiffer et al. (2022), "Lifting the Curse of Multilinguality by Pre-training
    Modular Transformers" (scenarios ``xmod`` and ``xmod-shared``, model
    ``xmod-base-60-265k``, methods ``X-MOD`` and ``SHARED``, task ``mlqa`` for MLQA).
``table``
    where the number is printed (``Table 1``, ``Figure 10``, ``Section 4.3``).
``scenario``
    the workflow scenario it corresponds to (``zero_shot``, ``enhancement``,
    ``romance``, ``ties``; ``analysis`` for cosine similarities).
``model``
    ``mbert`` (bert-base-multilingual-cased) or ``xlmr`` (xlm-roberta-base); empty
    where the paper does not say.
``task``, ``language``, ``method``, ``partner``, ``top_k``
    ``language`` is the evaluated language or ``AVG``; ``method`` is spelt as in the
    evaluation writes them (pEA, pRA, LA, T, LA(T,en), LA(T,REL), MIX, TIES, and
    LA(T,l2) for the Romance tables' LA(l1, l2)); ``partner`` is that l2, the related
    language of a per-language pRA, LA, LA(T,REL), MIX or TIES number (ECAI Table 5 for
    the ECAI tables), and the second language of a cosine; ``top_k`` the TIES
    percentage. ``MIX`` is the paper's: per language the better of LA(T,en) and
    LA(T,REL) by seed-averaged test score (ECAI Table 2 equals it in all 70 cells).
``pool``
    the languages a related language was drawn from (space-separated): the ACL pool
    (the 13 evaluation languages, ACL Table 2), the ECAI pool (adds fa and it, ECAI
    Table 5), or the Romance pool of the Romance tables; empty for cosines and gains.
``seeds``
    the number of runs a number averages where the paper says so (ACL Tables 1 and
    3: "three runs"); empty where it does not.
``metric``, ``score``
    ``f1``/``accuracy`` on 0-100 as printed; ``f1_gain`` for gains quoted in the text;
    ``cosine``.
``note``
    what the table says about the number, and any inconsistency found while copying.

The arms' published averages have their own files in the same columns (without
``partner``, ``top_k``, ``pool``) plus two: ``paper_numbers_fullft.csv`` (paper
``ta-crosslingual``: Tables 2, 4 and 7 of task-arithmetic-crosslingual, scenarios
``ta-<variant>``, task = the dataset, e.g. ``americasnli``; it also keeps the
``dataset``/``variant`` columns the arm's own table reads) and ``paper_numbers_tlr.csv``
(paper ``tlr``: Tables 2, 3, 4 and 6 of target-language-ready-adapters, scenarios
``tlr-<variant>``). :func:`load` returns all three in one frame, with

``languages``
    the languages an ``AVG`` averages (space-separated), where the file states them
    (the arms' files print averages only); empty for the core's rows, whose per-language
    rows say it.
``published_only``
    why no run of this workflow can match the number (SFT, BAD-X's language adapters,
    SHARED pre-training); empty where a run can.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from typing import Any

import pandas as pd

from langarith import LangarithError

__all__ = [
    "ARM_FILES",
    "COLUMNS",
    "EXTRA_COLUMNS",
    "PAPER_BACKBONES",
    "PUBLISHED_ONLY",
    "is_paper_setup",
    "load",
    "paper_backbones",
]

#: The papers' backbones: Hugging Face hub name → model key in the published numbers
#: (XLM-R large: task-arithmetic-crosslingual Table 4).
PAPER_BACKBONES = {
    "bert-base-multilingual-cased": "mbert",
    "xlm-roberta-base": "xlmr",
    "xlm-roberta-large": "xlmr-large",
}
#: The released X-MOD checkpoints' hub prefix; the rest of the name is the model key.
XMOD_HUB_PREFIX = "facebook/"
#: The arms' published numbers, beside paper_numbers.csv.
ARM_FILES = ("paper_numbers_fullft.csv", "paper_numbers_tlr.csv")
#: Published rows no run of this workflow can match, by (paper, method): the reason.
PUBLISHED_ONLY = {
    ("xmod", "SHARED"): "SHARED needs its own pre-training (no released checkpoint)",
}
#: The columns :func:`load` adds to :data:`COLUMNS`.
EXTRA_COLUMNS = ("languages", "published_only")
COLUMNS = (
    "paper",
    "table",
    "scenario",
    "model",
    "task",
    "language",
    "method",
    "partner",
    "top_k",
    "pool",
    "seeds",
    "metric",
    "score",
    "note",
)


def _read(name: str) -> pd.DataFrame:
    resource = importlib.resources.files("langarith") / "resources" / name
    with resource.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def _arm_rows(name: str) -> pd.DataFrame:
    """An arm's file in :data:`COLUMNS` (+ :data:`EXTRA_COLUMNS`): task from ``dataset``
    where the file has no ``task``, language ``AVG`` where it has none."""
    frame = _read(name)
    if "task" not in frame.columns and "dataset" in frame.columns:
        frame["task"] = frame["dataset"]
    if "language" not in frame.columns:
        frame["language"] = "AVG"
    for column in ("partner", "top_k", "pool"):
        frame[column] = ""
    required = [c for c in (*COLUMNS, *EXTRA_COLUMNS) if c not in frame.columns]
    if required:
        raise LangarithError(f"{name} lacks the column(s) {required}")
    return frame[[*COLUMNS, *EXTRA_COLUMNS]]


@functools.cache
def _load_cached() -> pd.DataFrame:
    frame = _read("paper_numbers.csv")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise LangarithError(f"paper_numbers.csv lacks the column(s) {missing}")
    frame["languages"] = ""
    frame["published_only"] = [
        PUBLISHED_ONLY.get((p, m), "") for p, m in zip(frame["paper"], frame["method"], strict=True)
    ]
    frame = pd.concat([frame, *(_arm_rows(name) for name in ARM_FILES)], ignore_index=True)
    frame["score"] = pd.to_numeric(frame["score"])
    return frame


def load() -> pd.DataFrame:
    """The published numbers (a copy; text columns as strings, ``score`` as float)."""
    return _load_cached().copy()


def paper_backbones(config: Mapping[str, Any]) -> dict[str, str]:
    """Run model name → paper model key, for the config's backbones that are the papers'.

    A demo backbone (built offline, ``demo:`` in the config) or any other hub model is
    left out; an empty result means the run's setup differs from the papers'.
    """
    if (config.get("data") or {}).get("source") == "demo":
        return {}
    matched = {}
    for model in config.get("models") or []:
        hub = str(model.get("hub", "")).strip()
        if "demo" not in model and hub in PAPER_BACKBONES:
            matched[str(model["name"])] = PAPER_BACKBONES[hub]
    for model in (config.get("xmod") or {}).get("models") or []:
        hub = str(model.get("hub") or "").strip()
        if hub.startswith(XMOD_HUB_PREFIX + "xmod-"):  # a released X-MOD checkpoint
            matched[str(model["name"])] = hub.removeprefix(XMOD_HUB_PREFIX)
    return matched


def is_paper_setup(config: Mapping[str, Any]) -> bool:
    """True when at least one backbone of the config is one of the papers' models."""
    return bool(paper_backbones(config))
