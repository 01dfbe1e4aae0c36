"""The data stage: the papers' datasets (real or offline demo) in one on-disk format.

``resources/data/<dataset>/<lang>/`` holds ``<split>.jsonl`` (the real Wikipedia train
split: shards ``train-00000.jsonl``, …) and ``manifest.json`` (``docs/interfaces.md``).
:func:`prepare_real_dataset` fills it from the Hugging Face hub or local files,
:func:`prepare_demo_dataset` from an offline generator; the later stages read it with
:func:`read_split` (or :func:`iter_split`) and cannot tell the two apart.

Command line::

    langarith data prepare --dataset xnli --lang de --out resources/data/xnli/de \\
        [--demo] [--option key=value ...]
    langarith data verify resources/data/xnli/de
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from langarith import LangarithError
from langarith.data.demo import DEMO_DEFAULTS, DEMO_LANGUAGES, demo_languages, prepare_demo_dataset
from langarith.data.formats import (
    DATASETS,
    NER_LABELS,
    NLI_LABELS,
    UD_RELATIONS,
    DatasetSpec,
    UncoveredLanguageError,
    covered_languages,
    data_dependencies,
    dataset_covers,
    get_spec,
    iter_split,
    read_manifest,
    read_split,
    split_files,
    verify_dataset,
    verify_manifest,
    write_dataset,
)
from langarith.data.real import allowed_real_options, prepare_real_dataset
from langarith.data.shards import DATASET_OUTPUT
from langarith.io import check_replaceable

__all__ = [
    "DATASETS",
    "DEMO_DEFAULTS",
    "DEMO_LANGUAGES",
    "NER_LABELS",
    "NLI_LABELS",
    "UD_RELATIONS",
    "DatasetSpec",
    "UncoveredLanguageError",
    "allowed_real_options",
    "covered_languages",
    "data_dependencies",
    "dataset_covers",
    "demo_languages",
    "get_spec",
    "iter_split",
    "prepare_dataset",
    "prepare_demo_dataset",
    "prepare_real_dataset",
    "read_manifest",
    "read_split",
    "register_cli",
    "split_files",
    "verify_dataset",
    "verify_manifest",
    "write_dataset",
]

log = logging.getLogger(__name__)


def prepare_dataset(
    dataset: str,
    lang: str,
    out_dir: Path | str,
    *,
    demo: bool,
    options: dict[str, Any] | None = None,
) -> Path:
    """Real or demo preparation behind one call, for the Snakemake script and the CLI.

    The output is checked against the replace rule first (never a local source folder
    given as ``local_path``/``hub_path`` or cache, never a folder with other files), so
    a refusal comes before any download.
    """
    options = options or {}
    sources = [options[k] for k in ("local_path", "hub_path", "cache_dir") if options.get(k)]
    check_replaceable(out_dir, DATASET_OUTPUT, [str(s) for s in sources])
    prepare = prepare_demo_dataset if demo else prepare_real_dataset
    return prepare(dataset, lang, out_dir, options=options)


def _parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` with a YAML value, so numbers, booleans and lists keep their type."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise LangarithError(f"--option expects key=value, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def _cmd_prepare(args: argparse.Namespace) -> int:
    options = dict(_parse_option(text) for text in args.option or [])
    out = prepare_dataset(args.dataset, args.lang, args.out, demo=args.demo, options=options)
    manifest = read_manifest(out)
    rows = {split: entry["rows"] for split, entry in manifest["splits"].items()}
    print(f"wrote {out} ({manifest['source']}): {json.dumps(rows)}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    manifest = verify_dataset(args.data_dir)
    rows = {split: entry["rows"] for split, entry in manifest["splits"].items()}
    print(f"{args.data_dir}: OK ({manifest['dataset']}/{manifest['language']}, {json.dumps(rows)})")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith data prepare`` and ``langarith data verify``."""
    parser = subparsers.add_parser(
        "data", help="prepare or verify a dataset folder", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    prepare = commands.add_parser("prepare", help="write resources/data/<dataset>/<lang>/")
    prepare.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    prepare.add_argument("--lang", required=True, help="language code, e.g. de")
    prepare.add_argument("--out", required=True, type=Path, help="folder to write")
    prepare.add_argument("--demo", action="store_true", help="offline demo generator")
    prepare.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="preparation option (repeatable), e.g. seed=1 or local_path=DIR",
    )
    prepare.set_defaults(func=_cmd_prepare)

    verify = commands.add_parser("verify", help="recompute a data folder's checksums")
    verify.add_argument("data_dir", type=Path, metavar="DIR")
    verify.set_defaults(func=_cmd_verify)
