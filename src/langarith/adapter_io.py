"""Reading, checking and writing AdapterHub adapter folders without a model.

Merging and analysing language adapters only needs their tensors, so this module reads
the folder that ``model.save_adapter(dir, name)`` writes (``adapter_config.json`` plus
``adapter.safetensors`` or ``pytorch_adapter.bin``) straight from disk. Parameter names
are *normalised*: the adapter's own name is replaced by :data:`PLACEHOLDER`, so the
English adapter saved as ``"en"`` and the Spanish one saved as ``"es"`` have the same
keys and can be compared and merged name by name.

Writing goes the other way: a merged state gets the name substituted back and is
written next to a copy of a template's config, so the ``adapters`` library can
``load_adapter`` it onto the backbone. Weights are written as safetensors by default
(``adapter.safetensors``; the project stores tensors without pickles). The ``adapters``
1.3.0 loader reads that file only with ``load_adapter(..., use_safetensors=True)``, so
:func:`finish_adapter_folder` writes ``pytorch_adapter.bin`` of the same plain tensors
beside it (and the head's twin), which its default call reads with
``weights_only=True``; :func:`load_adapter_into` picks the flag from the folder's content.

Folders are checked loudly: :func:`check_compatible` says *what* differs (config keys,
backbone, parameter names, shapes) instead of letting a merge fail deep inside torch;
:func:`read_adapter` checks the weights against the checksums ``metadata.json`` records
(:func:`verify_adapter_files`) and their shapes against ``adapter_config.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from langarith import LangarithError
from langarith.io import OutputKind, atomic_dir, read_json, sha256_file, write_json

__all__ = [
    "ADAPTER_FILES",
    "ADAPTER_OUTPUT",
    "BACKBONE_KEYS",
    "CONFIG_NAME",
    "HEAD_SAFE_WEIGHTS_NAME",
    "HEAD_WEIGHTS_NAME",
    "INIT_OUTPUT",
    "LANGUAGE_OUTPUT",
    "MERGED_OUTPUT",
    "TASK_OUTPUT",
    "METADATA_NAME",
    "PLACEHOLDER",
    "SAFE_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "AdapterFiles",
    "LoadedAdapter",
    "adapter_checksum",
    "check_compatible",
    "denormalise_name",
    "finish_adapter_folder",
    "find_adapter_files",
    "load_adapter_into",
    "normalise_name",
    "read_adapter",
    "same_init",
    "verify_adapter_files",
    "weights_sha256",
    "write_adapter",
]

log = logging.getLogger(__name__)

#: File names of an AdapterHub folder as written by ``adapters`` 1.3.0.
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "pytorch_adapter.bin"
SAFE_WEIGHTS_NAME = "adapter.safetensors"
#: Head files of a task adapter folder (``save_adapter(..., with_head=True)``).
HEAD_CONFIG_NAME = "head_config.json"
HEAD_WEIGHTS_NAME = "pytorch_model_head.bin"
HEAD_SAFE_WEIGHTS_NAME = "model_head.safetensors"
#: Provenance written by this project next to the AdapterHub files.
METADATA_NAME = "metadata.json"

#: safetensors file → the torch file ``adapters`` reads by default, written beside it.
_BIN_TWINS = {SAFE_WEIGHTS_NAME: WEIGHTS_NAME, HEAD_SAFE_WEIGHTS_NAME: HEAD_WEIGHTS_NAME}

#: Every file an adapter folder written by the workflow may hold.
ADAPTER_FILES = frozenset(
    {
        CONFIG_NAME,
        SAFE_WEIGHTS_NAME,
        WEIGHTS_NAME,
        HEAD_CONFIG_NAME,
        HEAD_SAFE_WEIGHTS_NAME,
        HEAD_WEIGHTS_NAME,
        METADATA_NAME,
    }
)


def _adapter_kind(label: str, *kinds: str) -> OutputKind:
    """An adapter folder output: recognised by its metadata.json ``kind``."""
    return OutputKind(
        label, record=METADATA_NAME, record_kinds=kinds, allowed=ADAPTER_FILES.__contains__
    )


#: Output kinds of the adapter folders (see :func:`langarith.io.check_replaceable`).
ADAPTER_OUTPUT = _adapter_kind("adapter folder")
INIT_OUTPUT = _adapter_kind("language-adapter init", "language_adapter_init")
LANGUAGE_OUTPUT = _adapter_kind("language adapter", "language_adapter")
TASK_OUTPUT = _adapter_kind("task adapter", "task_adapter")
MERGED_OUTPUT = _adapter_kind("merged adapter", "merged_language_adapter")

#: Stands in for the adapter's name inside normalised parameter names.
PLACEHOLDER = "{adapter}"

#: Top-level keys of ``adapter_config.json`` that identify the backbone.
BACKBONE_KEYS = ("model_name", "model_class", "model_type", "hidden_size")

#: Module containers under which ``adapters`` stores per-adapter modules; the path
#: component after one of them is the adapter's name (legacy files use
#: ``*_adapters`` containers such as ``invertible_lang_adapters``).
_CONTAINERS = frozenset(
    {
        "adapters",
        "prefix_tunings",
        "prefix_gates",
        "loras",
        "refts",
        "prompt_tunings",
        "shared_parameters",
    }
)

_MAX_LISTED = 5


def _is_container(part: str) -> bool:
    """Whether a name component holds per-adapter modules (see :data:`_CONTAINERS`)."""
    return part in _CONTAINERS or part.endswith("_adapters")


def normalise_name(key: str, adapter_name: str) -> str | None:
    """Replace the adapter's name in a parameter name by :data:`PLACEHOLDER`.

    Only a whole path component that follows an adapter container (``adapters``,
    ``invertible_adapters``, ...) is replaced, so an adapter called ``"init"`` does not
    clobber an unrelated ``init`` elsewhere in the name. Returns ``None`` for a key that
    does not belong to the adapter.
    """
    parts = key.split(".")
    hit = False
    for i in range(1, len(parts)):
        if parts[i] == adapter_name and _is_container(parts[i - 1]):
            parts[i] = PLACEHOLDER
            hit = True
    return ".".join(parts) if hit else None


def denormalise_name(key: str, adapter_name: str) -> str:
    """Put an adapter name back into a normalised parameter name."""
    return ".".join(adapter_name if part == PLACEHOLDER else part for part in key.split("."))


def _check_adapter_name(name: str) -> None:
    """Refuse names that would break the dotted parameter names they become part of."""
    if not name or "." in name or "/" in name or name == PLACEHOLDER:
        raise LangarithError(
            f"Adapter name {name!r} is not allowed: it must be non-empty and contain "
            "no '.' or '/' (it becomes one component of the parameter names)"
        )


@dataclass(frozen=True)
class AdapterFiles:
    """The files of one AdapterHub folder.

    ``weights`` is the safetensors file when present, else the torch pickle; ``fmt`` says
    which (``"safetensors"`` or ``"bin"``). ``metadata`` is ``None`` when the folder has
    no ``metadata.json`` (adapters from elsewhere need not have one).
    """

    folder: Path
    config: Path
    weights: Path
    fmt: str
    metadata: Path | None


def find_adapter_files(folder: str | PathLike[str]) -> AdapterFiles:
    """Locate the config and weights file of an adapter folder, with clear errors."""
    path = Path(folder)
    if not path.exists():
        raise LangarithError(f"Adapter folder {path} does not exist")
    if not path.is_dir():
        raise LangarithError(
            f"Adapter path {path} is a file; expected an AdapterHub folder "
            f"({CONFIG_NAME} + {SAFE_WEIGHTS_NAME} or {WEIGHTS_NAME})"
        )
    config = path / CONFIG_NAME
    if not config.is_file():
        raise LangarithError(
            f"{path} is not an AdapterHub folder: {CONFIG_NAME} is missing "
            f"(found: {sorted(p.name for p in path.iterdir()) or 'nothing'})"
        )
    safe, pickled = path / SAFE_WEIGHTS_NAME, path / WEIGHTS_NAME
    if safe.is_file():  # the .bin beside it is its twin for adapters' default loader
        weights, fmt = safe, "safetensors"
    elif pickled.is_file():
        weights, fmt = pickled, "bin"
    else:
        raise LangarithError(
            f"Adapter folder {path} has no weights file: expected {SAFE_WEIGHTS_NAME} or "
            f"{WEIGHTS_NAME} next to {CONFIG_NAME}"
        )
    metadata = path / METADATA_NAME
    return AdapterFiles(path, config, weights, fmt, metadata if metadata.is_file() else None)


@dataclass
class LoadedAdapter:
    """One adapter read from disk.

    Attributes:
        path: the folder it was read from.
        name: the name it was saved under (``config["name"]``).
        config: the whole ``adapter_config.json`` (adapter config under ``"config"``,
            backbone identity in :data:`BACKBONE_KEYS`).
        state: tensors by normalised name (see :func:`normalise_name`), sorted by name.
        files: where config and weights came from.
        metadata: ``metadata.json`` when present, else ``None``.
    """

    path: Path
    name: str
    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    files: AdapterFiles
    metadata: dict[str, Any] | None = None
    _sha256: str | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        """SHA-256 of the weights file's bytes (computed once)."""
        if self._sha256 is None:
            self._sha256 = sha256_file(self.files.weights)
        return self._sha256

    @property
    def init_sha256(self) -> str | None:
        """The checksum of θ_init this adapter was trained from, if its metadata says."""
        value = (self.metadata or {}).get("init_sha256")
        return str(value) if value else None


