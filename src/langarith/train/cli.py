"""``langarith train init|tokens|language|task``: the parser only, free of torch imports.

The handlers live in :mod:`langarith.train.commands` and are named by a
``"module:function"`` string that :mod:`langarith.cli` imports when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langarith.cli_options import add_settings_options
from langarith.task_kinds import TASK_KINDS


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith train init|tokens|language|task``."""
    parser = subparsers.add_parser("train", help="train language and task adapters")
    sub = parser.add_subparsers(dest="train_command", metavar="ACTION", required=True)

    init = sub.add_parser("init", help="create the shared initial language adapter of a backbone")
    init.add_argument("--backbone", required=True, type=Path)
    init.add_argument("--out", required=True, type=Path)
    init.add_argument("--seed", type=int, default=0)
    add_settings_options(init, "--config")
    init.set_defaults(func="langarith.train.commands:init")

    tokens = sub.add_parser(
        "tokens", help="tokenize a Wikipedia folder once for a backbone (token files)"
    )
    tokens.add_argument("--backbone", required=True, type=Path)
    tokens.add_argument("--data", required=True, type=Path, help="wikipedia/<lang> folder")
    tokens.add_argument(
        "--out", required=True, type=Path, help="e.g. results/tokens/<model>/<lang>"
    )
    tokens.set_defaults(func="langarith.train.commands:tokens")

    lang = sub.add_parser("language", help="train one language adapter (MLM) from the shared init")
    lang.add_argument("--backbone", required=True, type=Path)
    lang.add_argument("--init", required=True, type=Path, help="folder written by `train init`")
    lang.add_argument("--data", required=True, type=Path, help="wikipedia/<lang> folder")
    lang.add_argument("--out", required=True, type=Path)
    lang.add_argument("--seed", type=int, default=0)
    lang.add_argument("--checkpoint-dir", type=Path)
    lang.add_argument(
        "--tokens", type=Path, help="token folder of --data (default: built in a temp folder)"
    )
    add_settings_options(lang)
    lang.set_defaults(func="langarith.train.commands:language")

    task = sub.add_parser(
        "task", help="train a task adapter on English over a frozen language adapter"
    )
    task.add_argument("--backbone", required=True, type=Path)
    task.add_argument("--lang-adapter", required=True, type=Path)
    task.add_argument("--task", required=True, choices=TASK_KINDS)
    task.add_argument("--data", type=Path, help="one folder with train + validation splits")
    task.add_argument("--train-data", type=Path)
    task.add_argument("--validation-data", type=Path)
    task.add_argument("--out", required=True, type=Path)
    task.add_argument("--seed", type=int, default=0)
    task.add_argument("--checkpoint-dir", type=Path)
    add_settings_options(task)
    task.set_defaults(func="langarith.train.commands:task")


__all__ = ["register_cli"]
