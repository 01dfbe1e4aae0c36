"""The one masked-language-modelling objective: packing, masking, loss and validation.

Shared by the demo backbone pre-training and language-adapter training, so both see
text the same way and are scored the same way. Packing (instead of padding each
document) wastes no compute on pad tokens. :func:`pack_blocks` packs an in-memory list
for the demo backbone's small corpora; language adapters cut the same ``[CLS] … [SEP]``
blocks from a memory-mapped token file instead (:mod:`langarith.training.blocks`), so
their memory does not grow with the corpus. Masks come from explicit generators derived
from the seed and the micro-batch counter, so every micro-batch can be recreated on
resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from langarith import LangarithError
from langarith.training.seeding import seeded_generator

__all__ = [
    "MlmObjective",
    "PackedBlocks",
    "mask_tokens",
    "mlm_loss",
    "pack_blocks",
    "special_ids",
    "tokenize_texts",
]

#: ``loss(model, input_ids, labels)`` → mean loss over the masked positions.
MlmLoss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


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


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_ids: Sequence[int],
    probability: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking (80% [MASK], 10% random token, 10% kept) with an explicit generator.

    An explicit generator (instead of the global RNG that DataCollatorForLanguageModeling
    uses) lets every micro-batch's masks be recreated from its seed alone.
    """
    labels = input_ids.clone()
    inputs = input_ids.clone()
    probs = torch.full(labels.shape, probability)
    special = torch.zeros_like(labels, dtype=torch.bool)
    for token_id in special_ids:
        special |= labels == token_id
    probs.masked_fill_(special, 0.0)
    masked = torch.bernoulli(probs, generator=generator).bool()
    labels[~masked] = -100
    replace = torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & masked
    inputs[replace] = mask_token_id
    randomize = (
        torch.bernoulli(torch.full(labels.shape, 0.5), generator=generator).bool()
        & masked
        & ~replace
    )
    random_words = torch.randint(vocab_size, labels.shape, generator=generator, dtype=torch.long)
    inputs[randomize] = random_words[randomize]
    return inputs, labels


@dataclass(frozen=True)
class MlmObjective:
    """MLM as one run uses it: which tokens may be masked, how often, with which seed.

    Training masks of micro-batch ``k`` come from ``(seed, "mask", k)``; validation masks
    are drawn once from ``(seed, "eval-mask")``, so every evaluation scores the same
    task and the losses of a run compare. ``loss`` is the loss function (a parameter so
    a test can make it diverge).
    """

    mask_token_id: int
    vocab_size: int
    special_ids: tuple[int, ...]
    probability: float
    seed: int
    device: torch.device
    loss: MlmLoss = mlm_loss

    def _mask(self, ids: torch.Tensor, generator: torch.Generator):
        """:func:`mask_tokens` with this objective's settings."""
        return mask_tokens(
            ids,
            mask_token_id=self.mask_token_id,
            vocab_size=self.vocab_size,
            special_ids=list(self.special_ids),
            probability=self.probability,
            generator=generator,
        )

    def batch_loss(self, model: torch.nn.Module, ids: torch.Tensor, k: int) -> torch.Tensor:
        """The loss of training micro-batch ``k`` (blocks ``ids``, masked for ``k``)."""
        inputs, labels = self._mask(ids, seeded_generator(self.seed, "mask", k))
        return self.loss(model, inputs.to(self.device), labels.to(self.device))

    def evaluator(
        self, model: torch.nn.Module, blocks: torch.Tensor | None, batch_size: int
    ) -> Callable[[], dict[str, float]]:
        """``evaluate()`` for the training loop: the mean loss over every masked token of
        ``blocks`` (``{"loss": 0.0}`` without validation blocks)."""
        if blocks is None or not len(blocks):
            return lambda: {"loss": 0.0}
        inputs, labels = self._mask(blocks, seeded_generator(self.seed, "eval-mask"))

        def evaluate() -> dict[str, float]:
            total, count = 0.0, 0
            for i in range(0, len(inputs), batch_size):
                batch_labels = labels[i : i + batch_size]
                n = int((batch_labels != -100).sum())
                if n == 0:
                    continue
                loss = self.loss(
                    model, inputs[i : i + batch_size].to(self.device), batch_labels.to(self.device)
                )
                total += float(loss) * n
                count += n
            return {"loss": total / max(count, 1)}

        return evaluate
