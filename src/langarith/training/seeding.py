"""Randomness that is derived, not carried.

The data order of epoch ``e`` comes from ``derive_seed(seed, "order", e)``, the masks
and dropout of micro-batch ``k`` from ``derive_seed(seed, ..., k)``. A run therefore
needs nothing but its step counter to continue exactly where it stopped, which is what
makes a resumed run end with bit-identical weights (on the same machine and device).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

from langarith import LangarithError

__all__ = ["EpochStream", "derive_seed", "seed_everything", "seeded_generator"]


def derive_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed derived from ``seed`` and a purpose/counter.

    Deriving instead of drawing from one running generator means any micro-batch's
    randomness can be recreated from its index alone (exact resume), and changing how
    often something else draws random numbers cannot shift it.
    """
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def seeded_generator(seed: int, *parts: Any) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed`, so the draws it makes
    depend on nothing but ``(seed, *parts)``."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, *parts))
    return generator


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global generators.

    Used right before a model or adapter is initialised, whose weights are drawn from the
    global generators.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class EpochStream:
    """Maps a global example position to an example index, epoch by epoch.

    Position ``p`` lies in epoch ``p // n``; each epoch is a permutation drawn from
    ``(seed, salt, epoch)``. Batches may straddle epochs. No state beyond the seed is
    needed, so resuming at micro-batch ``k`` reproduces the same order.
    """

    def __init__(self, n: int, seed: int, *, salt: str = "order") -> None:
        if n <= 0:
            raise LangarithError("There are no training examples to draw batches from.")
        self.n = n
        self.seed = seed
        self.salt = salt
        self._cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        """The permutation of ``epoch``; the last few are cached because consecutive
        batches mostly fall in the same epoch."""
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.pop(min(self._cache))
            generator = seeded_generator(self.seed, self.salt, epoch)
            self._cache[epoch] = torch.randperm(self.n, generator=generator)
        return self._cache[epoch]

    def indices(self, start: int, count: int) -> list[int]:
        """Example indices at stream positions ``start .. start + count - 1``."""
        return [int(self._perm(p // self.n)[p % self.n]) for p in range(start, start + count)]