_PICKLE_STARTS = (b"\x80", b"PK\x03\x04")  # a pickle (protocol 2+), a torch.save zip


def _starts_like_pickle(path: Path) -> bool:
    """Whether a file begins like a pickle or a ``torch.save`` archive."""
    with open(path, "rb") as handle:
        return handle.read(4).startswith(_PICKLE_STARTS)


def _pickle_refusal(path: Path) -> LangarithError:
    return LangarithError(
        f"Adapter weights {path} hold pickled Python objects: pickle files are not loaded; "
        f"convert to safetensors ({SAFE_WEIGHTS_NAME} of plain tensors)"
    )


def _load_weights(files: AdapterFiles) -> dict[str, torch.Tensor]:
    """Load the raw state of a weights file; never executes pickled code.

    A ``.bin`` is read with ``weights_only=True``: plain tensors load, any other pickled
    object is refused as a pickle (so is a pickle saved under the safetensors name).
    """
    hint = "the file is truncated or corrupt; re-save or re-train the adapter"
    try:
        if files.fmt == "safetensors":
            if _starts_like_pickle(files.weights):
                raise _pickle_refusal(files.weights)
            raw = load_file(str(files.weights), device="cpu")
        else:
            raw = torch.load(files.weights, map_location="cpu", weights_only=True)
    except LangarithError:
        raise
    except pickle.UnpicklingError as err:
        if "weights only load failed" in str(err).lower() and _starts_like_pickle(files.weights):
            raise _pickle_refusal(files.weights) from None
        raise LangarithError(
            f"Cannot read adapter weights {files.weights}: {hint} "
            f"({type(err).__name__}: {str(err).strip()[:200]})"
        ) from None
    # torch raises RuntimeError/EOFError/BadZipFile, safetensors its own SafetensorError;
    # all of them mean the same thing to a user: the file is unusable.
    except Exception as err:
        raise LangarithError(
            f"Cannot read adapter weights {files.weights}: {hint} "
            f"({type(err).__name__}: {str(err).strip()[:200]})"
        ) from None
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()
    ):
        raise LangarithError(
            f"Adapter weights {files.weights} do not hold a mapping of names to tensors "
            f"(got {type(raw).__name__})"
        )
    return dict(raw)


