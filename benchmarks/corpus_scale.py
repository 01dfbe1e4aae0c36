"""Benchmark: language-adapter training on a demo-sized corpus and on one 20× larger.

Builds (once, in ``--work``) a generated Wikipedia-shaped corpus of ``--docs`` documents
(the demo's 2,000 by default) and one of 20× as many, a demo-shaped backbone (hidden 64,
vocabulary 4,000, 300 MLM pre-training steps on the small corpus), its shared θ_init
and the token folder of each corpus (``langarith train tokens``). Then, each in its own
subprocess so that peak RSS is per run, it trains for ``--steps`` steps:

1. **ours, small** and 2. **ours, large**: ``train_language_adapter`` on the token
   folder (blocks cut from the memory map, the seeded Feistel block order);
3. **Trainer, small**: a plain Hugging Face ``Trainer`` + ``DataCollatorForLanguageModeling``
   on the same model, θ_init, frozen backbone, hyper-parameters and blocks (a map-style
   dataset over the same token folder).

Each run is scored on the same validation blocks with the same masks (the objective's
fixed evaluation) at the same steps, so the two loss curves can be compared. The three
runs take turns ``--repeats`` times (in alternating order); each ratio is the median over
the turns of the ratio within a turn. It prints every run, then one line::

    rss_ratio=<peak RSS large/small> throughput_ratio=<tokens/s large/small> \
vs_trainer=<tokens/s ours/Trainer, small corpus> padding=<share of pad ids in our batches>

Goals: rss_ratio ≤ 1.10, throughput_ratio ≥ 0.95, vs_trainer ≥ 1.0, padding ≤ 0.05.

Usage::

    .venv/bin/python benchmarks/corpus_scale.py                  # 2,000 and 40,000 docs
    .venv/bin/python benchmarks/corpus_scale.py --steps 400 --repeats 5 --work /tmp/cs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the tiny model shapes are test code: they live in tests/
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SCALE = 20
#: The demo's language-adapter settings (config/demo.yaml), fp32 on CPU.
HPARAMS = {
    "batch_size": 16,
    "grad_accum": 1,
    "lr": 3.0e-3,
    "block_size": 64,
    "mlm_probability": 0.15,
    "max_eval_blocks": 32,
    "checkpoint_every": 0,
    "max_grad_norm": 1.0,
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="where corpora and backbone go (default: temp)")
    parser.add_argument("--docs", type=int, default=2000, help="documents of the small corpus")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="turns; ratios are medians")
    parser.add_argument("--child", choices=("ours", "trainer"), help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- inputs


def _corpus(out: Path, n_docs: int, seed: int = 0) -> Path:
    """A Wikipedia-shaped folder of ``n_docs`` generated articles (Zipfian words)."""
    from langarith.data import write_dataset

    if (out / "manifest.json").exists():
        return out
    rng = random.Random(seed)
    syllables = ["ka", "to", "ri", "men", "sa", "lo", "vin", "de", "ra", "nu", "pe", "ol"]
    words = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(8000)})
    weights = [1.0 / (rank + 1) for rank in range(len(words))]

    def article(i: int, split: str) -> dict:
        body = " ".join(rng.choices(words, weights, k=rng.randint(40, 120)))
        return {"id": f"{split}{i}", "text": body.capitalize() + "."}

    return write_dataset(
        out,
        "wikipedia",
        "xx",
        {
            "train": (article(i, "t") for i in range(n_docs)),
            "validation": (article(i, "v") for i in range(200)),
        },
        source="generated",
        revision="corpus_scale-1",
        options={"docs": n_docs},
    )


def _inputs(work: Path, docs: int) -> dict[str, Path]:
    """Corpora, backbone, θ_init and token folders (reused when ``work`` has them)."""
    from tiny import demo_spec

    from langarith.backbone import build_demo_backbone
    from langarith.train import init_language_adapter
    from langarith.train.tokens import tokenize_corpus

    small = _corpus(work / "data" / "small", docs)
    large = _corpus(work / "data" / "large", SCALE * docs, seed=1)
    backbone = work / "backbone"
    if not backbone.exists():
        spec = demo_spec(
            vocab_size=4000, hidden_size=64, num_heads=4, intermediate_size=128,
            max_position_embeddings=512, pretrain_steps=300, batch_size=16, seq_len=64,
        )  # fmt: skip
        build_demo_backbone([small], backbone, arch="bert", spec=spec, seed=0)
    init = work / "init"
    if not init.exists():
        init_language_adapter(backbone, init, seed=0)
    out = {"backbone": backbone, "init": init, "small": small, "large": large}
    for name in ("small", "large"):
        tokens = work / "tokens" / name
        if not tokens.exists():
            started = time.perf_counter()
            tokenize_corpus(backbone, out[name], tokens)
            print(f"tokenized {name} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        out[f"{name}_tokens"] = tokens
    return out


# ----------------------------------------------------------------------------- children


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _eval_steps(steps: int) -> int:
    return max(1, steps // 4)


def _child_ours(args: argparse.Namespace, work: Path) -> dict:
    """``train_language_adapter`` on a token folder; tokens/s of the loop, pad share of the
    blocks it was fed, validation losses at the evaluation steps."""
    import numpy as np

    from langarith.backbone import load_tokenizer
    from langarith.train import train_language_adapter
    from langarith.train.tokens import tokenizer_checksum
    from langarith.training.blocks import BlockOrder, TokenBlocks
    from langarith.training.inputs import data_checksum
    from langarith.training.mlm import special_ids
    from langarith.training.token_files import open_token_split

    hp = {**HPARAMS, "max_steps": args.steps, "eval_every": _eval_steps(args.steps)}
    with tempfile.TemporaryDirectory() as tmp:
        out = train_language_adapter(
            work / "backbone", work / "init", args.data, Path(tmp) / "out",
            seed=0, hparams=hp, tokens_dir=args.tokens,
        )  # fmt: skip
        meta = json.loads((out / "metadata.json").read_text())
    tokenizer = load_tokenizer(work / "backbone")
    split = open_token_split(
        args.tokens, "train",
        tokenizer_sha256=tokenizer_checksum(work / "backbone"),
        corpus_checksum=data_checksum(args.data), verify_checksums=False,
    )  # fmt: skip
    blocks = TokenBlocks(split, hp["block_size"], *special_ids(tokenizer), split.tokens)
    fed = blocks.take(BlockOrder(len(blocks), 0).indices(0, args.steps * hp["batch_size"]))
    return {
        "tokens_per_s": meta["tokens_processed"] / meta["train_seconds"],
        "seconds": meta["train_seconds"],
        "padding": float(np.mean(fed.numpy() == tokenizer.pad_token_id)),
        "val_loss": [round(h["loss"], 4) for h in meta["eval_history"]],
        "train_blocks": meta["train_blocks"],
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child_trainer(args: argparse.Namespace, work: Path) -> dict:
    """The same training through ``transformers.Trainer`` + ``DataCollatorForLanguageModeling``."""
    import adapters
    import torch
    from transformers import (
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from langarith.backbone import load_backbone
    from langarith.modeling import LANG_ADAPTER_NAME, load_language_adapter
    from langarith.train.tokens import tokenizer_checksum
    from langarith.training.blocks import TokenBlocks
    from langarith.training.inputs import data_checksum
    from langarith.training.mlm import MlmObjective, special_ids
    from langarith.training.token_files import open_token_split

    hp = HPARAMS
    model, tokenizer = load_backbone(work / "backbone")
    adapters.init(model)
    load_language_adapter(model, work / "init")
    model.train_adapter(LANG_ADAPTER_NAME)
    for name, param in model.named_parameters():
        param.requires_grad = f".{LANG_ADAPTER_NAME}." in name
    checks = {
        "tokenizer_sha256": tokenizer_checksum(work / "backbone"),
        "corpus_checksum": data_checksum(args.data),
    }
    start_id, end_id = special_ids(tokenizer)
    split = open_token_split(args.tokens, "train", **checks)
    train = TokenBlocks(split, hp["block_size"], start_id, end_id, split.tokens)
    valid_split = open_token_split(args.tokens, "validation", **checks)
    valid = TokenBlocks(valid_split, hp["block_size"], start_id, end_id, valid_split.tokens)

    class Blocks(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(train)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": train.take([i])[0]}

    objective = MlmObjective(
        mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
        special_ids=tuple(sorted({start_id, end_id, int(tokenizer.pad_token_id)})),
        probability=hp["mlm_probability"], seed=0, device=torch.device("cpu"),
    )  # fmt: skip
    evaluate = objective.evaluator(
        model, valid.take(range(min(hp["max_eval_blocks"], len(valid)))), hp["batch_size"]
    )
    losses: list[float] = []

    class Scores(TrainerCallback):
        def on_step_end(self, targs, state, control, **kwargs):
            if state.global_step % _eval_steps(args.steps) == 0:
                model.eval()
                with torch.no_grad():
                    losses.append(round(evaluate()["loss"], 4))
                model.train()

    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(
            output_dir=tmp, max_steps=args.steps, per_device_train_batch_size=hp["batch_size"],
            learning_rate=hp["lr"], weight_decay=0.0, warmup_steps=0,
            max_grad_norm=hp["max_grad_norm"], lr_scheduler_type="linear", save_strategy="no",
            logging_strategy="no", report_to=[], disable_tqdm=True, seed=0, use_cpu=True,
            dataloader_num_workers=0,
        )  # fmt: skip
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=hp["mlm_probability"])
        trainer = Trainer(
            model=model,
            args=targs,
            train_dataset=Blocks(),
            data_collator=collator,
            callbacks=[Scores()],
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    tokens = args.steps * hp["batch_size"] * (hp["block_size"] - 2)
    return {
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "val_loss": losses,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run_child(kind: str, args: argparse.Namespace, work: Path, data: Path, tokens: Path) -> dict:
    command = [
        sys.executable, __file__, "--child", kind, "--work", str(work), "--steps",
        str(args.steps), "--threads", str(args.threads), "--data", str(data),
        "--tokens", str(tokens),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        run = _child_ours if args.child == "ours" else _child_trainer
        print(json.dumps(run(args, args.work)))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="corpus-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = _inputs(work, args.docs)
    cases = {
        "ours_small": ("ours", inputs["small"], inputs["small_tokens"]),
        "ours_large": ("ours", inputs["large"], inputs["large_tokens"]),
        "trainer_small": ("trainer", inputs["small"], inputs["small_tokens"]),
    }
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for turn in range(args.repeats):  # take turns, in alternating order: the machine is shared
        for name in list(cases)[:: -1 if turn % 2 else 1]:
            kind, data, tokens = cases[name]
            runs[name].append(_run_child(kind, args, work, data, tokens))
    for name, results in runs.items():
        for result in results:
            print(f"{name}: {json.dumps(result)}")
    small, large, trainer = (runs[n] for n in ("ours_small", "ours_large", "trainer_small"))

    def ratio(a: list[dict], b: list[dict], key: str) -> float:
        """Median over the turns of a/b within a turn (neighbours in time share the load)."""
        return statistics.median(x[key] / y[key] for x, y in zip(a, b, strict=True))

    print(
        f"final_val_loss ours={small[0]['val_loss'][-1]} trainer={trainer[0]['val_loss'][-1]} "
        f"(curves: ours={small[0]['val_loss']} trainer={trainer[0]['val_loss']})"
    )
    print(
        f"rss_ratio={ratio(large, small, 'peak_rss_mb'):.3f} "
        f"throughput_ratio={ratio(large, small, 'tokens_per_s'):.3f} "
        f"vs_trainer={ratio(small, trainer, 'tokens_per_s'):.3f} "
        f"padding={max(r['padding'] for r in small + large):.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
