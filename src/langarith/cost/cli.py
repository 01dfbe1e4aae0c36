"""``langarith plan --configfile CONFIG``: the parser only, free of heavy imports.

The handler, :func:`langarith.cost.estimate.cli_plan`, is named by a
``"module:function"`` string that :mod:`langarith.cli` imports when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith plan``."""
    parser = subparsers.add_parser(
        "plan",
        help="print what a config will cost before anything runs",
        description=(
            "Jobs per stage, training steps and tokens, disk per artifact family, peak GPU "
            "memory per job kind and, given a measured throughput, GPU-hours."
        ),
    )
    parser.add_argument("--configfile", required=True, type=Path, help="workflow config (YAML)")
    parser.add_argument(
        "--tokens-per-second",
        type=float,
        metavar="N",
        help="training throughput of a language adapter on your GPU (tokens/s)",
    )
    parser.add_argument(
        "--task-tokens-per-second",
        type=float,
        metavar="N",
        help="task-adapter training throughput (default: --tokens-per-second)",
    )
    parser.add_argument(
        "--eval-tokens-per-second",
        type=float,
        metavar="N",
        help="evaluation (forward) throughput (default: 3 × the task rate)",
    )
    parser.set_defaults(func="langarith.cost.estimate:cli_plan")


__all__ = ["register_cli"]
