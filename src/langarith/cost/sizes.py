"""The sizes a cost estimate starts from: backbone shapes, adapter parameter counts and
the documented sizes of the datasets, all known before anything is downloaded.

Parameter counts are formulas of the shapes (checked against the ``adapters`` library in
``tests/test_cost.py``); dataset sizes are the row counts of the hub cards (or the demo's
settings), and byte sizes are averages stated next to each number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langarith import LangarithError
from langarith.settings import DemoBackboneSettings, demo_backbone_settings

__all__ = [
    "BYTES_PER_PARAM",
    "HUB_BACKBONES",
    "BackboneShape",
    "activation_bytes",
    "adapter_params",
    "backbone_shape",
    "eval_rows",
    "head_params",
    "task_train_rows",
    "wikipedia_bytes",
]

#: fp32 safetensors.
BYTES_PER_PARAM = 4


@dataclass(frozen=True)
class BackboneShape:
    """What the cost of a backbone depends on (its config.json)."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    positions: int
    type_vocab: int

    def params(self) -> int:
        """Parameters of the masked-LM model (BERT/XLM-R layout, decoder tied)."""
        h, i = self.hidden, self.intermediate
        embeddings = (self.vocab + self.positions + self.type_vocab) * h + 2 * h
        layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
        mlm_head = (h * h + h) + 2 * h + self.vocab
        return embeddings + self.layers * layer + mlm_head

    def encoder_params(self) -> int:
        """Parameters without the MLM head: what a fully fine-tuned model (a language or
        task vector of the full-model arm) stores."""
        h = self.hidden
        return self.params() - ((h * h + h) + 2 * h + self.vocab)


#: The hub backbones' config.json (hidden_size, num_hidden_layers, ...).
HUB_BACKBONES: dict[str, BackboneShape] = {
    "bert-base-multilingual-cased": BackboneShape(119547, 768, 12, 12, 3072, 512, 2),
    "bert-base-multilingual-uncased": BackboneShape(105879, 768, 12, 12, 3072, 512, 2),
    "xlm-roberta-base": BackboneShape(250002, 768, 12, 12, 3072, 514, 1),
    "xlm-roberta-large": BackboneShape(250002, 1024, 24, 16, 4096, 514, 1),
}


def backbone_shape(model: Mapping[str, Any], where: str) -> BackboneShape:
    """The shape of one ``models`` entry: a known hub model or a demo spec."""
    if "demo" in model:
        demo: DemoBackboneSettings = demo_backbone_settings(model, f"{where}.demo")
        return BackboneShape(
            vocab=demo.vocab_size,
            hidden=demo.hidden_size,
            layers=demo.num_layers,
            heads=demo.num_heads,
            intermediate=demo.intermediate_size,
            positions=demo.max_position_embeddings,
            type_vocab=2 if demo.arch == "bert" else 1,
        )
    hub = str(model.get("hub"))
    if hub not in HUB_BACKBONES:
        raise LangarithError(
            f"{where}.hub {hub!r}: its shape is not known to the cost estimate; known: "
            f"{', '.join(HUB_BACKBONES)} (add it to langarith.cost.sizes.HUB_BACKBONES)."
        )
    return HUB_BACKBONES[hub]


def activation_bytes(shape: BackboneShape, batch: int, seq: int, half: bool) -> int:
    """Activation bytes of a forward+backward (Korthikanti et al. 2022, 16-bit; twice
    that in fp32)."""
    per_layer = batch * seq * shape.hidden * (34 + 5 * shape.heads * seq / shape.hidden)
    return int(shape.layers * per_layer * (1 if half else 2))


