"""A backbone folder: its checks, its fingerprint and loading it (never from the network).

Output of the backbone stage: ``resources/backbones/<model>/`` = a ``save_pretrained``
folder of an ``AutoModelForMaskedLM`` + its tokenizer + ``metadata.json``.
"""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from langarith import LangarithError
from langarith.io import OutputKind, read_json, sha256_file

__all__ = [
    "BACKBONE_OUTPUT",
    "backbone_fingerprint",
    "check_backbone_dir",
    "load_backbone",
    "load_tokenizer",
]

#: Files ``save_pretrained`` writes for a model and its tokenizer, and metadata.json.
_BACKBONE_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".bin")

#: A backbone folder as an output: recognised by the metadata.json the backbone stage
#: writes (kind ``demo`` or ``hub``) and holding only model and tokenizer files.
BACKBONE_OUTPUT = OutputKind(
    "backbone folder",
    record="metadata.json",
    record_kinds=("demo", "hub"),
    allowed=lambda name: name.endswith(_BACKBONE_SUFFIXES),
)


def backbone_fingerprint(backbone_dir: Path | str) -> dict[str, str]:
    """Name and config checksum of a backbone, recorded in every adapter's metadata.

    Adapters are only meaningful on the exact backbone they were trained on; the checksum
    lets later stages refuse mismatching pairs.
    """
    backbone_dir = Path(backbone_dir)
    check_backbone_dir(backbone_dir)
    meta_path = backbone_dir / "metadata.json"
    meta = read_json(meta_path, "Backbone metadata") if meta_path.exists() else {}
    return {
        "name": str(meta.get("name", backbone_dir.name)),
        "dir": str(backbone_dir),
        "config_sha256": sha256_file(backbone_dir / "config.json"),
    }


def check_backbone_dir(backbone_dir: Path) -> None:
    """Refuse a missing or incomplete backbone folder before anything is loaded from it.

    The usual causes are a stage that was not run yet or an interrupted manual copy; both
    deserve a message that says what to do rather than a transformers traceback.
    """
    if not backbone_dir.is_dir():
        raise LangarithError(
            f"Backbone folder {backbone_dir} does not exist; build it first "
            "(`langarith backbone demo ...` or `langarith backbone fetch ...`)."
        )
    missing = [name for name in ("config.json",) if not (backbone_dir / name).exists()]
    has_weights = any(
        (backbone_dir / name).exists()
        for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    )
    has_tokenizer = any(
        (backbone_dir / name).exists()
        for name in (
            "tokenizer.json",
            "vocab.txt",
            "sentencepiece.bpe.model",
            "tokenizer_config.json",
        )
    )
    if missing or not has_weights or not has_tokenizer:
        what = (
            missing
            + ([] if has_weights else ["model weights"])
            + ([] if has_tokenizer else ["tokenizer files"])
        )
        raise LangarithError(
            f"Backbone folder {backbone_dir} is incomplete (missing {', '.join(what)}); "
            "delete it and build it again."
        )


def load_tokenizer(backbone_dir: Path | str) -> PreTrainedTokenizerBase:
    """The backbone's (fast) tokenizer from its folder, never from the network."""
    backbone_dir = Path(backbone_dir)
    check_backbone_dir(backbone_dir)
    try:
        return AutoTokenizer.from_pretrained(str(backbone_dir), local_files_only=True)
    except (OSError, ValueError) as err:
        raise LangarithError(f"The tokenizer in {backbone_dir} cannot be loaded: {err}") from err


def load_backbone(backbone_dir: Path | str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(AutoModelForMaskedLM, tokenizer)`` from a backbone folder, with a clear error if
    the folder is missing or corrupt (the usual cause: an interrupted manual copy)."""
    backbone_dir = Path(backbone_dir)
    tokenizer = load_tokenizer(backbone_dir)
    try:
        model = AutoModelForMaskedLM.from_pretrained(str(backbone_dir), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise LangarithError(
            f"The model in {backbone_dir} cannot be loaded ({err}); delete the folder and "
            "build it again."
        ) from err
    return model, tokenizer
