"""Building models from folders: a backbone with language and task adapters.

Training and evaluation must assemble the MAD-X stack the same way, or the English
validation score that picks a task adapter's best checkpoint would not be the score
reported later. So both use these functions: the backbone as an ``adapters`` flexible-
head model without its MLM head, the language adapter under :data:`LANG_ADAPTER_NAME`
below the task adapter, the task's head on top. Adapters are loaded through the one
helper :func:`langarith.adapter_io.load_adapter_into`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from adapters import ADAPTER_CONFIG_MAP, AdapterConfig, AutoAdapterModel
from adapters.composition import Stack
from safetensors import SafetensorError
from transformers.utils import logging as hf_logging

from langarith import LangarithError
from langarith.adapter_io import CONFIG_NAME, SAFE_WEIGHTS_NAME, load_adapter_into
from langarith.backbone.folder import check_backbone_dir
from langarith.io import read_json
from langarith.task_kinds import DP_PAD

__all__ = [
    "LANG_ADAPTER_NAME",
    "activate_task_stack",
    "build_adapter_config",
    "check_adapter_dir",
    "check_same_backbone",
    "load_adapter_model",
    "load_language_adapter",
    "load_model_for_task",
    "quiet_transformers",
    "ready_parsing_head",
    "save_language_adapter",
]

#: Name under which language adapters live inside a model (and in Stack(lang, task)).
LANG_ADAPTER_NAME = "lang"


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence loading chatter that would only mislead.

    "Weights newly initialized / you should TRAIN": the pooler and the converted MLM head
    they refer to are unused here; ``adapters``' per-module INFO lines and "adapters
    available but none are activated" are logged while a stack is being built.
    """
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    quiet = {logging.getLogger("adapters"): logging.ERROR, logging.getLogger(): logging.WARNING}
    levels = [logger.level for logger in quiet]
    for logger, floor in quiet.items():
        logger.setLevel(max(logger.getEffectiveLevel(), floor))
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        for logger, old in zip(quiet, levels, strict=True):
            logger.setLevel(old)


def build_adapter_config(adapter_config: dict[str, Any] | None, defaults: dict[str, Any]):
    """An ``adapters`` config object from ``{"architecture": ..., **fields}``.

    Only names of ``adapters.ADAPTER_CONFIG_MAP`` are accepted, so a typo can never
    trigger a download attempt from AdapterHub.
    """
    merged = {**defaults, **(adapter_config or {})}
    architecture = merged.pop("architecture")
    if architecture not in ADAPTER_CONFIG_MAP:
        raise LangarithError(
            f"Adapter architecture {architecture!r} is unknown; allowed: "
            f"{', '.join(sorted(ADAPTER_CONFIG_MAP))}."
        )
    try:
        return AdapterConfig.load(architecture, **merged)
    except TypeError as err:
        raise LangarithError(
            f"Adapter config {merged} does not fit architecture {architecture!r} ({err})."
        ) from err


def check_adapter_dir(adapter_dir: Path, what: str) -> None:
    """Refuse a folder that is not an AdapterHub folder saved with safetensors.

    ``what`` names the role ("Language-adapter init", ...) so the message says which
    input of a stage is wrong.
    """
    if not adapter_dir.is_dir():
        raise LangarithError(f"{what} folder {adapter_dir} does not exist; create it first.")
    missing = [n for n in (CONFIG_NAME, SAFE_WEIGHTS_NAME) if not (adapter_dir / n).exists()]
    if missing:
        raise LangarithError(
            f"{what} folder {adapter_dir} is incomplete (missing {', '.join(missing)}); "
            "it must be an AdapterHub folder saved with safetensors."
        )


def check_same_backbone(meta: dict, backbone: dict, what: str, path: Path) -> None:
    """Refuse an adapter whose metadata records another backbone than ``backbone``
    (a :func:`~langarith.backbone.folder.backbone_fingerprint`): its weights would be
    meaningless on this one."""
    made_on = (meta.get("backbone") or {}).get("config_sha256")
    if made_on and made_on != backbone["config_sha256"]:
        raise LangarithError(
            f"{what} {path} was made for another backbone ({meta['backbone'].get('name')}, "
            f"config {made_on[:12]}) than {backbone['dir']} (config "
            f"{backbone['config_sha256'][:12]}); use adapters of the same backbone."
        )