def verify_adapter_files(files: AdapterFiles, metadata: Mapping[str, Any] | None) -> bool:
    """Check the weight files of a folder against the checksums its metadata records.

    ``weights_sha256`` covers the file the project reads (``adapter.safetensors``, or
    ``pytorch_adapter.bin`` in a folder without one); ``weights_files`` maps every weight
    file written (the ``.bin`` twins and the head files too) to its sha256, and each of
    them that is present is checked. A mismatch raises a
    :class:`~langarith.LangarithError` naming the file. Returns whether anything was
    recorded to check (folders from elsewhere may have no metadata).
    """
    if not metadata:
        return False
    expected: dict[Path, str] = {}
    recorded = metadata.get("weights_files")
    if isinstance(recorded, Mapping):
        for name, digest in recorded.items():
            if (files.folder / str(name)).is_file():
                expected[files.folder / str(name)] = str(digest)
    if metadata.get("weights_sha256"):
        expected.setdefault(files.weights, str(metadata["weights_sha256"]))
    for path, digest in expected.items():
        actual = sha256_file(path)
        if actual != digest:
            raise LangarithError(
                f"Adapter weights {path} do not match the sha256 recorded in "
                f"{files.folder / METADATA_NAME} ({actual[:12]}… vs {digest[:12]}…): the "
                "file was changed or damaged after it was written; restore or re-make it"
            )
    return bool(expected)


