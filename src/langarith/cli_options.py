"""Settings given on the command line: a YAML/JSON file overlaid with ``--set KEY=VALUE``.

Shared by ``langarith backbone demo`` and ``langarith train ...``; torch-free, so that
building the parser stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from langarith import LangarithError

__all__ = ["add_settings_options", "load_settings"]


def load_settings(path: Path | str | None, sets: Sequence[str] = ()) -> dict[str, Any]:
    """hparams from a YAML/JSON file (optional) overlaid with ``KEY=VALUE`` strings.

    Values are parsed as YAML (``3`` → int, ``1e-4`` → float, ``true`` → bool, ``null``);
    dotted keys address nested mappings (``adapter_config.reduction_factor=8``).
    """
    settings: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise LangarithError(f"Settings file {path} does not exist.") from err
        except IsADirectoryError as err:
            raise LangarithError(f"Settings file {path} is a folder, not a YAML file.") from err
        except UnicodeDecodeError as err:
            raise LangarithError(
                f"Settings file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8."
            ) from err
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
    """A ``--set`` value as YAML, except that number-like strings YAML 1.1 leaves as text
    (``1e-4``) become floats."""
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


def add_settings_options(
    parser: argparse.ArgumentParser, flag: str = "--hparams", what: str = "setting"
) -> None:
    """Add ``flag`` (a YAML/JSON file of settings) and repeatable ``--set KEY=VALUE``."""
    parser.add_argument(flag, type=Path, help="YAML/JSON file of settings")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help=f"override one {what}"
    )
