"""In-place merging into a live model, for evaluating many λ values quickly.

The λ grid of the paper evaluates θ_init + λ τ_A + (1 − λ) τ_B for 21 values of λ (and
TIES for several λ and top-k). Reloading adapter folders for each point would dominate
the run time, so :class:`LanguageVectorSet` reads θ_init and the adapters once, keeps
them on the evaluation device, and :meth:`LanguageVectorSet.fill` writes a merged
adapter *into* the parameters of a model that already has an adapter of the same
architecture loaded (``copy_`` under ``torch.no_grad()``, no new parameter objects, so
optimisers, hooks and ``torch.compile`` caches stay valid).

What is written is each registered method's in-place form (``MergeMethod.in_place``):
linear and task arithmetic as (1 − Σwᵢ)·θ_init + Σ wᵢ θᵢ with zero terms skipped (so
weights (1, 0) write θ_A bit for bit), TIES as θ_init + λ·τ_merged with τ_merged kept
while only λ changes. A new method is merged in place by registering it; this module
has no per-method code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

import torch

from langarith import LangarithError
from langarith.adapter_io import normalise_name
from langarith.merge.registry import get_method
from langarith.merge.states import read_mergeable

__all__ = ["LanguageVectorSet", "live_adapter_parameters"]


class LanguageVectorSet:
    """θ_init and adapters θᵢ, held once on a device, merged into live parameters.

    Args:
        init: θ_init by normalised name (``None``: only ``linear`` is available).
        thetas: the adapters θᵢ by normalised name; same names and shapes as ``init``.
        labels: a name per adapter (default ``"0"``, ``"1"``, ...), for messages.
        device: where the tensors live (the evaluation device).
        dtype: storage and arithmetic dtype (float32 by default; float64 for checks).

    The language vectors τᵢ = θᵢ − θ_init are formed on the fly where a method needs
    them (TIES), so memory is one copy of θ_init plus one per adapter.
    """

    def __init__(
        self,
        init: Mapping[str, torch.Tensor] | None,
        thetas: Sequence[Mapping[str, torch.Tensor]],
        *,
        labels: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        unrecorded_init: Sequence[str] = (),
    ) -> None:
        if not thetas:
            raise LangarithError("LanguageVectorSet needs at least one adapter")
        self.names: list[str] = sorted(thetas[0])
        self.labels: list[str] = (
            [str(i) for i in range(len(thetas))] if labels is None else list(labels)
        )
        if len(self.labels) != len(thetas):
            raise LangarithError(f"Got {len(self.labels)} labels for {len(thetas)} adapters")
        self.device = torch.device(device)
        self.dtype = dtype
        reference = thetas[0]
        for label, state in zip(self.labels, thetas, strict=True):
            self._check_like(reference, state, label)
        if init is not None:
            self._check_like(reference, init, "θ_init")
        self.init = None if init is None else self._place(init)
        self.thetas = [self._place(state) for state in thetas]
        #: what merge methods keep between fills (see HeldAdapters.memo)
        self.memo: dict[str, Any] = {}
        self._scratch: dict[str, torch.Tensor] = {}
        #: folders that record no init_sha256: methods over τ = θ − θ_init refuse them
        self.unrecorded_init: list[str] = list(unrecorded_init)

    @classmethod
    def from_dirs(
        cls,
        init_dir: str | PathLike[str] | None,
        adapter_dirs: Sequence[str | PathLike[str]] | Mapping[str, str | PathLike[str]],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> LanguageVectorSet:
        """Read θ_init and the adapter folders, check them, and place them on ``device``.

        ``adapter_dirs`` may map labels (e.g. language codes) to folders.
        """
        if isinstance(adapter_dirs, Mapping):
            labels, dirs = list(adapter_dirs), list(adapter_dirs.values())
        else:
            dirs = list(adapter_dirs)
            labels = [str(d) for d in dirs]
        adapters, init, _ = read_mergeable(dirs, init_dir)
        return cls(
            None if init is None else init.state,
            [a.state for a in adapters],
            labels=labels,
            device=device,
            dtype=dtype,
            unrecorded_init=[str(a.path) for a in adapters if not a.init_sha256],
        )

    # --- set-up helpers ------------------------------------------------------------

    def _check_like(
        self, reference: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], label: str
    ) -> None:
        if set(state) != set(reference):
            missing = sorted(set(reference) - set(state))[:5]
            extra = sorted(set(state) - set(reference))[:5]
            raise LangarithError(
                f"Adapter {label!r} has other parameter names than the first adapter "
                f"(missing e.g. {missing}, extra e.g. {extra})"
            )
        for name in reference:
            if state[name].shape != reference[name].shape:
                raise LangarithError(
                    f"Adapter {label!r}: {name} has shape {tuple(state[name].shape)}, the "
                    f"first adapter {tuple(reference[name].shape)}"
                )

    def _place(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            name: state[name].detach().to(device=self.device, dtype=self.dtype, copy=True)
            for name in self.names
        }

    def __len__(self) -> int:
        return len(self.thetas)

    def tau(self, index: int, name: str) -> torch.Tensor:
        """The language vector τᵢ = θᵢ − θ_init of adapter ``index`` for one name."""
        if self.init is None:
            raise LangarithError("No θ_init was given, so there are no language vectors")
        return self.thetas[index][name] - self.init[name]

    # --- filling -------------------------------------------------------------------

    def _check_targets(self, out: Mapping[str, torch.Tensor]) -> None:
        missing = sorted(set(self.names) - set(out))
        extra = sorted(set(out) - set(self.names))
        if missing or extra:
            raise LangarithError(
                f"Target parameters do not match the adapters: missing {missing[:5]}, "
                f"extra {extra[:5]} (map names with live_adapter_parameters)"
            )
        for name in self.names:
            if out[name].shape != self.thetas[0][name].shape:
                raise LangarithError(
                    f"Target {name} has shape {tuple(out[name].shape)}, the adapters "
                    f"{tuple(self.thetas[0][name].shape)}"
                )

    def _buffer(self, name: str, target: torch.Tensor) -> torch.Tensor:
        """Where to compute ``name``: the target itself when dtype and device match."""
        if target.dtype == self.dtype and target.device == self.device:
            return target
        buf = self._scratch.get(name)
        if buf is None:
            buf = self._scratch[name] = torch.empty_like(self.thetas[0][name])
        return buf

    @torch.no_grad()
    def fill(
        self,
        method: str,
        weights: Sequence[float] | None,
        *,
        out: Mapping[str, torch.Tensor],
        **params: Any,
    ) -> None:
        """Write the merge of the held adapters into ``out`` in place.

        The arithmetic is the registered method's own in-place form
        (:meth:`~langarith.merge.base.MergeMethod.writer`); this only validates, picks
        a buffer per name and copies it into the target when they differ.

        Args:
            method: a key of :data:`~langarith.merge.MERGE_METHODS`.
            weights: one per adapter (``None`` = the method's default).
            out: normalised name → tensor to overwrite, typically the live parameters
                from :func:`live_adapter_parameters`; any dtype and device (computed in
                the set's dtype on its device, then copied).
            **params: the method's parameters (``lam``, ``top_k`` for ``ties``).
        """
        spec = get_method(method)
        resolved = spec.resolve_params(params)
        weights = spec.resolve_weights(weights, len(self.thetas))
        if spec.needs_init and self.init is None:
            raise LangarithError(f"Merge method {spec.name!r} needs θ_init")
        if spec.needs_init and self.unrecorded_init:
            raise LangarithError(
                f"Merge method {spec.name!r} subtracts θ_init, but adapter "
                f"{self.unrecorded_init[0]} records no init_sha256 in its metadata.json, so "
                "it cannot be checked that it was trained from this θ_init; use adapters "
                "written by `langarith train language`, or a linear merge"
            )
        self._check_targets(out)
        write = spec.writer(self, weights, resolved)
        for name in self.names:
            target = out[name]
            buf = self._buffer(name, target)
            write(name, buf)
            if buf is not target:
                target.copy_(buf)

    def fill_linear(
        self, target_params: Mapping[str, torch.Tensor], weights: Sequence[float]
    ) -> None:
        """Write θ_init + Σ wᵢ τᵢ into ``target_params`` (language arithmetic, any weights).

        For the paper's LA(A, B) with λ: ``fill_linear(params, [lam, 1 - lam])``.
        """
        self.fill("task-arithmetic", weights, out=target_params)

    def state_for(
        self,
        weights: Sequence[float] | None,
        method: str = "task-arithmetic",
        **params: Any,
    ) -> dict[str, torch.Tensor]:
        """The merged state as new tensors (same computation as :meth:`fill`)."""
        out = {name: torch.empty_like(self.thetas[0][name]) for name in self.names}
        self.fill(method, weights, out=out, **params)
        return out


def live_adapter_parameters(
    model: torch.nn.Module,
    adapter_name: str,
    names: Iterable[str] | None = None,
) -> dict[str, torch.nn.Parameter]:
    """The model's parameters of adapter ``adapter_name``, keyed by normalised name.

    The result is what :meth:`LanguageVectorSet.fill` writes into. With ``names`` (e.g.
    ``LanguageVectorSet.names``) each name is matched exactly or up to the backbone
    prefix (``bert.``/``roberta.``), because an adapter saved from a bare ``BertModel``
    has no prefix while a model with a head has one; a name without a live parameter, or
    a live parameter of the adapter without a name, is an error.
    """
    found: dict[str, torch.nn.Parameter] = {}
    for full, param in model.named_parameters():
        norm = normalise_name(full, adapter_name)
        if norm is not None:
            found[norm] = param
    if not found:
        raise LangarithError(
            f"The model has no parameters of adapter {adapter_name!r}; load it first "
            "(e.g. langarith.adapter_io.load_adapter_into)"
        )
    if names is None:
        return found
    prefix = getattr(model, "base_model_prefix", "") or ""
    result: dict[str, torch.nn.Parameter] = {}
    missing = []
    for name in names:
        candidates = [name]
        if prefix:
            candidates += [f"{prefix}.{name}", name.removeprefix(f"{prefix}.")]
        hit = next((c for c in candidates if c in found), None)
        if hit is None:
            missing.append(name)
        else:
            result[name] = found.pop(hit)
    if missing or found:
        raise LangarithError(
            f"Adapter {adapter_name!r} in the model does not match the expected parameters: "
            f"{len(missing)} without a live parameter (e.g. {missing[:5]}), {len(found)} "
            f"live parameter(s) not expected (e.g. {sorted(found)[:5]})"
        )
    return result
