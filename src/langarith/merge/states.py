"""Merging whole adapters: states in memory (:func:`merge_states`) and folders on disk
(:func:`merge_adapters`).

Both go one parameter name at a time through the registered per-tensor function. Inputs
are upcast to float64 for the arithmetic and the result is cast back to the adapter's
dtype; float64 holds every float32 sum and difference of this kind closely enough that
degenerate weights give back their input bit for bit (weights 1, 0 → θ_A; all
task-arithmetic weights 0 → θ_init).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from langarith import LangarithError
from langarith.adapter_io import (
    MERGED_OUTPUT,
    LoadedAdapter,
    check_compatible,
    read_adapter,
    same_init,
    write_adapter,
)
from langarith.io import check_replaceable
from langarith.merge.base import MergeMethod
from langarith.merge.registry import get_method
from langarith.provenance import versions

__all__ = ["COMPUTE_DTYPE", "merge_adapters", "merge_states", "read_mergeable"]

log = logging.getLogger(__name__)

#: Precision of the arithmetic in :func:`merge_states`.
COMPUTE_DTYPE = torch.float64


class _Upcast(Mapping[str, torch.Tensor]):
    """A read-only view of a state that hands out tensors in :data:`COMPUTE_DTYPE`.

    Lets a method's ``prepare`` step walk all names without a float64 copy of every
    adapter being held at once.
    """

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        self._state = state

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._state[key].to(COMPUTE_DTYPE)

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)


def merge_states(
    method: str,
    states: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float] | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
    **params: Any,
) -> dict[str, torch.Tensor]:
    """Merge adapter states (normalised names → tensors) with a registered method.

    Args:
        method: a key of :data:`~langarith.merge.MERGE_METHODS`.
        states: the adapters θᵢ; all must have the same names and shapes (check folders
            with :func:`~langarith.adapter_io.check_compatible` first).
        weights: one per state; ``None`` uses the method's default if it has one.
        init_state: θ_init, required by methods with ``needs_init``.
        **params: the method's parameters (e.g. ``lam``, ``top_k`` for ``ties``).

    Returns a new state with the names of ``states[0]`` (sorted) and its dtypes.
    """
    spec = get_method(method)
    resolved = spec.resolve_params(params)
    weights = spec.resolve_weights(weights, len(states))
    if spec.needs_init and init_state is None:
        raise LangarithError(f"Merge method {spec.name!r} needs θ_init (the init adapter)")
    names = sorted(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != set(names):
            raise LangarithError(f"State {i} has other parameter names than state 0")
    if init_state is not None and set(init_state) != set(names):
        raise LangarithError("θ_init has other parameter names than the adapters")
    up_init = _Upcast(init_state) if init_state is not None else None
    up_states = [_Upcast(state) for state in states]
    extra: dict[str, Any] = {}
    if spec.prepare is not None:
        extra = spec.prepare(up_init, up_states, weights, **resolved)
    merged = {}
    for name in names:
        init = up_init[name] if up_init is not None else None
        thetas = [s[name] for s in up_states]
        result = spec.merge_tensor(init, thetas, weights, name=name, **resolved, **extra)
        merged[name] = result.to(states[0][name].dtype)
    return merged


def _describe(adapter: LoadedAdapter) -> dict[str, Any]:
    return {
        "path": str(adapter.path),
        "name": adapter.name,
        "weights_file": adapter.files.weights.name,
        "sha256": adapter.sha256,
        "init_sha256": adapter.init_sha256,
    }


def read_mergeable(
    adapter_dirs: Sequence[str | PathLike[str]],
    init_dir: str | PathLike[str] | None,
    *,
    require_init_record: bool = False,
) -> tuple[list[LoadedAdapter], LoadedAdapter | None, bool]:
    """Read the adapters and θ_init and check that they can be merged.

    Every folder is read with its recorded checksums verified
    (:func:`~langarith.adapter_io.read_adapter`). Same architecture, backbone, names and
    shapes as θ_init (or the first adapter) and, where ``metadata.json`` records it, the
    same θ_init checksum. Returns them and whether the shared init is *verified*: every
    adapter records ``init_sha256`` and all of them agree (with each other, and with the
    init folder's weights when it is given). With ``require_init_record`` (methods over
    τ = θ − θ_init) an adapter without ``init_sha256`` is refused. Used by
    :func:`merge_adapters` and by the λ engine's :class:`LanguageVectorSet`.
    """
    adapters = [read_adapter(d) for d in adapter_dirs]
    init = read_adapter(init_dir) if init_dir is not None else None
    check_compatible(adapters, init)
    unrecorded = [a for a in adapters if not a.init_sha256]
    if require_init_record and unrecorded:
        raise LangarithError(
            f"Adapter {unrecorded[0].path} records no init_sha256 in its metadata.json, so it "
            "cannot be checked that it was trained from the given θ_init; this method "
            "subtracts θ_init and is meaningless otherwise. Use adapters written by "
            "`langarith train language` (or add their init's checksum), or a linear merge"
        )
    for other in adapters[1:]:
        same_init(adapters[0], other, init)  # raises on any recorded disagreement
    if init is not None:
        for adapter in adapters:
            same_init(adapter, adapter, init)
    verified = not unrecorded and (init is not None or len(adapters) > 1)
    if not verified:
        log.warning(
            "shared θ_init NOT verified: %s",
            "no init to compare with"
            if not unrecorded
            else f"{len(unrecorded)} adapter(s) record no init_sha256 (e.g. {unrecorded[0].path})",
        )
    return adapters, init, verified


def _merge_metadata(
    spec: MergeMethod,
    adapters: Sequence[LoadedAdapter],
    init: LoadedAdapter | None,
    weights: Sequence[float],
    resolved: Mapping[str, float],
    verified: bool,
) -> dict[str, Any]:
    """``metadata.json`` of a merged folder (without the wall time, added last)."""
    recorded = {a.init_sha256 for a in adapters}
    if init is not None:
        init_sha: str | None = init.sha256
    elif len(recorded) == 1:
        init_sha = recorded.pop()
    else:
        init_sha = None
    return {
        "kind": "merged_language_adapter",
        "method": spec.name,
        "reference": spec.reference,
        "reference_url": spec.reference_url,
        "inputs": [_describe(a) for a in adapters],
        "init": _describe(init) if init is not None else None,
        "weights": weights,
        "params": resolved,
        "init_sha256": init_sha,
        "init_verified": verified,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
    }


def merge_adapters(
    method: str,
    adapter_dirs: Sequence[str | PathLike[str]],
    weights: Sequence[float] | None = None,
    *,
    out_dir: str | PathLike[str],
    init_dir: str | PathLike[str] | None = None,
    name: str = "merged",
    weights_format: str = "safetensors",
    **params: Any,
) -> Path:
    """Merge adapter folders into a new AdapterHub folder with ``metadata.json``.

    Every parameter of the adapters is merged, invertible adapter weights included
    (unlike ``adapters``' own ``average_adapter``, which drops them). The inputs are
    checked first: the same architecture, backbone, names and shapes as θ_init (or the
    first adapter) and, where ``metadata.json`` records it, the same θ_init checksum.

    Args:
        method: a key of :data:`~langarith.merge.MERGE_METHODS`.
        adapter_dirs: the adapters θᵢ to merge, in the order of ``weights``.
        weights: one per adapter (``None`` = the method's default, if any).
        out_dir: folder to write, atomically; it may replace only a missing path or an
            earlier merged adapter (never an input, a folder holding one, or a folder
            with other files; see :func:`langarith.io.check_replaceable`).
        init_dir: θ_init folder; required by methods over language vectors.
        name: adapter name stored in the new folder (``load_adapter`` uses it unless
            ``load_as`` is given).
        weights_format: ``"safetensors"`` (default) or ``"bin"``, see
            :func:`~langarith.adapter_io.write_adapter`.
        **params: the method's parameters (``lam``, ``top_k`` for ``ties``).

    Returns the written folder. ``metadata.json`` records the method, its reference,
    inputs with checksums, weights, parameters, ``init_sha256``, versions and wall time.
    """
    started = time.perf_counter()
    spec = get_method(method)
    resolved = spec.resolve_params(params)
    if not adapter_dirs:
        raise LangarithError("No adapter folders given; at least one is needed")
    weights = spec.resolve_weights(weights, len(adapter_dirs))
    if spec.needs_init and init_dir is None:
        raise LangarithError(
            f"Merge method {spec.name!r} works on language vectors τ = θ − θ_init and needs "
            "the shared init adapter (init_dir / --init)"
        )
    protect = [*adapter_dirs, *([init_dir] if init_dir is not None else [])]
    check_replaceable(out_dir, MERGED_OUTPUT, protect)
    adapters, init, verified = read_mergeable(
        adapter_dirs, init_dir, require_init_record=spec.needs_init
    )
    log.info(
        "merging %d adapter(s) with %s, weights %s, %s", len(adapters), spec.name, weights, resolved
    )
    merged = merge_states(
        spec.name,
        [a.state for a in adapters],
        weights,
        init.state if init is not None else None,
        **resolved,
    )
    metadata = _merge_metadata(spec, adapters, init, weights, resolved, verified)
    metadata["wall_time_s"] = round(time.perf_counter() - started, 3)
    out = write_adapter(
        adapters[0],
        merged,
        out_dir,
        name=name,
        metadata=metadata,
        weights_format=weights_format,
        kind=MERGED_OUTPUT,
        protect=protect,
    )
    log.info("wrote merged adapter %s", out)
    return out
