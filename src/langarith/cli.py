"""The ``langarith`` command line.

Each pipeline module that offers a subcommand defines ``register_cli(subparsers)``,
which adds its parser and sets ``func`` to the handler: a callable taking the parsed
arguments and returning an exit code, or the handler's ``"module:function"`` name,
imported only when that command runs (so ``langarith --help`` does not import torch).
This file only collects them, so modules stay independent of each other.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from langarith import LangarithError, __version__

#: Modules that contribute subcommands, in the order of the pipeline (the analysis stage
#: runs only as a rule and has none).
CLI_MODULES = (
    "langarith.config",
    "langarith.data",
    "langarith.backbone",
    "langarith.related",
    "langarith.train",
    "langarith.merge",
    "langarith.evaluate",
    "langarith.report",
    "langarith.cost",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``langarith`` parser with the subcommands of every module in CLI_MODULES."""
    parser = argparse.ArgumentParser(
        prog="langarith",
        description="Language arithmetic: merge language adapters without training.",
    )
    parser.add_argument("--version", action="version", version=f"langarith {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in CLI_MODULES:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def resolve_handler(func: Callable[[argparse.Namespace], int] | str) -> Callable:
    """The handler of a subcommand: ``func`` itself, or the function a
    ``"module:function"`` string names (imported now, when the command runs)."""
    if callable(func):
        return func
    module, _, name = func.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a LangarithError becomes a one-line message and exit code 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(resolve_handler(args.func)(args) or 0)
    except LangarithError as err:
        print(f"langarith {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
