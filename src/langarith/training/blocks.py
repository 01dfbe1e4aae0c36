"""MLM blocks cut from a memory-mapped token stream, in a seeded order of O(1) memory.

Block ``i`` of a stream is ``[start] + ids[i*c : (i+1)*c] + [end]`` with ``c =
block_size - 2`` (concatenate-and-chunk as Hugging Face ``run_mlm``'s ``group_texts``;
the tail that does not fill a block is dropped), so a block is a slice of the token
file: there is no block index, and no padding.

The order of epoch ``e`` is a pseudo-random permutation of ``range(n)`` computed
*per position* (:class:`BlockOrder`): a 4-round Feistel network keyed by
``derive_seed(seed, salt, e)`` on the smallest even-bit domain ``2^2h ≥ n``, with
cycle-walking for values ``≥ n``. It is a bijection, so every block is seen once per
epoch, yet nothing of size ``n`` is ever built (a ``randperm`` of 16M blocks alone is
128 MB); a resumed run recomputes the same positions from the seed alone. Expected
cost: under 4 Feistel evaluations per position, vectorised over a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from langarith import LangarithError
from langarith.training.seeding import derive_seed
from langarith.training.token_files import TokenSplit

__all__ = ["BlockOrder", "TokenBlocks", "budget_prefix"]

_ROUNDS = 4
#: Documents per step of the budget scan.
_SCAN = 1 << 20


def _mix(x: np.ndarray, key: int) -> np.ndarray:
    """A keyed 64-bit mixer (splitmix64 finaliser), the Feistel round function."""
    with np.errstate(over="ignore"):
        z = (x ^ np.uint64(key)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class BlockOrder:
    """Maps a global example position to a block index; epoch ``p // n`` is a seeded
    permutation evaluated position by position (see the module docstring)."""

    def __init__(self, n: int, seed: int, *, salt: str = "order") -> None:
        if n <= 0:
            raise LangarithError("There are no training blocks to draw batches from.")
        self.n = n
        self.seed = seed
        self.salt = salt
        bits = max(1, (n - 1).bit_length())
        self._half = np.uint64((bits + 1) // 2)
        self._low = np.uint64((1 << int(self._half)) - 1)

    def _keys(self, epoch: int) -> list[int]:
        return [derive_seed(self.seed, self.salt, epoch, r) for r in range(_ROUNDS)]

    def _feistel(self, x: np.ndarray, keys: list[int]) -> np.ndarray:
        left, right = x >> self._half, x & self._low
        for key in keys:
            left, right = right, left ^ (_mix(right, key) & self._low)
        return (left << self._half) | right

    def permute(self, positions: np.ndarray, epoch: int) -> np.ndarray:
        """The images of ``positions`` (each in ``[0, n)``) under epoch ``epoch``'s permutation."""
        keys = self._keys(epoch)
        out = self._feistel(np.asarray(positions, dtype=np.uint64), keys)
        limit = np.uint64(self.n)
        bad = out >= limit
        while bad.any():  # cycle-walking: stays a bijection on [0, n)
            out[bad] = self._feistel(out[bad], keys)
            bad = out >= limit
        return out.astype(np.int64)

    def indices(self, start: int, count: int) -> np.ndarray:
        """Block indices at stream positions ``start .. start + count - 1`` (may straddle
        epochs)."""
        positions = np.arange(start, start + count, dtype=np.int64)
        epochs = positions // self.n
        out = np.empty(count, dtype=np.int64)
        for epoch in np.unique(epochs):
            sel = epochs == epoch
            out[sel] = self.permute(positions[sel] % self.n, int(epoch))
        return out


def budget_prefix(split: TokenSplit, words: int) -> int:
    """Stream length (in ids) of the first ``words`` whitespace tokens of ``split``.

    Whole documents are taken while their whitespace-token counts fit; the document in
    which the budget ends is cut at the same fraction of its sub-words as of its words
    (a token file keeps no word-to-sub-word map). A budget above the corpus is an error.
    """
    before = 0
    for lo in range(0, split.docs, _SCAN):  # chunked: no array of size docs is built
        cum = np.cumsum(np.asarray(split.words[lo : lo + _SCAN]), dtype=np.int64) + before
        if int(cum[-1]) >= words:
            i = int(np.searchsorted(cum, words, side="left"))
            k = lo + i
            prior = int(cum[i - 1]) if i else before
            doc_start, doc_end = int(split.offsets[k]), int(split.offsets[k + 1])
            if words == int(cum[i]):
                return doc_end - 1  # the whole document; its separator is not needed
            share = (words - prior) / int(split.words[k])
            return doc_start + int(round(share * (doc_end - doc_start - 1)))
        before = int(cum[-1])
    raise LangarithError(
        f"The token budget max_train_tokens={words} (whitespace tokens) is larger than "
        f"the corpus ({before} whitespace tokens in {split.docs} documents); lower the "
        "budget or use a larger corpus."
    )


@dataclass
class TokenBlocks:
    """Fixed-length MLM blocks over the first ``length`` ids of a token split."""

    split: TokenSplit
    block_size: int
    start_id: int
    end_id: int
    length: int

    def __post_init__(self) -> None:
        if self.block_size < 8:
            raise LangarithError(f"block_size={self.block_size} is too small; use at least 8.")

    @property
    def content(self) -> int:
        return self.block_size - 2

    def __len__(self) -> int:
        return self.length // self.content

    def take(self, indices: np.ndarray | list[int]) -> torch.Tensor:
        """Blocks ``indices`` as a ``(len, block_size)`` int64 tensor (reads only them)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"block index out of range 0..{len(self) - 1}")
        pos = idx[:, None] * self.content + np.arange(self.content, dtype=np.int64)
        body = torch.from_numpy(np.asarray(self.split.ids[pos], dtype=np.int64))
        n = body.shape[0]
        return torch.cat(
            [
                torch.full((n, 1), self.start_id, dtype=torch.long),
                body,
                torch.full((n, 1), self.end_id, dtype=torch.long),
            ],
            dim=1,
        )

    def text_tokens(self, indices: np.ndarray | None = None) -> int:
        """Text ids (document separators excluded) in blocks ``indices`` (all if None)."""
        c = self.content
        if indices is None:
            end = len(self) * c
            return end - int(self.split.separators_before(np.array([end]))[0])
        starts = np.asarray(indices, dtype=np.int64) * c
        seps = self.split.separators_before(starts + c) - self.split.separators_before(starts)
        return int(len(starts) * c - seps.sum())
