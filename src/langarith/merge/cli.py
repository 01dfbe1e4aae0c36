"""``langarith merge``: a thin command over :func:`langarith.merge.merge_adapters`.

The options for method parameters (``--lambda``, ``--top-k``) are generated from the
registry's parameter specs, so a new method's parameters appear here without code.
"""

from __future__ import annotations

import argparse
from typing import Any

from langarith import LangarithError
from langarith.merge.registry import MERGE_METHODS, get_method
from langarith.merge.states import merge_adapters

__all__ = ["parse_weights", "register_cli", "run"]


def parse_weights(text: str | None) -> list[float] | None:
    """``"0.3,0.7"`` → ``[0.3, 0.7]``; refuses anything that is not a number."""
    if text is None:
        return None
    values = []
    for item in text.split(","):
        try:
            values.append(float(item.strip()))
        except ValueError:
            raise LangarithError(
                f"--weights must be comma-separated numbers such as 0.3,0.7; got {item!r} "
                f"in {text!r}"
            ) from None
    return values


def _param_specs() -> dict[str, Any]:
    """Every parameter of every method, by name (first spec wins for shared names)."""
    specs: dict[str, Any] = {}
    for method in MERGE_METHODS.values():
        for spec in method.params:
            specs.setdefault(spec.name, spec)
    return specs


def register_cli(subparsers: Any) -> None:
    """Add the ``merge`` subcommand to the top-level ``langarith`` parser."""
    methods = ", ".join(
        f"{m.name} ({'needs --init' if m.needs_init else 'no init'})"
        for m in MERGE_METHODS.values()
    )
    parser = subparsers.add_parser(
        "merge",
        help="merge language adapters into a new AdapterHub folder",
        description=(
            "Merge adapters trained from one shared θ_init. Methods: "
            f"{methods}. Example: langarith merge linear en/ es/ --weights 0.4,0.6 "
            "--out merged/. Write a negative first weight as --weights=-1,2."
        ),
    )
    parser.add_argument("method", metavar="METHOD", help=f"one of {sorted(MERGE_METHODS)}")
    parser.add_argument("adapters", metavar="ADAPTER_DIR", nargs="+", help="adapter folders")
    parser.add_argument(
        "--weights",
        help="one weight per adapter, comma-separated (default: the method's, if any)",
    )
    parser.add_argument("--init", dest="init_dir", help="the shared θ_init adapter folder")
    for spec in _param_specs().values():
        users = [m.name for m in MERGE_METHODS.values() if spec.name in m.param_names]
        parser.add_argument(
            spec.cli_flag,
            dest=spec.name,
            metavar=spec.metavar or spec.name.upper(),
            type=float,
            default=None,
            help=f"{spec.help}; {spec.describe_range()}, default {spec.default:g} "
            f"(methods: {', '.join(users)})",
        )
    parser.add_argument(
        "--out",
        required=True,
        help="folder to write: a new path, or an earlier merged adapter (never an input "
        "or a folder with other files)",
    )
    parser.add_argument("--name", default="merged", help="adapter name stored in the folder")
    parser.add_argument(
        "--format",
        dest="weights_format",
        choices=["safetensors", "bin"],
        default="safetensors",
        help="weights file format (default safetensors)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate the arguments, then merge; returns the exit code."""
    method = get_method(args.method)
    params = {}
    for name, spec in _param_specs().items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if name not in method.param_names:
            users = [m.name for m in MERGE_METHODS.values() if name in m.param_names]
            raise LangarithError(
                f"{spec.cli_flag} is a parameter of {users} only, not of {method.name!r}"
                + (
                    "; for LA(A, B) with λ use --weights L,1-L"
                    if method.name in ("linear", "task-arithmetic")
                    else ""
                )
            )
        params[name] = value
    out = merge_adapters(
        method.name,
        args.adapters,
        parse_weights(args.weights),
        out_dir=args.out,
        init_dir=args.init_dir,
        name=args.name,
        weights_format=args.weights_format,
        **params,
    )
    print(out)
    return 0
