"""The pieces every merge method is made of: a typed parameter spec and the method record.

A merge method is a pure function over tensors of one parameter name (mergekit's
habit): it never sees a model, a file or a whole state. Methods that need a statistic
over all parameters of an adapter first (TIES' global top-k threshold) declare a
``prepare`` step that computes it once; its result is passed to every per-tensor call.

The λ grid needs a second form of the same method: an *in-place* one that writes the
merge of adapters already held on the evaluation device into an existing tensor, with
no new tensors per point (see :mod:`langarith.merge.in_place`). A method supplies it as
``in_place`` (:class:`InPlaceFn`); without one, :meth:`MergeMethod.writer` falls back to
``prepare`` + ``merge_tensor`` and a copy. Both forms compute the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from langarith import LangarithError

__all__ = [
    "WEIGHT_SUM_TOLERANCE",
    "HeldAdapters",
    "InPlaceFn",
    "MergeMethod",
    "ParamSpec",
    "PrepareFn",
    "TensorMergeFn",
    "TensorWriter",
]

#: How far the weights of a method with ``weights_sum_to_one`` may be from 1.
WEIGHT_SUM_TOLERANCE = 1e-6


class TensorMergeFn(Protocol):
    """``fn(init, thetas, weights, **params) -> merged`` for one parameter name.

    ``init`` is θ_init's tensor (``None`` for methods that do not need it), ``thetas``
    the adapters' tensors, all of one shape and dtype; the result has that shape and
    dtype. The function computes in the dtype it is given: callers that want exact
    results upcast first (see :func:`langarith.merge.merge_states`).
    Callers pass the normalised parameter name as the keyword ``name``; methods whose
    result depends on it (DARE's per-parameter random masks) read it, others ignore it.
    """

    def __call__(
        self,
        init: torch.Tensor | None,
        thetas: Sequence[torch.Tensor],
        weights: Sequence[float],
        **params: Any,
    ) -> torch.Tensor: ...


class PrepareFn(Protocol):
    """``prepare(init_state, states, weights, **params) -> extra kwargs`` for every tensor.

    ``init_state`` and ``states`` map normalised names to tensors (all names). The
    returned dict is added to the keyword arguments of each per-tensor call.
    """

    def __call__(
        self,
        init_state: Mapping[str, torch.Tensor] | None,
        states: Sequence[Mapping[str, torch.Tensor]],
        weights: Sequence[float],
        **params: Any,
    ) -> dict[str, Any]: ...


class HeldAdapters(Protocol):
    """θ_init and the adapters θᵢ held once on a device (a :class:`LanguageVectorSet`).

    Attributes:
        names: the normalised parameter names, sorted; every state has exactly these.
        init: θ_init by name (``None`` when it was not loaded).
        thetas: the adapters by name, in the order of the weights.
        memo: what in-place forms keep between fills of the same set (e.g. TIES' trim
            thresholds), keyed by the method's own names.
    """

    names: list[str]
    init: dict[str, torch.Tensor] | None
    thetas: list[dict[str, torch.Tensor]]
    memo: dict[str, Any]


#: ``write(name, buf)``: overwrite ``buf`` with the merged tensor of parameter ``name``.
TensorWriter = Callable[[str, torch.Tensor], None]


class InPlaceFn(Protocol):
    """``in_place(held, weights, **params) -> write`` for one merge of held adapters.

    Work shared by all names (coefficients, thresholds, the merged τ of TIES) happens
    once here; ``write`` then fills one parameter's buffer, in the held dtype, without
    allocating where the method allows.
    """

    def __call__(
        self, held: HeldAdapters, weights: Sequence[float], **params: Any
    ) -> TensorWriter: ...


@dataclass(frozen=True)
class ParamSpec:
    """One numeric parameter of a merge method.

    Attributes:
        name: keyword argument name (``top_k``, ``lam``).
        default: value used when the caller gives none.
        help: what the value means, with units; shown by the CLI and in errors.
        cli_flag: the ``langarith merge`` option that sets it (``--top-k``).
        low, high: allowed range (``None`` = unbounded); ``low_inclusive`` and
            ``high_inclusive`` say whether the ends are allowed.
        metavar: placeholder shown in the CLI help (``K`` in ``--top-k K``).
    """

    name: str
    default: float
    help: str
    cli_flag: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    metavar: str | None = None

    def describe_range(self) -> str:
        """The allowed interval in mathematical notation, e.g. ``(0, 100]``."""
        left = "[" if self.low_inclusive and self.low is not None else "("
        right = "]" if self.high_inclusive and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{left}{low}, {high}{right}"

    def validate(self, value: Any) -> float:
        """Return ``value`` as a float, or raise naming the value and the allowed range."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        ok = math.isfinite(number)
        if ok and self.low is not None:
            ok = number >= self.low if self.low_inclusive else number > self.low
        if ok and self.high is not None:
            ok = number <= self.high if self.high_inclusive else number < self.high
        if not ok:
            raise LangarithError(
                f"{self.name} must be a number in {self.describe_range()} ({self.help}); "
                f"got {value!r}"
            )
        return number


@dataclass(frozen=True)
class MergeMethod:
    """A registered merge method.

    Attributes:
        name: registry key, used on the command line and in metadata and score files.
        reference: the paper, as cited in the project's docs.
        reference_url: where to read it.
        needs_init: whether θ_init is required (methods over language vectors τ).
        merge_tensor: the per-tensor function (see :class:`TensorMergeFn`).
        params: the method's numeric parameters.
        weights_sum_to_one: refuse weights whose sum is not 1 within
            :data:`WEIGHT_SUM_TOLERANCE` (weighted averages).
        default_weights: weights used when the caller gives none, as a function of the
            number of adapters; ``None`` = weights are required.
        prepare: optional global step over all names (see :class:`PrepareFn`).
        in_place: optional in-place form for adapters held on a device (see
            :class:`InPlaceFn`); the λ engine uses it through :meth:`writer`.
        description: one sentence on what it computes.
    """

    name: str
    reference: str
    reference_url: str
    needs_init: bool
    merge_tensor: TensorMergeFn
    params: tuple[ParamSpec, ...] = ()
    weights_sum_to_one: bool = False
    default_weights: Callable[[int], list[float]] | None = None
    prepare: PrepareFn | None = None
    in_place: InPlaceFn | None = None
    description: str = ""

    @property
    def param_names(self) -> list[str]:
        return [spec.name for spec in self.params]

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, float]:
        """Fill in defaults and validate; unknown names are refused with the valid ones.

        ``None`` values count as not given, so callers can forward optional CLI values.
        """
        given = {k: v for k, v in params.items() if v is not None}
        unknown = sorted(set(given) - set(self.param_names))
        if unknown:
            raise LangarithError(
                f"Merge method {self.name!r} has no parameter(s) {unknown}. "
                f"Its parameters: {self.param_names}"
            )
        return {
            spec.name: spec.validate(given.get(spec.name, spec.default)) for spec in self.params
        }

    def resolve_weights(self, weights: Sequence[float] | None, n_adapters: int) -> list[float]:
        """Check the weights against the number of adapters and the method's rules."""
        if n_adapters < 1:
            raise LangarithError(f"Merge method {self.name!r} needs at least one adapter")
        if weights is None:
            if self.default_weights is None:
                raise LangarithError(
                    f"Merge method {self.name!r} needs explicit weights, one per adapter "
                    f"({n_adapters} adapters)"
                )
            return self.default_weights(n_adapters)
        try:
            values = [float(w) for w in weights]
        except (TypeError, ValueError):
            raise LangarithError(f"Weights must be numbers, got {list(weights)!r}") from None
        if len(values) != n_adapters:
            raise LangarithError(
                f"Got {len(values)} weight(s) {values} for {n_adapters} adapter(s); "
                "give exactly one weight per adapter, in the same order"
            )
        if not all(math.isfinite(v) for v in values):
            raise LangarithError(f"Weights must be finite numbers, got {values}")
        if self.weights_sum_to_one:
            total = math.fsum(values)
            if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
                raise LangarithError(
                    f"Weights of merge method {self.name!r} must sum to 1 (tolerance "
                    f"{WEIGHT_SUM_TOLERANCE:g}); got {values} summing to {total:.9g}. "
                    "Use 'task-arithmetic' for weights that do not sum to 1"
                )
        return values

    def writer(
        self, held: HeldAdapters, weights: Sequence[float], params: Mapping[str, float]
    ) -> TensorWriter:
        """The per-name writer of this merge of ``held`` (weights and params resolved).

        The method's :attr:`in_place` form when it has one; otherwise its ``prepare``
        step once and :attr:`merge_tensor` per name, copied into the buffer.
        """
        if self.in_place is not None:
            return self.in_place(held, weights, **params)
        extra: dict[str, Any] = {}
        if self.prepare is not None:
            extra = self.prepare(held.init, held.thetas, weights, **params)

        def write(name: str, buf: torch.Tensor) -> None:
            init = None if held.init is None else held.init[name]
            thetas = [theta[name] for theta in held.thetas]
            buf.copy_(self.merge_tensor(init, thetas, weights, name=name, **params, **extra))

        return write
