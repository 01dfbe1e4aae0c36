"""Masked-language-modelling data: tokenize, concatenate and pack text into fixed blocks.

Shared by the demo backbone pre-training and language-adapter training, so both see
text the same way. Packing (instead of padding each document) wastes no compute on pad
tokens and makes the token budget of the data-size study exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from langarith import LangarithError


@dataclass
class PackedBlocks:
    """Packed MLM blocks: ``[CLS] content... [SEP]`` rows of equal length.

    ``text_tokens`` counts the text sub-word tokens inside the kept blocks (document
    separators and the per-block [CLS]/[SEP] excluded); ``budget_hit`` says whether
    packing stopped because the token budget was reached.
    """

    blocks: torch.Tensor
    text_tokens: int
    budget_hit: bool

    def __len__(self) -> int:
        return int(self.blocks.shape[0])


def special_ids(tokenizer) -> tuple[int, int]:
    """(start, end) ids that wrap a block: [CLS]/[SEP] for BERT, <s>/</s> for XLM-R."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or end is None or tokenizer.mask_token_id is None:
        raise LangarithError(
            "The backbone tokenizer lacks a [CLS]/<s>, [SEP]/</s> or mask token; "
            "MLM training needs all three."
        )
    return int(start), int(end)


def tokenize_texts(tokenizer, texts: Iterable[str], batch: int = 1000) -> Iterable[list[int]]:
    """Sub-word ids of each text without special tokens (batched through the fast tokenizer)."""
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) >= batch:
            yield from tokenizer(chunk, add_special_tokens=False, verbose=False)["input_ids"]
            chunk = []
    if chunk:
        yield from tokenizer(chunk, add_special_tokens=False, verbose=False)["input_ids"]


def pack_blocks(
    docs: Iterable[Sequence[int]],
    *,
    block_size: int,
    start_id: int,
    end_id: int,
    max_tokens: int | None = None,
    max_blocks: int | None = None,
) -> PackedBlocks:
    """Concatenate documents (``end_id`` between them) and cut into ``block_size`` rows.

    Each row is ``start_id + (block_size - 2) stream tokens + end_id``. Packing stops once
    ``max_tokens`` text tokens were taken (the last document is cut) or ``max_blocks`` rows
    are full; the tail that does not fill a row is dropped.
    """
    if block_size < 8:
        raise LangarithError(f"block_size={block_size} is too small; use at least 8.")
    content = block_size - 2
    stream: list[int] = []
    taken = 0
    budget_hit = False
    for ids in docs:
        if max_tokens is not None and taken + len(ids) >= max_tokens:
            ids = list(ids)[: max_tokens - taken]
            budget_hit = True
        if not ids:
            if budget_hit:
                break
            continue
        if stream:
            stream.append(end_id)
        stream.extend(ids)
        taken += len(ids)
        if budget_hit or (max_blocks is not None and len(stream) >= max_blocks * content):
            break
    n_blocks = len(stream) // content
    if max_blocks is not None:
        n_blocks = min(n_blocks, max_blocks)
    if n_blocks == 0:
        return PackedBlocks(torch.empty(0, block_size, dtype=torch.long), 0, budget_hit)
    body = torch.tensor(stream[: n_blocks * content], dtype=torch.long).view(n_blocks, content)
    blocks = torch.cat(
        [
            torch.full((n_blocks, 1), start_id, dtype=torch.long),
            body,
            torch.full((n_blocks, 1), end_id, dtype=torch.long),
        ],
        dim=1,
    )
    text_tokens = int((body != end_id).sum())
    return PackedBlocks(blocks, text_tokens, budget_hit)


def mlm_loss(model, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the masked positions, computing the MLM head only there.

    Same value as ``model(input_ids=..., labels=...).loss`` but the vocabulary projection
    (the largest cost of small models) runs on the ~15% masked positions instead of all
    of them. The invertible adapter's inverse still runs: it is a pre-hook on the output
    embedding. Models without a known head attribute take the ordinary path.
    """
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    if head is None:
        return model(input_ids=input_ids, labels=labels).loss
    hidden = model.base_model(input_ids=input_ids)[0]
    selected = labels != -100
    logits = head(hidden[selected])
    return F.cross_entropy(logits.float(), labels[selected])