def save_language_adapter(model, out_dir: Path, name: str = LANG_ADAPTER_NAME) -> None:
    """``model.save_adapter`` without a head (safetensors).

    ``adapters`` also writes a ``head_config.json`` with ``config: null`` for models with a
    static head; it is removed because language adapters have no head of their own.
    """
    model.save_adapter(str(out_dir), name, with_head=False, use_safetensors=True)
    head_cfg = Path(out_dir) / "head_config.json"
    if head_cfg.exists() and read_json(head_cfg, "Head config").get("config") is None:
        head_cfg.unlink()


def load_language_adapter(
    model,
    adapter_dir: Path | str,
    name: str = LANG_ADAPTER_NAME,
    *,
    leave_out: list[int] | None = None,
) -> str:
    """Load a saved language adapter (incl. its invertible adapter) into ``model`` as
    ``name``, without its modules in the ``leave_out`` layers (MAD-X 2.0)."""
    adapter_dir = Path(adapter_dir)
    check_adapter_dir(adapter_dir, "Language adapter")
    return load_adapter_into(model, adapter_dir, load_as=name, with_head=False, leave_out=leave_out)


def load_adapter_model(backbone_dir: Path | str, *, for_inference: bool = False):
    """``AutoAdapterModel`` of the backbone with no prediction heads.

    Loading an MLM checkpoint into a flex-head model converts its MLM head into a head
    named "default"; it is deleted so that only the task head can be active or trained.

    ``for_inference`` (evaluation, not training) first tries :func:`_direct_backbone`,
    which gives the same backbone weights in a fraction of the time; training keeps
    ``from_pretrained``, whose draws from the global random generator the trained
    adapters' initial weights follow.
    """
    backbone_dir = Path(backbone_dir)
    check_backbone_dir(backbone_dir)
    if for_inference:
        direct = _direct_backbone(backbone_dir)
        if direct is not None:
            return direct
    try:
        with quiet_transformers():
            model = AutoAdapterModel.from_pretrained(str(backbone_dir), local_files_only=True)
    except (OSError, ValueError, SafetensorError) as err:  # the last: a corrupt model.safetensors
        raise LangarithError(f"The backbone in {backbone_dir} cannot be loaded: {err}") from err
    for head in list(model.heads.keys()):
        model.delete_head(head)
    return model


#: Seed of the backbone parts a checkpoint does not hold (an MLM checkpoint's pooler) when
#: :func:`_direct_backbone` builds it: no head used here reads them, and a fixed seed keeps
#: them the same in every process without touching the global random generator.
UNSAVED_PARTS_SEED = 0


