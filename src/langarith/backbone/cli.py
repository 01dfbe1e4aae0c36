"""``langarith backbone demo|fetch``: the parser only, free of torch imports.

The handlers live in :mod:`langarith.backbone.commands` and are named by a
``"module:function"`` string that :mod:`langarith.cli` imports when the command runs,
so ``langarith --help`` does not pay for torch and transformers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langarith.backbone.archs import ARCHS

__all__ = ["register_cli"]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith backbone demo|fetch``."""
    parser = subparsers.add_parser("backbone", help="build (demo) or fetch (hub) a backbone")
    sub = parser.add_subparsers(dest="backbone_command", metavar="ACTION", required=True)

    demo = sub.add_parser("demo", help="train a tokenizer + small MLM on demo corpora")
    demo.add_argument(
        "--corpus", nargs="+", required=True, type=Path, help="wikipedia/<lang> folders"
    )
    demo.add_argument("--out", required=True, type=Path)
    demo.add_argument("--arch", choices=ARCHS, default="bert")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--spec", type=Path, help="YAML/JSON file with spec keys")
    demo.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key"
    )
    demo.set_defaults(func="langarith.backbone.commands:demo")

    fetch = sub.add_parser(
        "fetch", help="download a backbone from the HF hub (or copy a local folder)"
    )
    fetch.add_argument("--hub-name", required=True)
    fetch.add_argument("--out", required=True, type=Path)
    fetch.add_argument("--revision")
    fetch.add_argument(
        "--path", type=Path, help="local save_pretrained folder to use instead of the hub"
    )
    fetch.set_defaults(func="langarith.backbone.commands:fetch")
