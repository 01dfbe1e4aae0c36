"""X-MOD checkpoints: ISO codes ↔ module keys, loading, and module and embedding surgery.

transformers' ``XmodModel`` already is the paper's layer (shared attention and FFN, the
FFN output + residual through the output LayerNorm, then the example's language module
``W_up·act(W_down·h)`` plus a residual, ``lang_ids`` per example), so this module only
reads and edits it: which module a language uses, a fresh module for a new language,
new word and position embeddings for a language with its own vocabulary.

Module keys are what the checkpoint's ``config.languages`` lists (``en_XX``, ``de_DE``
in the released models); the rest of the workflow speaks ISO codes (``en``, ``de``). A
SHARED model has one module, :data:`SHARED_KEY`, used by every language it was
pre-trained on; its config lists those languages under :data:`SHARED_LANGUAGES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import XmodConfig, XmodForMaskedLM

from langarith import LangarithError

__all__ = [
    "EMBEDDING_NAMES",
    "SHARED_KEY",
    "SHARED_LANGUAGES",
    "add_module",
    "build_config",
    "check_xmod_folder",
    "copied_embeddings",
    "demo_key",
    "embedding_state",
    "install_embeddings",
    "is_shared",
    "lang_ids",
    "layers",
    "load_module_state",
    "load_xmod",
    "module_key",
    "module_keys",
    "module_state",
]

#: The one module of a SHARED model.
SHARED_KEY = "shared"
#: Config attribute of a SHARED model: the ISO codes it was pre-trained on.
SHARED_LANGUAGES = "langarith_shared_languages"
#: The embedding tensors a language with its own vocabulary brings (X-MOD §3.3: word and
#: position embeddings), named as in ``model.roberta.embeddings``.
EMBEDDING_NAMES = ("word_embeddings.weight", "position_embeddings.weight")


def demo_key(iso: str) -> str:
    """The module key of a demo model's language, in the released models' locale style."""
    return f"{iso}_XX"


def is_shared(config: Any) -> bool:
    """Whether ``config`` is a SHARED model's (one module for every language)."""
    return getattr(config, SHARED_LANGUAGES, None) is not None


def module_keys(config: Any) -> dict[str, str]:
    """ISO code → module key of every language the checkpoint has a module for.

    X-MOD: each key of ``config.languages`` maps from its part before ``_`` (``en_XX`` →
    ``en``). SHARED: every pre-trained language maps to :data:`SHARED_KEY`.
    """
    if is_shared(config):
        return {str(iso): SHARED_KEY for iso in getattr(config, SHARED_LANGUAGES)}
    keys: dict[str, str] = {}
    for key in config.languages:
        keys.setdefault(str(key).split("_")[0].lower(), str(key))
    return keys


def module_key(config: Any, iso: str, where: str) -> str:
    """The module key of ``iso``; a code without one is refused naming the checkpoint's
    languages (add the language post hoc, or evaluate another one)."""
    keys = module_keys(config)
    if iso not in keys:
        raise LangarithError(
            f"{where}: language {iso!r} has no module in this checkpoint (its languages: "
            f"{', '.join(sorted(keys))}); list it under xmod.added to add it post hoc."
        )
    return keys[iso]


def build_config(
    base: Mapping[str, Any], languages: Sequence[str], *, shared: bool, reduction: int = 2
) -> XmodConfig:
    """An X-MOD (or SHARED) config with the sizes of the XLM-R-shaped ``base`` config.

    The module bottleneck is ``hidden / reduction`` (the paper: 384 for 768). Module keys
    are :func:`demo_key` of each ISO code; SHARED has the one :data:`SHARED_KEY`.
    """
    sizes = {
        k: base[k]
        for k in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "hidden_act",
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "max_position_embeddings",
            "type_vocab_size",
            "initializer_range",
            "layer_norm_eps",
            "pad_token_id",
            "bos_token_id",
            "eos_token_id",
        )
        if k in base
    }
    keys = [SHARED_KEY] if shared else [demo_key(iso) for iso in languages]
    config = XmodConfig(**sizes, adapter_reduction_factor=reduction, languages=keys)
    config.default_language = keys[0]
    if shared:
        setattr(config, SHARED_LANGUAGES, list(languages))
    return config