_LAYER = re.compile(r"\.layer\.(\d+)\.")


def _factor(value: Any, key: str) -> float | None:
    """A reduction factor from the config (a number, or a per-layer mapping)."""
    if isinstance(value, Mapping):
        match = _LAYER.search(key)
        value = (
            value.get(match.group(1)) if match and match.group(1) in value else value.get("default")
        )
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _expected_shapes(config: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    """The shape the adapter config implies for a parameter (None: not derivable here).

    Covers the bottleneck projections (``hidden_size // reduction_factor``, at least 1,
    as ``adapters`` builds them) and the NICE invertible adapter's first layers.
    """
    hidden = config.get("hidden_size")
    inner = config.get("config")
    if not isinstance(hidden, int) or not isinstance(inner, Mapping) or inner.get("phm_layer"):
        return None
    if key.endswith((".adapter_down.0.weight", ".adapter_up.weight")) and "adapters." in key:
        factor = _factor(inner.get("reduction_factor"), key)
        if factor is None:
            return None
        down = max(1, int(hidden // factor))
        return (down, hidden) if key.endswith("adapter_down.0.weight") else (hidden, down)
    if inner.get("inv_adapter") == "nice" and re.search(
        r"invertible_adapters\.[^.]+\.[FG]\.0\.weight$", key
    ):
        factor = _factor(inner.get("inv_adapter_reduction_factor"), key)
        if factor is None:
            return None
        width = hidden - hidden // 2 if ".F." in key else hidden // 2
        return (int(width // factor), width)
    return None


def _check_config_shapes(path: Path, config: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    """Refuse weights whose shapes disagree with their own adapter_config.json."""
    wrong = []
    for key, tensor in state.items():
        expected = _expected_shapes(config, key)
        if expected is not None and tuple(tensor.shape) != expected:
            wrong.append(f"{key}: {tuple(tensor.shape)}, config implies {expected}")
    if wrong:
        raise LangarithError(
            f"Adapter weights in {path} do not fit its {CONFIG_NAME} (reduction factor or "
            f"hidden size differ): {_listed(wrong)}; the config was edited or belongs to "
            "other weights"
        )


def read_adapter(folder: str | PathLike[str] | LoadedAdapter) -> LoadedAdapter:
    """Read an AdapterHub folder into a :class:`LoadedAdapter` with normalised names.

    A :class:`LoadedAdapter` passed in is returned as is, so callers can accept both.
    Raises :class:`~langarith.LangarithError` for a missing folder, a missing or corrupt
    config or weights file, and weights that do not belong to the adapter named in the
    config (e.g. a head saved into the same file).
    """
    if isinstance(folder, LoadedAdapter):
        return folder
    files = find_adapter_files(folder)
    config = read_json(files.config, "Adapter config")
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise LangarithError(
            f"Adapter config {files.config} has no 'name' entry; it was not written by "
            "adapters' save_adapter"
        )
    if not isinstance(config.get("config"), dict):
        raise LangarithError(
            f"Adapter config {files.config} has no 'config' object with the adapter "
            "architecture; it was not written by adapters' save_adapter"
        )
    name = config["name"]
    raw = _load_weights(files)
    if not raw:
        raise LangarithError(f"Adapter weights {files.weights} contain no tensors")
    state: dict[str, torch.Tensor] = {}
    foreign = []
    for key in sorted(raw):
        norm = normalise_name(key, name)
        if norm is None:
            foreign.append(key)
        else:
            state[norm] = raw[key]
    if foreign:
        raise LangarithError(
            f"Adapter weights {files.weights} hold {len(foreign)} tensor(s) that do not "
            f"belong to adapter {name!r} named in {CONFIG_NAME}, e.g. {foreign[:_MAX_LISTED]}"
        )
    metadata = None
    if files.metadata is not None:
        metadata = read_json(files.metadata, "Adapter metadata")
        if not isinstance(metadata, dict):
            raise LangarithError(f"Adapter metadata {files.metadata} is not a JSON object")
    verify_adapter_files(files, metadata)
    _check_config_shapes(files.folder, config, state)
    return LoadedAdapter(Path(folder), name, config, state, files, metadata)


def weights_sha256(folder: str | PathLike[str] | LoadedAdapter) -> str:
    """SHA-256 of an adapter folder's weights file.

    This is the checksum the project records as ``init_sha256`` in the ``metadata.json``
    of every adapter trained from a shared θ_init, and the one :func:`same_init`
    compares against an init folder.
    """
    if isinstance(folder, LoadedAdapter):
        return folder.sha256
    return sha256_file(find_adapter_files(folder).weights)


def adapter_checksum(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a normalised state's content (names, dtypes, shapes, bytes).

    Unlike :func:`weights_sha256` it does not depend on the file format or the adapter
    name, so it tells whether two folders hold the same tensors.
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


# --- compatibility -------------------------------------------------------------------


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested config dicts as dotted keys, so differences can be listed key by key."""
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def _config_differences(ref: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """``key: ref_value vs other_value`` for every differing adapter-config entry."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten("", ref.get("config", {}), a)
    _flatten("", other.get("config", {}), b)
    for key in ("type",):  # legacy files keep the adapter type at the top
        if key in ref or key in other:
            a[key], b[key] = ref.get(key, "<absent>"), other.get(key, "<absent>")
    missing = "<absent>"
    return [
        f"{key}: {a.get(key, missing)!r} vs {b.get(key, missing)!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    ]


def _backbone_fingerprint(adapter: LoadedAdapter) -> str | None:
    """``metadata.json``'s ``backbone.config_sha256``, written by the training stage."""
    backbone = (adapter.metadata or {}).get("backbone")
    value = backbone.get("config_sha256") if isinstance(backbone, dict) else None
    return str(value) if value else None


def _backbone_differences(ref: LoadedAdapter, other: LoadedAdapter) -> list[str]:
    """Differences in the backbone fields both configs (and metadata files) record."""
    a, b = ref.config, other.config
    found = [
        f"{key}: {a[key]!r} vs {b[key]!r}"
        for key in BACKBONE_KEYS
        if key in a and key in b and a[key] != b[key]
    ]
    fa, fb = _backbone_fingerprint(ref), _backbone_fingerprint(other)
    if fa and fb and fa != fb:
        found.append(f"metadata backbone.config_sha256: {fa[:12]}… vs {fb[:12]}…")
    return found


def _listed(names: Sequence[str]) -> str:
    """The first few names and how many more, for messages that stay readable."""
    shown = ", ".join(names[:_MAX_LISTED])
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return f"{shown}{more}"


def _state_differences(
    ref: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor]
) -> list[str]:
    """Missing and extra parameter names and shape mismatches, as readable problem texts."""
    missing = sorted(set(ref) - set(other))
    extra = sorted(set(other) - set(ref))
    problems = []
    if missing:
        problems.append(f"{len(missing)} parameter(s) missing: {_listed(missing)}")
    if extra:
        problems.append(f"{len(extra)} extra parameter(s): {_listed(extra)}")
    shapes = [
        f"{key}: {tuple(ref[key].shape)} vs {tuple(other[key].shape)}"
        for key in sorted(set(ref) & set(other))
        if ref[key].shape != other[key].shape
    ]
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_listed(shapes)}")
    return problems


def _non_float(adapter: LoadedAdapter) -> str | None:
    """A problem text when an adapter holds integer tensors, which cannot be averaged."""
    bad = sorted(k for k, t in adapter.state.items() if not t.is_floating_point())
    if bad:
        return f"{adapter.path} has non-floating-point parameter(s): {_listed(bad)}"
    return None


def check_compatible(adapters: Sequence[LoadedAdapter], init: LoadedAdapter | None = None) -> None:
    """Refuse adapters that cannot be merged name by name, saying what differs.

    Every adapter is compared with a reference (``init`` when given, else the first
    adapter): the adapter architecture in ``adapter_config.json`` (every differing key
    with both values), the backbone (:data:`BACKBONE_KEYS` recorded by both), the set
    of parameter names (a few missing and extra ones) and the shapes (name and both
    shapes). When both ``metadata.json`` files record ``backbone.config_sha256`` (as the
    training stage writes), those must agree too. Adapter names and library versions
    may differ. All problems of all adapters are collected into one
    :class:`~langarith.LangarithError`.
    """
    if not adapters:
        raise LangarithError("No adapters given; at least one adapter folder is needed")
    reference = init if init is not None else adapters[0]
    role = "init" if init is not None else "first adapter"
    others = adapters if init is not None else adapters[1:]
    reports = []
    for adapter in others:
        problems = []
        config = _config_differences(reference.config, adapter.config)
        if config:
            problems.append("different adapter config (" + "; ".join(config) + ")")
        backbone = _backbone_differences(reference, adapter)
        if backbone:
            problems.append("different backbone (" + "; ".join(backbone) + ")")
        problems.extend(_state_differences(reference.state, adapter.state))
        if problems:
            reports.append(
                f"{adapter.path} differs from the {role} {reference.path}: " + "; ".join(problems)
            )
    reports.extend(r for r in map(_non_float, [reference, *others]) if r)
    if reports:
        raise LangarithError("Adapters cannot be merged: " + " | ".join(reports))


def same_init(
    a: str | PathLike[str] | LoadedAdapter,
    b: str | PathLike[str] | LoadedAdapter,
    init: str | PathLike[str] | LoadedAdapter | None = None,
) -> bool:
    """Check from metadata that two adapters were trained from the same θ_init.

    Language vectors τ = θ − θ_init only add up when every θ started from one θ_init.
    ``metadata.json`` is optional: when both adapters record ``init_sha256`` the values
    must match; when ``init`` is given, each recorded value must equal
    :func:`weights_sha256` of that init folder. Returns ``True`` when at least one
    comparison was possible and all passed, ``False`` when nothing was recorded (not
    verifiable), and raises :class:`~langarith.LangarithError` on a mismatch.
    """
    first, second = read_adapter(a), read_adapter(b)
    checked = False
    ha, hb = first.init_sha256, second.init_sha256
    if ha and hb:
        if ha != hb:
            raise LangarithError(
                f"Adapters {first.path} and {second.path} were trained from different "
                f"θ_init (metadata init_sha256 {ha[:12]}… vs {hb[:12]}…); language vectors "
                "only combine when all adapters share one init"
            )
        checked = True
    if init is not None:
        init_hash = weights_sha256(init)
        init_path = init.path if isinstance(init, LoadedAdapter) else Path(init)
        for adapter, recorded in ((first, ha), (second, hb)):
            if recorded and recorded != init_hash:
                raise LangarithError(
                    f"Adapter {adapter.path} was trained from a θ_init with sha256 "
                    f"{recorded[:12]}…, but the init folder {init_path} has weights sha256 "
                    f"{init_hash[:12]}…; pass the init it was trained from"
                )
            checked = checked or bool(recorded)
    return checked


# --- writing -------------------------------------------------------------------------


def _to_template(
    template: LoadedAdapter, state: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Validate ``state`` against the template's names and shapes, cast to its dtypes."""
    problems = _state_differences(template.state, state)
    if problems:
        raise LangarithError(
            f"State to write does not match the template adapter {template.path}: "
            + "; ".join(problems)
        )
    out = {}
    for key, ref in template.state.items():
        tensor = state[key].detach()
        if not torch.isfinite(tensor).all():
            raise LangarithError(f"Parameter {key} to write has NaN or infinite values")
        # a copy, so no two names share storage (safetensors refuses shared tensors)
        out[key] = tensor.to(device="cpu", dtype=ref.dtype, copy=True).contiguous()
    return out


def finish_adapter_folder(
    folder: str | PathLike[str], metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Complete an adapter folder being written: ``.bin`` twins, checksums, metadata.

    ``adapters`` 1.3.0 reads ``pytorch_adapter.bin`` (and ``pytorch_model_head.bin``)
    when ``load_adapter(path)`` is called with its default arguments, so each
    safetensors file gets a twin of the same plain tensors written with ``torch.save``
    (loadable with ``weights_only=True``). ``metadata.json`` is then written with
    ``weights_sha256`` (the file the project reads, see :func:`verify_adapter_files`)
    and ``weights_files`` (every weight file and its sha256). Returns the metadata.
    """
    folder = Path(folder)
    for safe, twin in _BIN_TWINS.items():
        if (folder / safe).is_file():
            tensors = {k: v.contiguous() for k, v in load_file(str(folder / safe)).items()}
            torch.save(tensors, folder / twin)
    names = [*_BIN_TWINS, *_BIN_TWINS.values()]
    recorded = {n: sha256_file(folder / n) for n in sorted(names) if (folder / n).is_file()}
    main = SAFE_WEIGHTS_NAME if SAFE_WEIGHTS_NAME in recorded else WEIGHTS_NAME
    meta = dict(metadata or {})
    meta["weights_sha256"] = recorded.get(main)
    meta["weights_files"] = recorded
    write_json(folder / METADATA_NAME, meta)
    return meta


def write_adapter(
    template_dir: str | PathLike[str] | LoadedAdapter,
    state: Mapping[str, torch.Tensor],
    out_dir: str | PathLike[str],
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    weights_format: str = "safetensors",
    kind: OutputKind = ADAPTER_OUTPUT,
    protect: Iterable[str | PathLike[str]] = (),
) -> Path:
    """Write ``state`` (normalised names) as an AdapterHub folder that ``adapters`` loads.

    Args:
        template_dir: adapter folder (or loaded adapter) whose ``adapter_config.json``
            is copied; ``state`` must have exactly its parameter names and shapes, and is
            cast to its dtypes.
        state: tensors by normalised name (any device, any floating dtype).
        out_dir: the folder to create; built under a temporary name and renamed into
            place. It may replace only an earlier output of ``kind`` (the replace rule
            of :func:`langarith.io.check_replaceable`), never a path in ``protect``.
        name: adapter name stored in the config and the parameter names; default: the
            template's name.
        metadata: written as ``metadata.json`` (with the weights' checksums added).
        weights_format: ``"safetensors"`` (default; ``adapter.safetensors`` and its
            ``pytorch_adapter.bin`` twin, so ``load_adapter(dir)`` works with its default
            arguments) or ``"bin"`` (``pytorch_adapter.bin`` only).

    Returns the final folder.
    """
    if weights_format not in ("safetensors", "bin"):
        raise LangarithError(
            f"Unknown weights format {weights_format!r}. Must be one of ['safetensors', 'bin']"
        )
    template = read_adapter(template_dir)
    name = template.name if name is None else name
    _check_adapter_name(name)
    tensors = _to_template(template, state)
    config = dict(template.config)
    config["name"] = name
    named = {denormalise_name(key, name): tensor for key, tensor in tensors.items()}
    with atomic_dir(out_dir, kind, protect) as tmp:
        with open(tmp / CONFIG_NAME, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
        if weights_format == "safetensors":
            save_file(named, str(tmp / SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
        else:
            torch.save(named, tmp / WEIGHTS_NAME)
        finish_adapter_folder(tmp, metadata)
    return Path(out_dir)


def load_adapter_into(
    model: Any,
    folder: str | PathLike[str],
    load_as: str | None = None,
    *,
    with_head: bool = True,
    set_active: bool = False,
    leave_out: list[int] | None = None,
) -> str:
    """``model.load_adapter`` for any folder this project writes; returns the name.

    The one way the project loads an adapter into a model (training, evaluation,
    merging). ``adapters`` 1.3.0 reads ``adapter.safetensors`` only when asked with
    ``use_safetensors=True`` (and then falls back to ``pytorch_adapter.bin``), so the
    flag is set from the folder's content. ``with_head=False`` for language adapters,
    which have no head; task adapters bring theirs. The folder is read and checked first
    (:func:`read_adapter`: recorded checksums, shapes against the config). ``leave_out``
    drops the adapter's modules in those layers (MAD-X 2.0 leaves out the last layer's).
    """
    files = read_adapter(folder).files
    return str(
        model.load_adapter(
            str(files.folder),
            load_as=load_as,
            with_head=with_head,
            set_active=set_active,
            use_safetensors=files.fmt == "safetensors",
            leave_out=list(leave_out) if leave_out else None,
        )
    )
