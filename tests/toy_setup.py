"""A tiny, self-made evaluation setup: backbone, θ_init, language and task adapters, data.

Test code, kept out of the package: the tests import it from ``tests/`` (their rootdir)
and ``benchmarks/lambda_grid.py`` puts ``tests/`` on ``sys.path``. Tests and the
benchmark need a complete job's inputs without running the
workflow. :func:`build_toy_setup` makes them in seconds, laid out like the workflow's
paths under ``root``:

* ``resources/backbones/toy/``: a BERT (hidden 32 by default) with a WordPiece tokenizer
  trained on the toy data, random weights;
* ``results/adapters/toy/lang/init/``: θ_init (MAD-X ``seq_bn_inv``, via
  :func:`langarith.train.language_adapter.init_language_adapter`);
* ``results/adapters/toy/lang/<lang>/seed1/``: "trained" language adapters, θ_init plus
  a shared and a language-specific random direction on every parameter (invertible
  adapter included), so that language vectors correlate as in the paper's figure 10;
* ``results/adapters/toy/task/<kind>/seed1/``: task adapters (``seq_bn``) with random
  heads of the right type;
* ``resources/data/<dataset>/<lang>/``: offline demo data (``langarith.data``).

The scores are meaningless, but every code path of the evaluation runs on them, and
different λ give different predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import torch
from adapters import AutoAdapterModel, SeqBnConfig
from adapters.composition import Stack
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from langarith import paths
from langarith.adapter_io import (
    finish_adapter_folder,
    load_adapter_into,
    read_adapter,
    weights_sha256,
    write_adapter,
)
from langarith.backbone import train_tokenizer
from langarith.data import NER_LABELS, NLI_LABELS, prepare_demo_dataset, read_split
from langarith.evaluate.model import LANG_SLOT
from langarith.io import atomic_dir
from langarith.modeling import quiet_transformers
from langarith.train.language_adapter import init_language_adapter

__all__ = ["TOY_DATASETS", "ToySetup", "build_toy_setup"]

log = logging.getLogger(__name__)

TOY_MODEL = "toy"
TOY_SEED = 1
#: Evaluation dataset of each task kind.
TOY_DATASETS = {"ner": "wikiann", "nli": "xnli", "qa": "xquad"}


@dataclass
class ToySetup:
    """Paths of a toy setup (all absolute)."""

    root: Path
    backbone: Path
    init: Path
    lang: dict[str, Path] = field(default_factory=dict)
    task: dict[str, Path] = field(default_factory=dict)
    data: dict[tuple[str, str], Path] = field(default_factory=dict)

    def data_dir(self, kind: str, lang: str) -> Path:
        return self.data[(kind, lang)]


def _toy_tokenizer(texts: Sequence[str], vocab_size: int):
    tokenizer = train_tokenizer(texts, arch="bert", vocab_size=vocab_size, min_frequency=1)
    tokenizer.model_max_length = 512
    return tokenizer


def _perturbed(init_dir: Path, out_dir: Path, shared: dict, lang_seed: int, scale: float) -> None:
    init = read_adapter(init_dir)
    generator = torch.Generator().manual_seed(lang_seed)
    state = {}
    for name, tensor in init.state.items():
        own = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
        state[name] = (tensor.float() + scale * (shared[name] + own)).to(tensor.dtype)
    write_adapter(
        init,
        state,
        out_dir,
        name=init.name,
        metadata={"kind": "toy_language_adapter", "init_sha256": weights_sha256(init_dir)},
    )


def _balance_classifier(
    model: torch.nn.Module, backbone: Path, kind: str, pairs: Sequence[tuple[str, str]]
) -> None:
    """Centre and standardise the random classification head's logits on ``pairs``.

    A random BERT's [CLS] vectors differ little between inputs, so a random head tends
    to predict one class for every row and no λ changes the accuracy. With per-class
    logits of mean 0 and standard deviation 1 over the toy rows, predictions spread over
    the classes and sit near decision boundaries, so small language-vector changes flip
    some of them (the engine tests rely on λ mattering).
    """
    tokenizer = AutoTokenizer.from_pretrained(str(backbone), local_files_only=True)
    batch = tokenizer(
        [p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True,
        max_length=128, return_tensors="pt",
    )  # fmt: skip
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits
        last = [m for m in model.heads[kind].modules() if isinstance(m, torch.nn.Linear)][-1]
        std = logits.std(dim=0).clamp_min(1e-6)
        last.weight.div_(std[:, None])
        last.bias.sub_(logits.mean(dim=0)).div_(std)


def _task_adapter(
    backbone: Path,
    init_dir: Path,
    kind: str,
    out_dir: Path,
    seed: int,
    calibration: Sequence[tuple[str, str]] = (),
) -> None:
    torch.manual_seed(seed)
    with quiet_transformers():
        model = AutoAdapterModel.from_pretrained(str(backbone), local_files_only=True)
    load_adapter_into(model, init_dir, load_as=LANG_SLOT, with_head=False)
    model.add_adapter(kind, config=SeqBnConfig(reduction_factor=16))
    if kind == "ner":
        model.add_tagging_head(
            kind, num_labels=len(NER_LABELS), id2label=dict(enumerate(NER_LABELS))
        )
    elif kind == "nli":
        model.add_classification_head(
            kind, num_labels=len(NLI_LABELS), id2label=dict(enumerate(NLI_LABELS))
        )
    else:
        model.add_qa_head(kind)
    model.active_adapters = Stack(LANG_SLOT, kind)
    with torch.no_grad():  # a non-trivial task adapter: scale up its random init
        for name, param in model.named_parameters():
            if f".{kind}." in name or name.startswith(f"heads.{kind}."):
                param.add_(torch.randn_like(param) * 1.0)
    if kind == "nli" and calibration:
        _balance_classifier(model, backbone, kind, calibration)
    with atomic_dir(out_dir) as tmp:
        model.save_adapter(str(tmp), kind, with_head=True, use_safetensors=True)
        finish_adapter_folder(tmp, {"kind": "task_adapter", "task": kind})


def build_toy_setup(
    root: str | PathLike[str],
    *,
    kinds: Sequence[str] = ("ner", "nli", "qa"),
    languages: Sequence[str] = ("en", "es", "it", "pt"),
    targets: Sequence[str] = ("es",),
    rows: int = 60,
    hidden_size: int = 32,
    num_layers: int = 2,
    vocab_size: int = 1000,
    scale: float = 0.05,
    seed: int = 0,
) -> ToySetup:
    """Build (or reuse, when present) a toy setup under ``root``; see the module docstring.

    Args:
        kinds: task kinds to make adapters and data for.
        languages: languages with a "trained" adapter.
        targets: languages to make evaluation data for (validation and test splits of
            ``rows`` rows each).
        rows: rows per validation and test split.
        hidden_size, num_layers: backbone size (heads: ``hidden_size // 16``, at least 1).
        scale: size of the random language directions, relative to 1.
        seed: seed of every random choice.
    """
    root = Path(root)
    model = TOY_MODEL
    setup = ToySetup(
        root=root,
        backbone=root / paths.BACKBONE_DIR.format(model=model),
        init=root / paths.INIT_DIR.format(model=model),
    )
    options = {"task_train_rows": 1, "task_validation_rows": rows, "task_test_rows": rows}
    texts: list[str] = []
    for kind in kinds:
        dataset = TOY_DATASETS[kind]
        for lang in targets:
            folder = root / paths.DATA_DIR.format(dataset=dataset, lang=lang)
            if not (folder / "manifest.json").is_file():
                prepare_demo_dataset(dataset, lang, folder, options=options)
            setup.data[(kind, lang)] = folder
            for row in read_split(folder, "validation"):
                if kind == "ner":
                    texts.append(" ".join(row["tokens"]))
                elif kind == "nli":
                    texts += [row["premise"], row["hypothesis"]]
                else:
                    texts += [row["context"], row["question"]]

    if not (setup.backbone / "config.json").is_file():
        tokenizer = _toy_tokenizer(texts, vocab_size)
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=max(1, hidden_size // 16),
            intermediate_size=2 * hidden_size,
            max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id,
            initializer_range=0.3,  # large random weights: outputs that depend on the input
        )
        with atomic_dir(setup.backbone) as tmp:
            BertForMaskedLM(config).save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    if not (setup.init / "adapter_config.json").is_file():
        init_language_adapter(
            setup.backbone,
            setup.init,
            adapter_config={"architecture": "seq_bn_inv", "reduction_factor": 2},
            seed=seed,
        )
    init_state = read_adapter(setup.init).state
    generator = torch.Generator().manual_seed(seed + 1000)
    shared = {
        name: torch.randn(t.shape, generator=generator, dtype=torch.float32)
        for name, t in init_state.items()
    }
    for i, lang in enumerate(languages):
        folder = root / paths.LANG_ADAPTER_DIR.format(model=model, lang=lang, seed=TOY_SEED)
        if not (folder / "adapter_config.json").is_file():
            _perturbed(setup.init, folder, shared, seed * 100 + i + 1, scale)
        setup.lang[lang] = folder
    for kind in kinds:
        folder = root / paths.TASK_ADAPTER_DIR.format(model=model, task=kind, seed=TOY_SEED)
        if not (folder / "head_config.json").is_file():
            pairs = [
                (row["premise"], row["hypothesis"])
                for lang in targets
                for row in read_split(setup.data[(kind, lang)], "validation")
            ] if kind == "nli" else []  # fmt: skip
            _task_adapter(setup.backbone, setup.init, kind, folder, seed, pairs)
        setup.task[kind] = folder
    return setup