def _bottleneck(hidden: int, reduction: float) -> int:
    """One bottleneck adapter: down (h→d) and up (d→h) projections with biases."""
    d = int(hidden // reduction)
    return 2 * hidden * d + d + hidden


def adapter_params(shape: BackboneShape, adapter_config: Mapping[str, Any]) -> int:
    """Parameters of one adapter of ``adapter_config`` (``seq_bn``: one bottleneck per
    layer after the feed-forward block, as Pfeiffer's; ``seq_bn_inv`` adds the NICE
    invertible adapter on the embeddings, two coupling networks h/2 → h/4 → h/2)."""
    architecture = str(adapter_config.get("architecture", "seq_bn"))
    if architecture not in ("seq_bn", "seq_bn_inv", "pfeiffer", "pfeiffer+inv"):
        raise LangarithError(
            f"adapter_config.architecture {architecture!r}: the cost estimate knows seq_bn "
            "and seq_bn_inv only."
        )
    reduction = float(adapter_config.get("reduction_factor", 16))
    total = shape.layers * _bottleneck(shape.hidden, reduction)
    if architecture in ("seq_bn_inv", "pfeiffer+inv"):
        half = shape.hidden // 2
        inner = half // 2  # inv_adapter_reduction_factor 2
        total += 2 * (half * inner + inner + inner * half + half)
    return total


def head_params(shape: BackboneShape, kind: str, n_labels: int) -> int:
    """The prediction head saved with a task adapter: tagging (one layer), classification
    (two layers), QA (one layer, start and end), DP (``adapters``' two biaffine maps:
    arcs (h + 1) × h, relations n_labels × (h + 1) × (h + 1))."""
    h = shape.hidden
    if kind == "ner":
        return h * n_labels + n_labels
    if kind == "dp":
        return (h + 1) * h + n_labels * (h + 1) * (h + 1)
    if kind == "nli":
        return (h * h + h) + (h * n_labels + n_labels)
    return h * 2 + 2


# ----------------------------------------------------------------------------- datasets

#: Rows of the task datasets' English training (and validation) splits, from the hub
#: cards: SQuAD 1.1 (87,599 / 10,570), XNLI en = MultiNLI (392,702 / 2,490), WikiANN en
#: (20,000 / 10,000).
HUB_TRAIN_ROWS = {
    "squad": (87_599, 10_570),
    "xnli": (392_702, 2_490),
    "wikiann": (20_000, 10_000),
    "ud": (12_543, 2_001),  # UD 2.7 English EWT sentences (train / dev)
    # task-arithmetic-crosslingual, Table 6: MARC en binarised, SMSA (IndoNLU)
    "marc": (160_000, 4_000),
    "smsa": (11_000, 1_260),
}
#: Rows of the evaluation splits (validation, test) per language: XNLI and IndicXNLI
#: 2,490 / 5,010; XQuAD's 1,190 questions split 50/50 (config.yaml); WikiANN 10,000 /
#: 10,000 except the small languages of Rahimi et al.'s splits.
HUB_EVAL_ROWS = {
    "xnli": (2_490, 5_010),
    "indicxnli": (2_490, 5_010),
    "xquad": (595, 595),
    # AmericasNLI ~740 / 750 per language; MARC 5,000 / 5,000 before the 3-star reviews
    # are dropped; NusaX-senti 100 / 400 (task-arithmetic-crosslingual, Table 6)
    "americasnli": (740, 750),
    "marc": (4_000, 4_000),
    "nusax": (100, 400),
}
WIKIANN_EVAL_ROWS = {"hi": (1_000, 1_000), "sw": (1_000, 1_000), "ur": (1_000, 1_000)}
#: MLQA's monolingual dev and test questions (Lewis et al. 2020, Table 4).
MLQA_EVAL_ROWS = {
    "en": (1_148, 11_590), "de": (512, 4_517), "es": (500, 5_253), "ar": (517, 5_335),
    "hi": (507, 4_918), "vi": (511, 5_495), "zh": (504, 5_137),
}  # fmt: skip
#: UD 2.7 treebanks of the TLR arm: (dev, test) sentences from the release's statistics
#: (0 where the treebank has no dev split); a language not listed counts as (500, 500).
UD_EVAL_ROWS = {
    "en": (2_001, 2_077), "af": (194, 425), "bm": (0, 1_026), "eu": (1_798, 1_799),
    "kpv": (0, 435), "mr": (46, 47), "mt": (433, 518), "myv": (0, 1_690), "te": (131, 146),
    "ug": (900, 900), "wo": (449, 470),
}  # fmt: skip
#: Bytes per row in our jsonl, averages of the hub files (SQuAD train-v1.1.json is 30 MB
#: for 87,599 questions, contexts repeated per question in jsonl).
ROW_BYTES = {
    "squad": 900, "xquad": 900, "mlqa": 900, "xnli": 250, "indicxnli": 400, "wikiann": 250,
    "americasnli": 300, "marc": 600, "smsa": 250, "nusax": 250,
}  # fmt: skip
#: Windows per SQuAD question at max_length 384, doc_stride 128 (88.5k features from
#: 87.6k questions with a BERT tokenizer); 1 for NER and NLI.
QA_WINDOWS_PER_ROW = 1.01

#: Articles of the Wikipedias (millions, Wikipedia's own statistics, late 2023, rounded);
#: a language not listed counts as 0.1 M.
WIKIPEDIA_ARTICLES_M = {
    "en": 6.7, "de": 2.8, "fr": 2.5, "es": 1.9, "ru": 1.9, "it": 1.8, "zh": 1.4,
    "pt": 1.1, "vi": 1.3, "ar": 1.2, "fa": 0.97, "ca": 0.74, "tr": 0.53, "ro": 0.44,
    "bg": 0.29, "el": 0.22, "ur": 0.2, "hi": 0.16, "sw": 0.08, "as": 0.014,
}  # fmt: skip
#: Text bytes per article: 8.9 GB / 2.67 M articles in the card of 20220301.de.
WIKIPEDIA_ARTICLE_BYTES = 3_340
#: Bytes of UTF-8 text per whitespace token (word and its space), for token budgets.
BYTES_PER_WORD = 6.5
#: Demo corpora and task rows: bytes of a generated document / row, measured on demo
#: data made with the default options (470 bytes a Wikipedia document; 134 an XNLI,
#: 285 a WikiANN, 404 a SQuAD row).
DEMO_DOC_BYTES = 470
DEMO_ROW_BYTES = 300


def wikipedia_bytes(config: Mapping[str, Any], lang: str) -> int:
    """Text of one language's Wikipedia as the data step writes it: the token budget if
    ``data.wikipedia.max_train_tokens`` is set, else the whole dump."""
    data = config.get("data") or {}
    if data.get("source") == "demo":
        demo = data.get("demo") or {}
        docs = int(demo.get("wikipedia_train_docs", 2000)) + int(demo.get("validation_docs", 200))
        return docs * DEMO_DOC_BYTES
    whole = int(WIKIPEDIA_ARTICLES_M.get(lang, 0.1) * 1e6 * WIKIPEDIA_ARTICLE_BYTES)
    budget = (data.get("wikipedia") or {}).get("max_train_tokens")
    return min(whole, int(budget * BYTES_PER_WORD)) if budget else whole


def task_train_rows(config: Mapping[str, Any], dataset: str) -> tuple[int, int]:
    """(train, validation) rows of a task's English training data."""
    data = config.get("data") or {}
    if data.get("source") == "demo":
        demo = data.get("demo") or {}
        return int(demo.get("task_train_rows", 2000)), int(demo.get("task_validation_rows", 300))
    if dataset not in HUB_TRAIN_ROWS:
        raise LangarithError(f"Dataset {dataset!r} has no documented size for the cost estimate.")
    return HUB_TRAIN_ROWS[dataset]


def eval_rows(config: Mapping[str, Any], dataset: str, lang: str) -> tuple[int, int]:
    """(validation, test) rows of an evaluation dataset in one language."""
    data = config.get("data") or {}
    if data.get("source") == "demo":
        demo = data.get("demo") or {}
        return int(demo.get("task_validation_rows", 300)), int(demo.get("task_test_rows", 300))
    if dataset == "wikiann":
        return WIKIANN_EVAL_ROWS.get(lang, (10_000, 10_000))
    if dataset == "mlqa":
        return MLQA_EVAL_ROWS.get(lang, (500, 5_000))
    if dataset == "ud":
        return UD_EVAL_ROWS.get(lang, (500, 500))
    if dataset not in HUB_EVAL_ROWS:
        raise LangarithError(f"Dataset {dataset!r} has no documented size for the cost estimate.")
    return HUB_EVAL_ROWS[dataset]


def dataset_bytes(config: Mapping[str, Any], dataset: str, lang: str) -> int:
    """Disk of one prepared dataset folder (all its splits)."""
    if dataset == "wikipedia":
        return wikipedia_bytes(config, lang)
    demo = (config.get("data") or {}).get("source") == "demo"
    per_row = DEMO_ROW_BYTES if demo else ROW_BYTES.get(dataset, 500)
    # a source-only dataset (SMSA, trained on in Indonesian) is its training size too
    source = lang == config.get("source_language", "en") or dataset not in HUB_EVAL_ROWS
    if not demo and dataset in HUB_TRAIN_ROWS and source:
        rows = sum(HUB_TRAIN_ROWS[dataset])
    else:
        rows = sum(eval_rows(config, dataset, lang))
        if demo:
            rows += int(((config.get("data") or {}).get("demo") or {}).get("task_train_rows", 2000))
    return int(math.ceil(rows * per_row))
