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
import traceback
from collections.abc import Callable

from langarith import __version__
from langarith.user_errors import DEBUG_VARIABLE, USER_ERRORS, debug_wanted, error_line

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
    "langarith.export",
    "langarith.cost",
)
#: Imported before a command runs: the arms' registry entries (tables, figures), which
#: ``langarith plan`` and ``langarith report`` count and write.
ARMS_MODULE = "langarith.arms"


def build_parser() -> argparse.ArgumentParser:
    """The ``langarith`` parser with the subcommands of every module in CLI_MODULES."""
    parser = argparse.ArgumentParser(
        prog="langarith",
        description="Language arithmetic: merge language adapters without training.",
    )
    parser.add_argument("--version", action="version", version=f"langarith {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an error (or set {DEBUG_VARIABLE}=1)",
    )
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
    """Run one command; a user error becomes one line on stderr and exit code 1.

    User errors are :class:`LangarithError` and the OS errors of :func:`error_line`;
    with ``--debug`` (or ``LANGARITH_DEBUG=1``) their traceback is printed as well.
    Anything else is a bug and keeps its traceback.
    """
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
        importlib.import_module(ARMS_MODULE)
        return int(resolve_handler(args.func)(args) or 0)
    except USER_ERRORS as err:
        line = error_line(err)
        if line is None:
            raise
        if debug_wanted(args):
            traceback.print_exception(err, file=sys.stderr)
        print(f"langarith {args.command}: error: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