def check_xmod_folder(folder: Path | str, what: str) -> dict[str, Any]:
    """The config.json of an X-MOD checkpoint folder; anything else is refused."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise LangarithError(f"{what} {folder} has no config.json; it is not a checkpoint folder.")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("model_type") != "xmod":
        raise LangarithError(
            f"{what} {folder} is a {config.get('model_type')!r} checkpoint, not X-MOD "
            "(model_type 'xmod'); use an X-MOD checkpoint such as facebook/xmod-base-60-265k."
        )
    return config


def load_xmod(folder: Path | str, cls: type = XmodForMaskedLM, **kwargs: Any):
    """An X-MOD model of class ``cls`` from a local checkpoint folder (safetensors only)."""
    check_xmod_folder(folder, "X-MOD checkpoint")
    return cls.from_pretrained(str(folder), use_safetensors=True, **kwargs)


def layers(model) -> list:
    """The transformer layers of an X-MOD model of any head."""
    return list(model.base_model.encoder.layer)


def lang_ids(model, keys: Sequence[str]) -> torch.Tensor:
    """``lang_ids`` for examples whose modules are ``keys`` (indices in module order)."""
    order = list(layers(model)[0].output.adapter_modules.keys())
    missing = sorted(set(keys) - set(order))
    if missing:
        raise LangarithError(f"Module keys {missing} are not in the model (it has {order}).")
    return torch.tensor([order.index(k) for k in keys], dtype=torch.long)


def add_module(model, key: str, seed: int) -> None:
    """A fresh module ``key`` in every layer (seeded init), listed in ``config.languages``.

    A key the model already has is refused: adding a language that has a module would
    overwrite what pre-training learned.
    """
    if key in model.config.languages:
        raise LangarithError(
            f"Language module {key!r} already exists in this checkpoint (languages: "
            f"{', '.join(model.config.languages)}); a pre-trained language is not added again."
        )
    generator = torch.Generator().manual_seed(seed)
    std = float(model.config.initializer_range)
    for layer in layers(model):
        template = next(iter(layer.output.adapter_modules.values()))
        module = type(template)(model.config)
        with torch.no_grad():
            for name, param in module.named_parameters():
                if name.endswith("bias"):
                    param.zero_()
                else:
                    param.copy_(torch.randn(param.shape, generator=generator) * std)
        module.to(next(template.parameters()).device)
        layer.output.adapter_modules[key] = module
    model.config.languages = [*model.config.languages, key]


def module_state(model, key: str) -> dict[str, torch.Tensor]:
    """The weights of module ``key`` in every layer, as ``layer.<i>.<param>``."""
    return {
        f"layer.{i}.{name}": param.detach().cpu().clone()
        for i, layer in enumerate(layers(model))
        for name, param in layer.output.adapter_modules[key].named_parameters()
    }


def load_module_state(model, key: str, state: Mapping[str, torch.Tensor]) -> None:
    """Copy :func:`module_state` tensors into module ``key`` (every tensor must match)."""
    expected = set(module_state(model, key))
    if set(state) != expected:
        raise LangarithError(
            f"Module weights for {key!r} name {sorted(set(state) ^ expected)[:4]}... which "
            "do not match the model's layers; they come from another checkpoint."
        )
    with torch.no_grad():
        for i, layer in enumerate(layers(model)):
            for name, param in layer.output.adapter_modules[key].named_parameters():
                param.copy_(state[f"layer.{i}.{name}"])


def embedding_state(model) -> dict[str, torch.Tensor]:
    """The word and position embeddings (:data:`EMBEDDING_NAMES`) of a model."""
    embeddings = model.base_model.embeddings
    return {
        name: getattr(embeddings, name.split(".")[0]).weight.detach().cpu().clone()
        for name in EMBEDDING_NAMES
    }


def install_embeddings(model, state: Mapping[str, torch.Tensor], vocab_size: int, where: str):
    """Swap in an added language's embeddings; their rows must match its tokenizer."""
    rows = int(state["word_embeddings.weight"].shape[0])
    if rows != vocab_size:
        raise LangarithError(
            f"{where}: the added tokenizer has {vocab_size} tokens but its word embeddings "
            f"have {rows} rows; the folder is inconsistent, re-run the rule that adds it."
        )
    embeddings = model.base_model.embeddings
    hidden = model.config.hidden_size
    for name in EMBEDDING_NAMES:
        weight = state[name]
        if weight.shape[1] != hidden:
            raise LangarithError(
                f"{where}: {name} has width {weight.shape[1]}, the model {hidden}; it was "
                "made for another checkpoint."
            )
        module = getattr(embeddings, name.split(".")[0])
        new = torch.nn.Embedding(weight.shape[0], hidden, padding_idx=module.padding_idx).to(
            module.weight.device
        )
        with torch.no_grad():
            new.weight.copy_(weight)
        setattr(embeddings, name.split(".")[0], new)
    model.config.vocab_size = rows


def copied_embeddings(
    old_vocab: Mapping[str, int],
    new_vocab: Mapping[str, int],
    old_weight: torch.Tensor,
    *,
    std: float,
    seed: int,
) -> tuple[torch.Tensor, int]:
    """Word embeddings of a new vocabulary: the row of every token the old vocabulary
    also has is copied, the others drawn fresh (N(0, std), seeded). Returns the weight
    and the number of copied rows."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(len(new_vocab), old_weight.shape[1], generator=generator) * std
    copied = 0
    for token, new_id in new_vocab.items():
        old_id = old_vocab.get(token)
        if old_id is not None and old_id < old_weight.shape[0]:
            weight[new_id] = old_weight[old_id]
            copied += 1
    return weight, copied