def _direct_backbone(backbone_dir: Path):
    """The flex-head model built from the backbone's config, its weights copied from
    ``model.safetensors``; ``None`` when the checkpoint needs ``from_pretrained``.

    Why: for a small model ``from_pretrained`` costs several times the copy itself
    (initialising every weight it then overwrites, converting the MLM head the caller
    deletes; the demo's tinybert: about 53 ms against 24 ms), and evaluation loads a
    backbone for every job and every racing search. The copy is taken only when the
    checkpoint is plain: one safetensors file, every tensor under the model's base
    prefix loaded by name (others are the MLM head), and nothing of the model missing
    but tied tensors and the pooler (absent from MLM checkpoints, read by no head here;
    initialised as ``from_pretrained`` would, from :data:`UNSAVED_PARTS_SEED`). Anything
    else (sharded or ``.bin`` weights, renamed keys, adapters saved inside) goes through
    ``from_pretrained``.
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig
    from transformers.modeling_utils import no_init_weights

    weights = backbone_dir / "model.safetensors"
    if not weights.is_file():
        return None
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(str(backbone_dir), local_files_only=True)
            if getattr(config, "adapters", None):
                return None
            with no_init_weights():
                model = AutoAdapterModel.from_config(config)
        if model.heads:
            return None
        state = load_file(str(weights))
        prefix = f"{model.base_model_prefix}."
        body = {key: value for key, value in state.items() if key.startswith(prefix)}
        result = model.load_state_dict(body, strict=False)
    except Exception:  # noqa: BLE001 - from_pretrained then loads it or says what is wrong
        return None
    if not body or result.unexpected_keys:
        return None
    tensors = model.state_dict(keep_vars=True)
    loaded = {tensors[key].data_ptr() for key in body}
    unsaved = []
    for key in result.missing_keys:
        if tensors[key].data_ptr() in loaded:
            continue  # tied to a loaded tensor (the prompt-tuning embeddings' reference)
        if not key.startswith(f"{prefix}pooler."):
            return None
        unsaved.append(key.rsplit(".", 1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNSAVED_PARTS_SEED)
        for name in sorted(set(unsaved)):
            model._init_weights(model.get_submodule(name))
    model.eval()
    return model


def activate_task_stack(model, task_name: str, lang_name: str | None = LANG_ADAPTER_NAME) -> None:
    """Make ``Stack(lang_name, task_name)`` active (just ``task_name`` if no language).

    A dependency-parsing head is made ready first (:func:`ready_parsing_head`): every
    path that trains or evaluates a task adapter passes here.
    """
    if lang_name is None:
        model.set_active_adapters(task_name)
    else:
        model.set_active_adapters(Stack(lang_name, task_name))
    model.active_head = task_name
    ready_parsing_head(model, task_name)


def ready_parsing_head(model, head_name: str) -> None:
    """Give a biaffine parsing head its own config whose pad id is the DP features' -1.

    ``adapters``' ``BiaffineParsingHead`` drops word starts and gold heads equal to the
    backbone's ``pad_token_id``. That id is 0 for BERT, which is also the gold head of
    every root word (left out of the loss), and 1 for XLM-R, which is also where the
    first word starts (dropped from every sentence). The features pad with -1
    (:data:`langarith.task_kinds.DP_PAD`), and the head alone compares with it;
    the backbone's own config is untouched. Other heads are left as they are.
    """
    heads = getattr(model, "heads", None)
    head = heads[head_name] if heads is not None and head_name in heads else None
    if head is None or getattr(head, "config", {}).get("head_type") != "dependency_parsing":
        return
    if getattr(head.model_config, "pad_token_id", None) == DP_PAD:
        return
    config = copy.deepcopy(head.model_config)
    config.pad_token_id = DP_PAD
    head.model_config = config


def load_model_for_task(
    backbone_dir: Path | str,
    task_adapter_dir: Path | str,
    lang_adapter_dir: Path | str | None = None,
    *,
    device: torch.device | str = "cpu",
    lang_name: str = LANG_ADAPTER_NAME,
):
    """A ready-to-evaluate model: backbone + language adapter ``lang_name`` (if given) +
    task adapter with its head, ``Stack(lang_name, task)`` active, eval mode, on ``device``.

    Without ``lang_adapter_dir`` only the task adapter is active; load or merge a language
    adapter named ``lang_name`` afterwards and call :func:`activate_task_stack`. The task
    name is ``model.active_head``.
    """
    task_adapter_dir = Path(task_adapter_dir)
    if not (task_adapter_dir / "head_config.json").exists():
        raise LangarithError(
            f"Task adapter folder {task_adapter_dir} has no head_config.json; it must be "
            "written by `langarith train task` (save_adapter with_head=True)."
        )
    model = load_adapter_model(backbone_dir, for_inference=True)
    if lang_adapter_dir is not None:
        load_language_adapter(model, lang_adapter_dir, name=lang_name)
    task_name = load_adapter_into(model, task_adapter_dir, with_head=True)
    activate_task_stack(model, task_name, lang_name if lang_adapter_dir is not None else None)
    model.to(torch.device(device))
    model.eval()
    return model
