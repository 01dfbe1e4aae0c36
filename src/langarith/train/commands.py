"""Handlers of ``langarith train init|tokens|language|task`` (imported only when a command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from langarith import LangarithError
from langarith.cli_options import load_settings
from langarith.train.language_adapter import init_language_adapter, train_language_adapter
from langarith.train.task_adapter import train_task_adapter
from langarith.train.tokens import tokenize_corpus

__all__ = ["init", "language", "task", "tokens"]


def _data_dirs(args: argparse.Namespace) -> Path | dict[str, Path]:
    """One ``--data`` folder, or ``--train-data`` and ``--validation-data`` (not both)."""
    if args.data is not None:
        if args.train_data or args.validation_data:
            raise LangarithError("Give either --data or --train-data/--validation-data, not both.")
        return args.data
    if not (args.train_data and args.validation_data):
        raise LangarithError("Give --data DIR, or both --train-data DIR and --validation-data DIR.")
    return {"train": args.train_data, "validation": args.validation_data}


def init(args: argparse.Namespace) -> int:
    """``langarith train init``: write the shared θ_init of a backbone."""
    config = load_settings(args.config, args.set)
    init_language_adapter(args.backbone, args.out, adapter_config=config, seed=args.seed)
    return 0


def language(args: argparse.Namespace) -> int:
    """``langarith train language``: train one language adapter."""
    hparams = load_settings(args.hparams, args.set)
    train_language_adapter(
        args.backbone,
        args.init,
        args.data,
        args.out,
        seed=args.seed,
        hparams=hparams,
        checkpoint_dir=args.checkpoint_dir,
        tokens_dir=args.tokens,
    )
    return 0


def tokens(args: argparse.Namespace) -> int:
    """``langarith train tokens``: write the token folder of one corpus for one backbone."""
    out = tokenize_corpus(args.backbone, args.data, args.out)
    print(f"wrote {out}")
    return 0


def task(args: argparse.Namespace) -> int:
    """``langarith train task``: train one task adapter."""
    hparams = load_settings(args.hparams, args.set)
    train_task_adapter(
        args.backbone,
        args.lang_adapter,
        _data_dirs(args),
        args.task,
        args.out,
        seed=args.seed,
        hparams=hparams,
        checkpoint_dir=args.checkpoint_dir,
    )
    return 0
