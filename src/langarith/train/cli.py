"""``langarith train init|language|task`` (and the settings parser ``backbone`` shares).

Kept free of torch imports so building the parser (``langarith --help``) stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langarith import LangarithError


def load_settings(path: Path | str | None, sets: Sequence[str] = ()) -> dict[str, Any]:
    """hparams from a YAML/JSON file (optional) overlaid with ``KEY=VALUE`` strings.

    Values are parsed as YAML (``3`` → int, ``1e-4`` → float, ``true`` → bool, ``null``);
    dotted keys address nested mappings (``adapter_config.reduction_factor=8``).
    """
    import yaml

    settings: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise LangarithError(f"Settings file {path} does not exist.") from err
        except yaml.YAMLError as err:
            raise LangarithError(f"Settings file {path} is not valid YAML/JSON ({err}).") from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise LangarithError(f"Settings file {path} must hold a mapping of keys to values.")
        settings.update(loaded)
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise LangarithError(f"--set {item!r} is not of the form KEY=VALUE.")
        value = _parse_value(raw)
        target = settings
        parts = key.strip().split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise LangarithError(f"--set {item!r}: {part!r} is not a mapping.")
        target[parts[-1]] = value
    return settings


def _parse_value(raw: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            return float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            return value
    return value


def _data_dirs(args: argparse.Namespace) -> Path | dict[str, Path]:
    if args.data is not None:
        if args.train_data or args.validation_data:
            raise LangarithError("Give either --data or --train-data/--validation-data, not both.")
        return args.data
    if not (args.train_data and args.validation_data):
        raise LangarithError("Give --data DIR, or both --train-data DIR and --validation-data DIR.")
    return {"train": args.train_data, "validation": args.validation_data}


def _cli_init(args: argparse.Namespace) -> int:
    from langarith.train.language import init_language_adapter

    config = load_settings(args.config, args.set)
    init_language_adapter(args.backbone, args.out, adapter_config=config, seed=args.seed)
    return 0


def _cli_language(args: argparse.Namespace) -> int:
    from langarith.train.language import train_language_adapter

    hparams = load_settings(args.hparams, args.set)
    train_language_adapter(
        args.backbone,
        args.init,
        args.data,
        args.out,
        seed=args.seed,
        hparams=hparams,
        checkpoint_dir=args.checkpoint_dir,
    )
    return 0


def _cli_task(args: argparse.Namespace) -> int:
    from langarith.train.task import train_task_adapter

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


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith train init|language|task``."""
    parser = subparsers.add_parser("train", help="train language and task adapters")
    sub = parser.add_subparsers(dest="train_command", metavar="ACTION", required=True)

    def settings(p: argparse.ArgumentParser, flag: str = "--hparams") -> None:
        p.add_argument(flag, type=Path, help="YAML/JSON file of settings")
        p.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting"
        )

    init = sub.add_parser("init", help="create the shared initial language adapter of a backbone")
    init.add_argument("--backbone", required=True, type=Path)
    init.add_argument("--out", required=True, type=Path)
    init.add_argument("--seed", type=int, default=0)
    settings(init, "--config")
    init.set_defaults(func=_cli_init)

    lang = sub.add_parser("language", help="train one language adapter (MLM) from the shared init")
    lang.add_argument("--backbone", required=True, type=Path)
    lang.add_argument("--init", required=True, type=Path, help="folder written by `train init`")
    lang.add_argument("--data", required=True, type=Path, help="wikipedia/<lang> folder")
    lang.add_argument("--out", required=True, type=Path)
    lang.add_argument("--seed", type=int, default=0)
    lang.add_argument("--checkpoint-dir", type=Path)
    settings(lang)
    lang.set_defaults(func=_cli_language)

    task = sub.add_parser(
        "task", help="train a task adapter on English over a frozen language adapter"
    )
    task.add_argument("--backbone", required=True, type=Path)
    task.add_argument("--lang-adapter", required=True, type=Path)
    task.add_argument("--task", required=True, choices=("ner", "nli", "qa"))
    task.add_argument("--data", type=Path, help="one folder with train + validation splits")
    task.add_argument("--train-data", type=Path)
    task.add_argument("--validation-data", type=Path)
    task.add_argument("--out", required=True, type=Path)
    task.add_argument("--seed", type=int, default=0)
    task.add_argument("--checkpoint-dir", type=Path)
    settings(task)
    task.set_defaults(func=_cli_task)


__all__ = ["load_settings", "register_cli"]
