"""The λ engine's forward passes: a checked TorchScript replay, on parallel lanes.

Why: a λ grid runs the same model over the same batches twenty-odd times, with only
parameter *values* changing between passes (the engine writes merged weights in place).
On a CPU, a small model's pass is dominated by Python: ``transformers`` and ``adapters``
spend about 4.7 ms per batch in module calls and composition logic before any
arithmetic (the demo's XLM-R-shaped backbone, 2 layers; about a fifth of a pass). And
two cores give only 1.5× one core on matrices that small, since every operator splits
its few thousand rows across threads.

:class:`ForwardRunner` therefore

* **replays a trace**: the first time it meets a batch's input names it records the
  model's forward with :func:`torch.jit.trace` (a *function* trace: the parameters are
  held by reference, so weights written in place later are the ones replayed; the
  graph executor's optimiser is off in every thread that replays, so nothing is folded
  into constants);
* **checks every batch before trusting it**: a batch is replayed only after a pass in
  which its replayed outputs were bit-for-bit equal to the eager outputs (which are the
  ones that pass returns; the check is on a batch's fourth pass, or its first when the
  caller announces a grid of :data:`WORTH_TRACING` or more points, so batches passed a
  few times cost nothing extra). A model whose Python takes a data-dependent branch (say,
  ``transformers`` dropping the attention mask of a batch without padding) fails the
  check on the batches where it matters and keeps running them eagerly;
* **runs batches on lanes**: with ``lanes`` > 1 each batch runs whole on one of
  ``lanes`` threads, each operator single-threaded, instead of every operator split
  over all threads; outputs come back in batch order, so whatever reads them (the
  scorers, the label-free observers) sees the same sequence as without lanes.

On the demo's QA split (tinyxlmr, 2 threads) a pass takes 181 ms eagerly and about
130 ms replayed on two lanes, with outputs bit-equal to the eager pass. A GPU keeps the
eager pass on one lane (its kernels, not Python, bound the pass). ``LANGARITH_TRACE=0``
turns the replay off.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch

from langarith.evaluate.tasks import Batch

__all__ = ["CHECK_AFTER", "TRACE_ENV", "WORTH_TRACING", "ForwardRunner"]

log = logging.getLogger(__name__)

#: Environment variable: ``0`` turns the traced replay off (every pass eager).
TRACE_ENV = "LANGARITH_TRACE"
#: Eager passes of a batch before it is traced and checked. Tracing the demo's model
#: costs about 0.1 s and the check one more pass, against some 40 ms saved per replayed
#: pass, so a split passed three times or fewer (the racing search's anchors, a test
#: split) is not worth it; the full grid's 21 passes and coarse-to-fine's 10 are.
CHECK_AFTER = 3
#: Passes from which a split is traced and checked on its first pass when the caller
#: says they are coming (:meth:`ForwardRunner.expect`): at about 8 replays the trace and
#: its check have paid for themselves.
WORTH_TRACING = 10


def _trace_wanted(device: torch.device) -> bool:
    return device.type == "cpu" and os.environ.get(TRACE_ENV, "1").strip() not in ("0", "")


def _flat(value: Any) -> list[torch.Tensor] | None:
    """The tensors of a (nested tuple/list of) tensors, or ``None`` if anything else."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        tensors: list[torch.Tensor] = []
        for item in value:
            inner = _flat(item)
            if inner is None:
                return None
            tensors += inner
        return tensors
    return None


def _identical(eager: tuple, replayed: tuple) -> bool:
    """Bit-for-bit equality of two output tuples (same structure, dtypes and values)."""
    first, second = _flat(eager), _flat(replayed)
    if first is None or second is None or len(first) != len(second):
        return False
    return all(
        a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        for a, b in zip(first, second, strict=True)
    )


def _replays(recorded: _Trace | None, batch: Batch, eager: Any) -> bool:
    """Whether ``recorded`` reproduces the eager output of ``batch`` bit for bit."""
    if recorded is None:
        return False
    try:
        replayed = recorded(batch)
    except Exception as err:  # noqa: BLE001 - a trace that fails here stays unused
        log.debug("forward replay does not run on a batch of shape %s: %s", batch.width, err)
        return False
    return _identical(tuple(eager.values()), tuple(replayed.values()))


class _Trace:
    """One recorded forward for one tuple of input names, and how to rebuild outputs."""

    def __init__(self, function: Callable[..., tuple], keys: tuple[str, ...], kind: type):
        self.function = function
        self.keys = keys
        self.kind = kind

    def __call__(self, batch: Batch) -> Any:
        values = self.function(*batch.inputs.values())
        return self.kind(**dict(zip(self.keys, values, strict=True)))


@contextmanager
def _replay_mode() -> Iterator[None]:
    """Inference, and no graph optimisation (both are per thread in torch)."""
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        yield


@contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ForwardRunner:
    """Runs one model over batches, eagerly or from a checked trace, on one or more lanes.

    Args:
        model: the evaluation model (eval mode; its outputs a ``transformers``
            ``ModelOutput`` for the replay, anything for the eager pass).
        device: where the model and the batches live.
        trace: replay traced passes once checked; default: on a CPU unless
            ``LANGARITH_TRACE=0``.
        lanes: batches run at once, each single-threaded; default: torch's intra-op
            threads on a CPU (capped at 8), 1 on a GPU.
        check_after: eager passes of a batch before its replay is checked.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        *,
        trace: bool | None = None,
        lanes: int | None = None,
        check_after: int = CHECK_AFTER,
    ) -> None:
        self.model = model
        self.device = device
        self.trace = _trace_wanted(device) if trace is None else bool(trace)
        if lanes is None:
            lanes = min(torch.get_num_threads(), 8) if device.type == "cpu" else 1
        self.lanes = max(1, int(lanes))
        self._traces: dict[tuple[str, ...], _Trace | None] = {}
        # batch id → (weak reference, eager passes so far or replay checked equal); an id
        # is only trusted while the batch it was taken from is alive
        self._checked: dict[int, tuple[weakref.ref, int | bool]] = {}
        self.check_after = int(check_after)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.replayed_batches = 0
        self.eager_batches = 0

    # --- one batch ------------------------------------------------------------------

    def _eager(self, batch: Batch) -> Any:
        return self.model(**batch.inputs)

    def _state(self, batch: Batch) -> int | bool:
        """Eager passes run so far (an ``int``), then whether the check passed (a ``bool``)."""
        entry = self._checked.get(id(batch))
        if entry is None or entry[0]() is not batch:
            return 0
        return entry[1]

    def _record(self, names: tuple[str, ...], batch: Batch, eager: Any) -> _Trace | None:
        """Trace the model on ``batch`` (its eager output gives the output's fields)."""
        keys = tuple(eager.keys()) if hasattr(eager, "keys") else None
        if keys is None or _flat(tuple(eager.values())) is None:
            log.info("forward replay off: the model's output is not a tuple of tensors")
            return None
        model = self.model

        def forward(*tensors: torch.Tensor) -> tuple:
            output = model(**dict(zip(names, tensors, strict=True)))
            return tuple(output[key] for key in keys)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer and deprecation warnings
                function = torch.jit.trace(forward, tuple(batch.inputs.values()), check_trace=False)
        except Exception as err:  # noqa: BLE001 - any failure means: stay eager
            log.info("forward replay off: the model could not be traced (%s)", err)
            return None
        return _Trace(function, keys, type(eager))

    def _one(self, batch: Batch) -> Any:
        """The output of one batch (checked replay, else eager); runs on a lane.

        A batch is checked on its pass number ``check_after + 1``: a split passed only a
        few times (a test split, the racing search's anchors and row subsets) never pays
        for a trace and a check it could not earn back.
        """
        with _replay_mode():
            if not self.trace:
                self.eager_batches += 1
                return self._eager(batch)
            state = self._state(batch)
            names = tuple(batch.inputs)
            recorded = self._traces.get(names)
            if state is True and recorded is not None:
                self.replayed_batches += 1
                return recorded(batch)
            eager = self._eager(batch)
            self.eager_batches += 1
            if state is False:
                return eager
            if state < self.check_after:
                self._checked[id(batch)] = (weakref.ref(batch), state + 1)
            elif names in self._traces or self._trace_once(names, batch, eager):
                recorded = self._traces[names]
                self._checked[id(batch)] = (weakref.ref(batch), _replays(recorded, batch, eager))
            return eager

    def _trace_once(self, names: tuple[str, ...], batch: Batch, eager: Any) -> bool:
        """Record the trace for ``names`` unless another lane is recording it (``False``:
        this lane goes on eagerly and its batch is checked on its next pass)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if names not in self._traces:
                self._traces[names] = self._record(names, batch, eager)
        finally:
            self._lock.release()
        return True

    def expect(self, batches: Sequence[Batch], passes: int) -> None:
        """Say ``batches`` are about to be passed ``passes`` times.

        From :data:`WORTH_TRACING` passes on, batches not yet seen are traced and checked
        on their first pass instead of after ``check_after`` eager ones (a λ grid's job
        knows how many points it will score; fewer passes keep the default).
        """
        if not self.trace or passes < WORTH_TRACING:
            return
        for batch in batches:
            if self._state(batch) == 0:
                self._checked[id(batch)] = (weakref.ref(batch), self.check_after)

    # --- a pass ---------------------------------------------------------------------

    def run(
        self, batches: Sequence[Batch], then: Callable[[Any, Batch], Any] | None = None
    ) -> Iterator[Any]:
        """Outputs of ``batches``, in order (lanes run ahead by at most two batches each).

        ``then(output, batch)``, when given, runs on the batch's lane right after its pass
        and its result is yielded instead of the output (the engine reduces outputs to
        their scores' parts there when nothing else reads the raw outputs).
        """
        self._forget_dead()

        def one(batch: Batch) -> Any:
            output = self._one(batch)
            if then is None:
                return output
            with torch.inference_mode():
                return then(output, batch)

        if self.lanes == 1 or len(batches) < 2:
            for batch in batches:
                yield one(batch)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="langarith-lane")
        with _intra_op_threads(1):
            pending: deque[Future] = deque()
            upcoming = iter(batches)
            try:
                for batch in upcoming:
                    pending.append(self._pool.submit(one, batch))
                    if len(pending) >= 2 * self.lanes:
                        break
                while pending:
                    output = pending.popleft().result()
                    following = next(upcoming, None)
                    if following is not None:
                        pending.append(self._pool.submit(one, following))
                    yield output
            finally:
                for future in pending:
                    future.cancel()
                for future in pending:
                    if not future.cancelled():
                        future.exception()  # wait: no lane still runs after the pass

    def _forget_dead(self) -> None:
        dead = [key for key, (ref, _) in self._checked.items() if ref() is None]
        for key in dead:
            del self._checked[key]

    def close(self) -> None:
        """Stop the lanes' threads (the runner still works, on a new pool)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
