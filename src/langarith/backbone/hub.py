"""Real backbones: ``bert-base-multilingual-cased`` / ``xlm-roberta-base`` from the hub."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from transformers import AutoModelForMaskedLM, AutoTokenizer

from langarith import LangarithError
from langarith.backbone.folder import BACKBONE_OUTPUT
from langarith.io import atomic_dir, check_replaceable, sha256_file, write_json
from langarith.provenance import utc_now, versions

__all__ = ["fetch_hub_backbone"]

log = logging.getLogger(__name__)


def _hub_help(hub_name: str) -> str:
    """How to get a backbone onto a machine that cannot download it."""
    return (
        f"Backbone {hub_name!r} could not be loaded from the Hugging Face hub (offline or "
        "not found). Run this step on a machine with internet access, or pre-populate the "
        "HF cache (e.g. `huggingface-cli download "
        f"{hub_name}` and copy ~/.cache/huggingface), or set `path:` of this model in the "
        "config to a local folder holding the save_pretrained files."
    )


def fetch_hub_backbone(
    hub_name: str,
    out_dir: Path | str,
    *,
    revision: str | None = None,
    path: Path | str | None = None,
) -> Path:
    """Download ``hub_name`` (or read the local folder ``path``) and save it to ``out_dir``.

    Offline or unknown names fail at once with a LangarithError that says how to get the
    files (internet machine, pre-populated HF cache, or ``path:`` to a local folder).
    """
    out_dir = Path(out_dir)
    source = str(path) if path is not None else hub_name
    if path is not None and not Path(path).is_dir():
        raise LangarithError(
            f"Local backbone path {path} is not a folder; fix `path:` in the config."
        )
    protect = [path] if path is not None else []
    check_replaceable(out_dir, BACKBONE_OUTPUT, protect)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
        model = AutoModelForMaskedLM.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as err:
        if path is not None:
            raise LangarithError(
                f"The local backbone folder {path} cannot be loaded ({err}); it must hold "
                "save_pretrained files of a masked-LM model and its tokenizer."
            ) from err
        raise LangarithError(_hub_help(hub_name)) from err
    if not getattr(tokenizer, "is_fast", False):
        raise LangarithError(
            f"Backbone {hub_name!r} has no fast tokenizer; the NER and QA feature builders "
            "need offsets/word ids from a fast tokenizer."
        )
    with atomic_dir(out_dir, BACKBONE_OUTPUT) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "metadata.json",
            {
                "name": out_dir.name,
                "kind": "hub",
                "hub_name": hub_name,
                "revision": revision,
                "local_path": str(path) if path is not None else None,
                "commit_hash": getattr(model.config, "_commit_hash", None),
                "model_type": model.config.model_type,
                "vocab_size": len(tokenizer),
                "num_parameters": int(model.num_parameters()),
                "config_sha256": sha256_file(tmp / "config.json"),
                "wall_time_s": round(time.perf_counter() - started, 2),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    log.info("Saved backbone %s to %s", hub_name, out_dir)
    return out_dir
