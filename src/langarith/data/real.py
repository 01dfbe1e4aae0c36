"""The real data: the papers' datasets from the Hugging Face hub or from local files.

Rows are converted from the hub's columns to the fields of ``docs/interfaces.md`` and
written with :func:`langarith.data.formats.write_dataset`. The same code reads local
files laid out with the hub's column names (option ``local_path``), which is how the
tests exercise it offline and how a cluster without internet access is fed.

``datasets`` is imported lazily: it takes seconds to import and most commands of the
``langarith`` CLI never need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from langarith import LangarithError
from langarith.data.coverage import TYDIQA_NAMES
from langarith.data.formats import (
    NER_LABELS,
    NLI_LABELS,
    DatasetSpec,
    build_manifest,
    check_row,
    get_spec,
    iter_split,
    read_manifest,
    require_coverage,
    write_dataset,
)
from langarith.data.shards import (
    DEFAULT_SHARD_DOCS,
    Event,
    ResumePoint,
    request_key,
    write_sharded_corpus,
)
from langarith.data.ud import (
    UD_TREEBANKS,
    local_conllu_files,
    rows_from_hub,
    rows_from_local,
)
from langarith.io import sha256_file
from langarith.languages import three_letter_of

log = logging.getLogger(__name__)

#: Dump of ``wikimedia/wikipedia`` used when the option ``dump`` is not given.
DEFAULT_WIKIPEDIA_DUMP = "20231101"
#: Held-out Wikipedia documents when neither ``validation_docs`` nor
#: ``validation_fraction`` is given (the papers only say "a held-out subset").
DEFAULT_VALIDATION_DOCS = 1000

_COMMON_OPTIONS = ("revision", "local_path", "cache_dir", "hub_path", "streaming")
_WIKIPEDIA_OPTIONS = (
    "dump",
    "validation_docs",
    "validation_fraction",
    "max_train_tokens",
    "min_chars",
    "shard_docs",
    "text_manifest",
)
_TASK_OPTIONS = ("max_rows",)
#: Options of one dataset only: SMSA leaves out the texts of NusaX's test set.
_DATASET_OPTIONS: dict[str, tuple[str, ...]] = {"smsa": ("exclude_texts_of",)}
_TRUE = {"1", "true", "yes", "on"}
#: Columns each task needs in hub-format rows (WikiANN, XNLI and XQuAD rows carry no
#: ``id``, and XQuAD none of ``title``: those are made up when missing).
HUB_COLUMNS: dict[str, tuple[str, ...]] = {
    "mlm": ("id", "text"),
    "ner": ("tokens", "ner_tags"),
    "nli": ("premise", "hypothesis", "label"),
    "qa": ("id", "context", "question", "answers"),
    "dp": ("tokens", "head", "deprel"),
    "sentiment": ("text", "label"),
}
#: MARC's columns (binarised from ``stars``; the text is title and body).
MARC_COLUMNS = ("review_title", "review_body", "stars")
_LOCAL_EXTENSIONS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def allowed_real_options(dataset: str) -> tuple[str, ...]:
    """Option names :func:`prepare_real_dataset` accepts for ``dataset``."""
    extra = _WIKIPEDIA_OPTIONS if dataset == "wikipedia" else _TASK_OPTIONS
    return _COMMON_OPTIONS + extra + _DATASET_OPTIONS.get(dataset, ())


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` asks for no network."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


@contextlib.contextmanager
def _honour_offline_env() -> Iterator[bool]:
    """Make ``datasets`` obey the offline variables as they are *now*.

    ``datasets`` and ``huggingface_hub`` read them once, at import. When they were set
    later (a test, a script that sets them itself) the libraries would try the network
    and hang on retries instead of failing at once; this pins their flags for the call.
    """
    if not offline_mode():
        yield False
        return
    import datasets.config
    import huggingface_hub.constants

    saved = (
        datasets.config.HF_HUB_OFFLINE,
        getattr(datasets.config, "HF_DATASETS_OFFLINE", None),
        huggingface_hub.constants.HF_HUB_OFFLINE,
    )
    datasets.config.HF_HUB_OFFLINE = True
    datasets.config.HF_DATASETS_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield True
    finally:
        (
            datasets.config.HF_HUB_OFFLINE,
            datasets.config.HF_DATASETS_OFFLINE,
            huggingface_hub.constants.HF_HUB_OFFLINE,
        ) = saved


def _check_options(dataset: str, options: Mapping[str, Any]) -> dict[str, Any]:
    allowed = allowed_real_options(dataset)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise LangarithError(
            f"Unknown option(s) {unknown} for the real {dataset!r} data. "
            f"Must be among {list(allowed)}"
        )
    return {k: v for k, v in options.items() if v is not None}


def _positive_int(options: Mapping[str, Any], name: str, minimum: int = 1) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LangarithError(f"Option {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


# ----------------------------------------------------------------------- loading


@dataclass
class _Loaded:
    """Raw hub-format rows per hub split, plus where they came from."""

    splits: dict[str, Iterable[Mapping[str, Any]]]
    source: str
    revision: str
    features: dict[str, Any] = field(default_factory=dict)


def _hub_config(spec: DatasetSpec, lang: str, options: Mapping[str, Any]) -> str | None:
    if spec.hub_config is None:
        return None
    dump = str(options.get("dump", DEFAULT_WIKIPEDIA_DUMP))
    return spec.hub_config.format(lang=spec.hub_lang(lang), dump=dump)


def _fetch_help(spec: DatasetSpec, lang: str, where: str) -> str:
    return (
        f"To fetch it, run `langarith data prepare --dataset {spec.name} --lang {lang} "
        "--out DIR` (the data download rule) on a machine with internet access, with "
        "HF_HUB_OFFLINE and HF_DATASETS_OFFLINE unset, so that it is downloaded and "
        f"cached; or set the option local_path to a local copy of {where} (files with "
        "the hub's column names)."
    )


def is_local_mirror(hub_path: str) -> bool:
    """Whether ``hub_path`` is a local folder laid out like a hub repository.

    ``datasets.load_dataset`` reads such a folder exactly as it reads the repository
    (configs from its ``README.md``, the same file patterns), which is how the tests
    and a cluster without internet run the hub code path on a mirror.
    """
    return Path(hub_path).is_dir()


def _can_fall_back(err: BaseException) -> bool:
    """A layout that is not there: its files or ref are missing, or the folder holds a
    loading script instead (a mirror of the main branch); the next layout may fit."""
    return (
        isinstance(err, FileNotFoundError)
        or type(err).__name__ in ("RevisionNotFoundError", "EntryNotFoundError")
        or "scripts are no longer supported" in str(err)
    )


@dataclass(frozen=True)
class _Attempt:
    """One ``datasets.load_dataset`` call to try: its arguments and what to record."""

    args: tuple[str, str | None]
    data_files: dict[str, list[str]] | None
    revision: str | None

    def describe(self) -> str:
        files = self.data_files or "the repository's configs"
        return f"{self.args[0]} {files} at {self.revision or 'the default branch'}"


def _hub_attempts(
    spec: DatasetSpec, lang: str, config: str | None, hub_path: str, options: Mapping[str, Any]
) -> list[_Attempt]:
    """The loads to try in order; the option ``revision`` pins every one of them.

    A layout read by a packaged builder gets full file addresses: ``hf://`` URLs of
    the repository at its revision, or paths inside a local mirror.
    """
    pinned = options.get("revision")
    if not spec.hub_files:
        return [_Attempt((hub_path, config), None, pinned or spec.hub_revision)]
    attempts = []
    for layout in spec.hub_files:
        revision = pinned or layout.revision
        files = layout.data_files(spec.hub_lang(lang), spec.hub_splits)
        if layout.builder is None:
            attempts.append(_Attempt((hub_path, config), files, revision))
            continue
        if is_local_mirror(hub_path):
            base = f"{Path(hub_path)}/"
        else:
            base = f"hf://datasets/{hub_path}@{quote(revision or 'main', safe='')}/"
        full = {s: [base + p for p in patterns] for s, patterns in files.items()}
        attempts.append(_Attempt((layout.builder, None), full, revision))
    return attempts


def _load_hub(spec: DatasetSpec, lang: str, options: Mapping[str, Any]) -> _Loaded:
    import datasets

    hub_path = str(options.get("hub_path", spec.hub_path))
    config = _hub_config(spec, lang, options)
    # Wikipedia streams; offline only a local mirror can stream (a cache cannot).
    default_streaming = spec.task == "mlm" and (not offline_mode() or is_local_mirror(hub_path))
    streaming = bool(options.get("streaming", default_streaming))
    attempts = _hub_attempts(spec, lang, config, hub_path, options)
    where = f"{hub_path}" + (f" (config {config})" if config else f" ({lang} files)")
    tried: list[str] = []
    with _honour_offline_env() as offline:
        for number, attempt in enumerate(attempts, start=1):
            revision, data_files = attempt.revision, attempt.data_files
            # A packaged builder reads URLs that already name the revision.
            load_revision = revision if attempt.args[0] == hub_path else None
            try:
                loaded = datasets.load_dataset(
                    *attempt.args,
                    data_files=data_files,
                    revision=load_revision,
                    cache_dir=options.get("cache_dir"),
                    streaming=streaming,
                )
                break
            except (OSError, ValueError, RuntimeError) as err:
                if number < len(attempts) and _can_fall_back(err):
                    tried.append(attempt.describe())
                    log.info("%s: not as %s; trying the next layout", where, tried[-1])
                    continue
                raise _load_error(spec, lang, where, err, offline, tried) from err
    missing = [s for s in spec.hub_splits if s not in loaded]
    if missing:
        raise LangarithError(f"{where} has no split(s) {missing}; found {list(loaded)}")
    first = loaded[spec.hub_splits[0]]
    if spec.name == "wikipedia":
        dump = options.get("dump", DEFAULT_WIKIPEDIA_DUMP)
        rev = f"{dump}@{revision}" if revision else str(dump)
    elif revision:
        rev = str(revision)
    elif getattr(first, "_fingerprint", None):
        rev = f"fingerprint:{first._fingerprint}"
    else:
        rev = "main"  # a stream of the default branch: nothing more specific is known
    return _Loaded(
        splits={s: loaded[s] for s in spec.hub_splits},
        source=f"hub:{hub_path}/{config or lang}" if config or data_files else f"hub:{hub_path}",
        revision=rev,
        features=dict(first.features or {}),
    )


def _load_error(
    spec: DatasetSpec,
    lang: str,
    where: str,
    err: BaseException,
    offline: bool,
    tried: list[str],
) -> LangarithError:
    """One sentence on why loading failed and how to get the data."""
    state = (
        "Offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and no cached copy was found. "
        if offline
        else ""
    )
    if tried:
        state += f"Layouts tried before: {'; '.join(tried)}. "
    if "scripts are no longer supported" in str(err):
        state += (
            "The repository holds a loading script, which datasets no longer runs: set "
            "the option revision to 'refs/convert/parquet' (the hub's parquet export) or "
            "use local_path. "
        )
    return LangarithError(
        f"Could not load {spec.name!r} for {lang!r} from {where}: "
        f"{type(err).__name__}: {err}. {state}{_fetch_help(spec, lang, where)}"
    )


def _find_split_files(root: Path, split: str, subdirs: list[str]) -> list[Path]:
    """Files of one split in a local folder: ``<split>.jsonl``, ``<split>-*.parquet``…

    The folder may be flat or laid out like the hub's repository, with one subfolder
    per config or language (``20231101.en/train-00000-of-00041.parquet``,
    ``as/indicxnli-train.parquet``).
    """
    folders = [root] + [root / sub for sub in dict.fromkeys(subdirs) if (root / sub).is_dir()]
    found: list[Path] = []
    for folder in folders:
        for ext in _LOCAL_EXTENSIONS:
            patterns = (f"{split}{ext}", f"{split}-*{ext}", f"*-{split}{ext}", f"{split}/*{ext}")
            for pattern in patterns:
                found += sorted(p for p in folder.glob(pattern) if p.is_file())
    return list(dict.fromkeys(found))


def _local_files(
    spec: DatasetSpec, lang: str, local_path: Any, config: str | None
) -> dict[str, list[Path]]:
    subdirs = [name for name in (config, spec.hub_lang(lang), lang) if name]
    if any("{lang3}" in layout.pattern for layout in spec.hub_files):
        subdirs.append(three_letter_of(lang))  # a mirror keyed by ISO 639-3 (MasakhaNER)
    if isinstance(local_path, Mapping):
        files = {
            str(split): [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
            for split, paths in local_path.items()
        }
    else:
        root = Path(local_path)
        if root.is_file():
            if len(spec.hub_splits) != 1:
                raise LangarithError(
                    f"local_path {root} is one file, but {spec.name!r} has the hub splits "
                    f"{list(spec.hub_splits)}: give a folder with one file per split or a "
                    "mapping {split: file}"
                )
            files = {spec.hub_splits[0]: [root]}
        elif root.is_dir():
            files = {s: _find_split_files(root, s, subdirs) for s in spec.hub_splits}
        else:
            raise LangarithError(f"local_path {root} does not exist")
    missing = [s for s in spec.hub_splits if not files.get(s)]
    if missing:
        raise LangarithError(
            f"local_path {local_path} has no files for the hub split(s) {missing} of "
            f"{spec.name!r} (looked for <split>.jsonl, <split>.json, <split>.parquet, "
            "<split>-*.<ext>, *-<split>.<ext> and <split>/*.<ext>, also under the "
            f"subfolders {subdirs})"
        )
    extra = sorted(set(files) - set(spec.hub_splits))
    if extra:
        raise LangarithError(
            f"local_path names split(s) {extra} that {spec.name!r} does not have on the "
            f"hub; its hub splits are {list(spec.hub_splits)}"
        )
    for paths in files.values():
        for path in paths:
            if path.suffix not in _LOCAL_EXTENSIONS or not path.is_file():
                raise LangarithError(
                    f"local file {path} must exist and end in one of {sorted(_LOCAL_EXTENSIONS)}"
                )
    return files


def _load_local(spec: DatasetSpec, lang: str, options: Mapping[str, Any]) -> _Loaded:
    import datasets

    local_path = options["local_path"]
    root = None if isinstance(local_path, Mapping) else Path(local_path)
    if root is not None and (root / "dataset_dict.json").is_file():
        # A folder written by DatasetDict.save_to_disk.
        loaded = datasets.load_from_disk(str(root))
        missing = [s for s in spec.hub_splits if s not in loaded]
        if missing:
            raise LangarithError(f"{root} has no split(s) {missing}; found {list(loaded)}")
        first = loaded[spec.hub_splits[0]]
        return _Loaded(
            splits={s: loaded[s] for s in spec.hub_splits},
            source=f"local:{local_path}",
            revision=str(options.get("revision") or f"fingerprint:{first._fingerprint}"),
            features=dict(first.features or {}),
        )
    files = _local_files(spec, lang, local_path, _hub_config(spec, lang, options))
    builders = {_LOCAL_EXTENSIONS[p.suffix] for paths in files.values() for p in paths}
    if len(builders) != 1:
        raise LangarithError(f"local files of {spec.name!r} mix formats {sorted(builders)}")
    digest = hashlib.sha256()
    for split in sorted(files):
        for path in files[split]:
            digest.update(f"{split} {path.name} {sha256_file(path)}\n".encode())
    # Streaming reads the files directly: no copy into the datasets cache.
    try:
        with _honour_offline_env():
            loaded = datasets.load_dataset(
                builders.pop(),
                data_files={s: [str(p) for p in paths] for s, paths in files.items()},
                streaming=True,
            )
    except (OSError, ValueError) as err:
        raise LangarithError(
            f"Could not read the local files of {spec.name!r} at {local_path}: "
            f"{type(err).__name__}: {err}"
        ) from err
    first = loaded[spec.hub_splits[0]]
    return _Loaded(
        splits={s: loaded[s] for s in spec.hub_splits},
        source=f"local:{local_path}",
        revision=str(options.get("revision") or f"sha256:{digest.hexdigest()}"),
        features=dict(first.features or {}),
    )


# -------------------------------------------------------------------- conversion


def _tag_names(features: Mapping[str, Any], default: Sequence[str] = NER_LABELS) -> list[str]:
    """Tag names from the ``ner_tags`` class label, or the dataset's known hub order
    (``default``: WikiANN's, CoNLL-2003's with MISC, MasakhaNER's with DATE)."""
    feature = features.get("ner_tags")
    names = getattr(getattr(feature, "feature", None), "names", None)
    return list(names) if names else list(default)


def _convert_ner(
    rows: Iterable[Mapping[str, Any]], prefix: str, names: list[str]
) -> Iterator[dict[str, Any]]:
    for i, row in enumerate(rows):
        tags = [names[t] if isinstance(t, int) else str(t) for t in row["ner_tags"]]
        yield {
            "id": str(row.get("id") or f"{prefix}-{i}"),
            "tokens": list(row["tokens"]),
            "ner_tags": tags,
        }


def _nli_label(value: Any, where: str) -> int:
    """An XNLI label as an int; names ("neutral") and numeric strings are accepted."""
    if isinstance(value, str) and value in NLI_LABELS:
        return NLI_LABELS.index(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LangarithError(
            f"{where}: label {value!r} is neither 0..2 nor one of {list(NLI_LABELS)}"
        ) from None


def _label_names(features: Mapping[str, Any]) -> list[str] | None:
    """XNLI-style ``label`` class-label names, checked against ours; ``None`` if plain.

    The hub stores labels as ints of a ``ClassLabel``; mapping them through its names
    (not assuming the order) keeps a repository that orders them differently correct.
    """
    names = getattr(features.get("label"), "names", None)
    if not names:
        return None
    unknown = sorted(set(names) - set(NLI_LABELS))
    if unknown:
        raise LangarithError(
            f"The label class names {list(names)} include {unknown}, which are not NLI "
            f"labels {list(NLI_LABELS)}"
        )
    return list(names)


def _convert_nli(
    rows: Iterable[Mapping[str, Any]], prefix: str, names: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    skipped = 0
    for i, row in enumerate(rows):
        value = row["label"]
        if names is not None and isinstance(value, int) and 0 <= value < len(names):
            value = names[value]
        label = _nli_label(value, f"{prefix} row {i}")
        if label < 0:  # unlabelled pairs are marked -1 on the hub
            skipped += 1
            continue
        yield {
            "id": str(row.get("id") or f"{prefix}-{i}"),
            "premise": row["premise"],
            "hypothesis": row["hypothesis"],
            "label": label,
        }
    if skipped:
        log.warning("%s: dropped %d rows without a label", prefix, skipped)


def _answers(value: Any) -> dict[str, list[Any]]:
    """Answers as a dict of lists, whether the source stores a dict or a list of dicts."""
    if isinstance(value, Mapping):
        return {
            "text": [str(t) for t in value["text"]],
            "answer_start": [int(s) for s in value["answer_start"]],
        }
    return {
        "text": [str(a["text"]) for a in value],
        "answer_start": [int(a["answer_start"]) for a in value],
    }


def _convert_qa(rows: Iterable[Mapping[str, Any]], prefix: str) -> Iterator[dict[str, Any]]:
    for i, row in enumerate(rows):
        yield {
            "id": str(row.get("id") or f"{prefix}-{i}"),
            "title": str(row.get("title") or ""),
            "context": row["context"],
            "question": row["question"],
            "answers": _answers(row["answers"]),
        }


def _class_names(spec: DatasetSpec, features: Mapping[str, Any]) -> list[str]:
    """The names of the hub's ``label`` ints: its class label's, else the spec's
    documented hub order; refused when a name is not one of ours."""
    names = list(getattr(features.get("label"), "names", None) or spec.hub_labels or spec.labels)
    unknown = sorted(set(names) - set(spec.labels))
    if unknown:
        raise LangarithError(
            f"{spec.name}: the label class names {names} include {unknown}, which are not "
            f"its labels {list(spec.labels)}"
        )
    return names


def _class_id(spec: DatasetSpec, value: Any, names: list[str], where: str) -> int:
    """Our label id of a hub label: an int (through the hub's names) or a name."""
    if isinstance(value, str) and value.strip().lower() in spec.labels:
        return spec.labels.index(value.strip().lower())
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = int(value)
        except ValueError:
            number = -1
        if 0 <= number < len(names):
            return spec.labels.index(names[number])
    raise LangarithError(
        f"{where}: label {value!r} is neither 0..{len(names) - 1} nor one of {list(spec.labels)}"
    )


@dataclass
class RowCounts:
    """Rows a conversion left out, per reason and split, for the manifest."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, reason: str, split: str, n: int = 1) -> None:
        per_split = self.counts.setdefault(reason, {})
        per_split[split] = per_split.get(split, 0) + n


def _marc_text(row: Mapping[str, Any]) -> str:
    """Title and body of a review, in this order, joined by a blank line when both are
    there (task-arithmetic-crosslingual, Appendix B: "the review body and title")."""
    parts = [str(row[k] or "").strip() for k in ("review_title", "review_body")]
    return "\n\n".join(p for p in parts if p)


def marc_label(stars: Any, where: str) -> int | None:
    """Binarised MARC: 1-2 stars negative (0), 4-5 positive (1), 3 dropped (``None``)."""
    try:
        value = int(stars)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 5 or isinstance(stars, bool):
        raise LangarithError(f"{where}: stars {stars!r} is not a whole number from 1 to 5")
    return None if value == 3 else int(value >= 4)


def _convert_sentiment(
    spec: DatasetSpec,
    rows: Iterable[Mapping[str, Any]],
    prefix: str,
    split: str,
    features: Mapping[str, Any],
    dropped: RowCounts,
) -> Iterator[dict[str, Any]]:
    names = [] if spec.name == "marc" else _class_names(spec, features)
    for i, row in enumerate(rows):
        where = f"{prefix} row {i}"
        row_id = str(row.get("review_id") or row.get("id") or f"{prefix}-{i}")
        if spec.name == "marc":
            label = marc_label(row["stars"], where)
            if label is None:
                dropped.add("neutral_3_stars", split)
                continue
            text = _marc_text(row)
        else:
            label, text = _class_id(spec, row["label"], names, where), str(row["text"])
        yield {"id": row_id, "text": text, "label": label}


def _convert(
    spec: DatasetSpec,
    rows: Iterable[Mapping[str, Any]],
    prefix: str,
    features: Mapping[str, Any],
    split: str = "",
    dropped: RowCounts | None = None,
) -> Iterator[dict[str, Any]]:
    if spec.task == "ner":
        return _convert_ner(rows, prefix, _tag_names(features, spec.labels or NER_LABELS))
    if spec.task == "nli":
        names = _label_names(features)
        if names is None and spec.hub_labels:
            names = list(spec.hub_labels)
        return _convert_nli(rows, prefix, names)
    if spec.task == "sentiment":
        return _convert_sentiment(
            spec, rows, prefix, split, features, dropped if dropped is not None else RowCounts()
        )
    return _convert_qa(rows, prefix)


# ------------------------------------------------------------------- exclusions

#: How texts are compared when SMSA rows are matched against NusaX's test set.
NORMALISATION = (
    "NFKC, lower-cased, every Unicode punctuation character (category P*) replaced by a "
    "space, whitespace collapsed"
)


def normalise_text(text: str) -> str:
    """A text as compared for leakage (:data:`NORMALISATION`).

    Punctuation becomes a space rather than nothing, so "bagus,enak" and "bagus, enak"
    match; case, spacing and punctuation edits of a translated copy are thus caught,
    word edits are not.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(spaced.split())


@dataclass
class TextExclusion:
    """The texts of another dataset's test split that must not be trained on.

    NusaX-senti is a translation of SMSA sentences; its Indonesian test set therefore
    reappears in SMSA, verbatim or with small edits. Rows matching it exactly (after
    stripping outer whitespace) or after :func:`normalise_text` are left out of every
    split, and the counts go to the manifest.
    """

    source: str
    exact: frozenset[str]
    normalised: frozenset[str]
    removed: RowCounts = field(default_factory=RowCounts)

    @classmethod
    def from_folder(cls, folder: Path | str) -> TextExclusion:
        folder = Path(folder)
        if not (folder / "manifest.json").is_file():
            raise LangarithError(
                f"exclude_texts_of {folder} is not a prepared data folder (no manifest.json); "
                "prepare it first (e.g. resources/data/nusax/id)"
            )
        manifest = read_manifest(folder)
        if get_spec(str(manifest["dataset"])).task != "sentiment":
            raise LangarithError(f"exclude_texts_of {folder} holds no sentiment texts")
        texts = [str(row["text"]) for row in iter_split(folder, "test")]
        return cls(
            source=f"{manifest['dataset']}/{manifest['language']} test "
            f"(checksum {str(manifest['checksum'])[:12]})",
            exact=frozenset(t.strip() for t in texts),
            normalised=frozenset(normalise_text(t) for t in texts),
        )

    def keep(self, rows: Iterable[Mapping[str, Any]], split: str) -> Iterator[Mapping[str, Any]]:
        for row in rows:
            text = str(row["text"])
            if text.strip() in self.exact:
                self.removed.add("exact", split)
            elif normalise_text(text) in self.normalised:
                self.removed.add("normalised", split)
            else:
                yield row

    def manifest_entry(self) -> dict[str, Any]:
        counts = self.removed.counts
        splits = sorted({s for per in counts.values() for s in per})
        return {
            "against": self.source,
            "normalisation": NORMALISATION,
            "removed": {s: sum(per.get(s, 0) for per in counts.values()) for s in splits},
            "exact": sum((counts.get("exact") or {}).values()),
            "normalised_only": sum((counts.get("normalised") or {}).values()),
        }


# ---------------------------------------------------------- text of local files


def read_text_manifest(path: Path | str, lang: str) -> list[tuple[Path, str]]:
    """The files of a language's local text and their sha256, each checked.

    The manifest is a ``sha256sum`` listing (``<sha256>  <file>`` per line, ``#``
    comments, file names relative to the manifest's folder): what ``sha256sum *.txt >
    SHA256SUMS`` writes. A missing manifest or file, or a changed file, is refused.
    """
    path = Path(path)
    where = f"the local text of {lang!r} (data.text.{lang})"
    if not path.is_file():
        raise LangarithError(
            f"{where}: manifest {path} does not exist; put the language's text files "
            "beside a sha256sum listing of them (sha256sum *.txt > SHA256SUMS) and name it"
        )
    entries: list[tuple[Path, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().removeprefix("*")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest) or not name:
            raise LangarithError(
                f"{path} line {number}: expected '<sha256>  <file>', got {line.strip()!r}"
            )
        entries.append((path.parent / name, digest.lower()))
    if not entries:
        raise LangarithError(f"{where}: manifest {path} lists no files")
    missing = [str(f) for f, _ in entries if not f.is_file()]
    if missing:
        raise LangarithError(f"{where}: file(s) {missing} listed in {path} are missing")
    for file, digest in entries:
        actual = sha256_file(file)
        if actual != digest:
            raise LangarithError(
                f"{where}: {file} has sha256 {actual[:12]}…, not {digest[:12]}… as {path} "
                "says; restore the file or update the manifest"
            )
    return entries


def _text_documents(entries: list[tuple[Path, str]]) -> Iterator[dict[str, str]]:
    """One document per non-empty line, ids ``<file>:<line>``."""
    for file, _ in entries:
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield {"id": f"{file.name}:{number}", "text": line.strip()}


def _load_text(lang: str, options: Mapping[str, Any]) -> _Loaded:
    manifest = Path(options["text_manifest"])
    entries = read_text_manifest(manifest, lang)
    listing = "".join(f"{d}  {f.name}\n" for f, d in entries)
    return _Loaded(
        splits={"train": _text_documents(entries)},
        source=f"text:{manifest}",
        revision="sha256:" + hashlib.sha256(listing.encode("utf-8")).hexdigest(),
    )


# --------------------------------------------------------------------- wikipedia

_TOKEN = re.compile(r"\S+")


def truncate_tokens(text: str, n: int) -> str:
    """The first ``n`` whitespace tokens of ``text``, with the original spacing kept."""
    end = 0
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        end = match.end()
        if count == n:
            break
    return text[:end]


def _in_fraction(doc_id: str, fraction: float) -> bool:
    """A stable coin flip per document id, so the held-out set never depends on order."""
    value = int(hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return value < fraction


class _WikipediaSplitter:
    """Cut one stream of documents into a held-out validation set and a train budget.

    ``validation_docs`` holds out the first N documents, so the validation set is the
    same whatever the training budget (the data-size study compares budgets on one
    held-out set). ``validation_fraction`` instead holds out each document whose id
    hashes below the fraction. Train takes the remaining documents in order until
    ``max_train_tokens`` whitespace tokens; the last one is cut to fit exactly.

    :meth:`events` can start part-way (a resumed download): the counters of the
    shards already written come in a :class:`ResumePoint`, so the budget, the held-out
    count and the fallback document ids continue where they stopped.
    """

    def __init__(self, options: Mapping[str, Any]):
        self._budget = _positive_int(options, "max_train_tokens")
        self._min_chars = _positive_int(options, "min_chars", minimum=0) or 0
        self._n_val = _positive_int(options, "validation_docs", minimum=0)
        fraction = options.get("validation_fraction")
        if fraction is not None and self._n_val is not None:
            raise LangarithError("Give either validation_docs or validation_fraction, not both")
        if fraction is not None and (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not 0 < fraction < 1
        ):
            raise LangarithError(f"validation_fraction must be in (0, 1), got {fraction!r}")
        if fraction is None and self._n_val is None:
            self._n_val = DEFAULT_VALIDATION_DOCS
        self._fraction = fraction

    def events(self, rows: Iterable[Mapping[str, Any]], start: ResumePoint) -> Iterator[Event]:
        """``(split, document, source rows read)`` from ``start`` on; ``rows`` must
        already skip the ``start.source_rows`` rows read before."""
        held_left = max(0, (self._n_val or 0) - start.validation_rows)
        n_validation = start.validation_rows
        train_tokens = start.train_tokens
        for i, row in enumerate(rows, start=start.source_rows):
            text = row.get("text") or ""
            if not text.strip() or len(text) < self._min_chars:
                continue
            doc = {"id": str(row.get("id") or i), "text": text}
            if held_left or (
                self._fraction is not None and _in_fraction(doc["id"], self._fraction)
            ):
                held_left = max(0, held_left - 1)
                n_validation += 1
                yield "validation", doc, i + 1
                continue
            n = len(text.split())
            if self._budget is not None:
                left = self._budget - train_tokens
                if left <= 0:
                    break
                if n > left:
                    doc = {"id": doc["id"], "text": truncate_tokens(text, left)}
                    n = left
            train_tokens += n
            yield "train", doc, i + 1
        self._check_end(train_tokens, n_validation)

    def _check_end(self, train_tokens: int, n_validation: int) -> None:
        if train_tokens == 0:
            raise LangarithError(
                "No Wikipedia training text is left after holding out the validation "
                "documents; lower validation_docs or give more data"
            )
        if n_validation == 0:
            raise LangarithError(
                "The Wikipedia validation split is empty; set validation_docs (the first "
                "N documents are held out) instead of a validation_fraction this small"
            )
        if self._budget is not None and train_tokens < self._budget:
            log.warning(
                "Wikipedia has only %d training tokens, less than max_train_tokens=%d",
                train_tokens,
                self._budget,
            )


def _skip_rows(rows: Iterable[Mapping[str, Any]], n: int) -> Iterable[Mapping[str, Any]]:
    """``rows`` without its first ``n``: ``datasets`` objects skip by count themselves
    (a map-style dataset without reading them), other iterables are advanced."""
    if n == 0:
        return rows
    skip = getattr(rows, "skip", None)
    if callable(skip):
        return skip(n)
    return itertools.islice(rows, n, None)


def _write_wikipedia(
    spec: DatasetSpec, lang: str, out_dir: Path, loaded: _Loaded, options: Mapping[str, Any]
) -> Path:
    """Write Wikipedia in resumable train shards (``langarith.data.shards``)."""
    splitter = _WikipediaSplitter(options)
    shard_docs = _positive_int(options, "shard_docs") or DEFAULT_SHARD_DOCS
    provenance = {k: v for k, v in options.items() if k not in ("cache_dir", "streaming")}
    key = request_key(
        {
            "dataset": spec.name,
            "language": lang,
            "source": loaded.source,
            "revision": loaded.revision,
            "options": provenance,
            "shard_docs": shard_docs,
        }
    )
    return write_sharded_corpus(
        out_dir,
        lambda start: splitter.events(_skip_rows(loaded.splits["train"], start.source_rows), start),
        key=key,
        shard_docs=shard_docs,
        check=lambda split, row, n: check_row(spec, row, f"{spec.name}/{lang} {split} row {n}"),
        manifest=lambda entries: build_manifest(
            spec.name,
            lang,
            entries,
            source=loaded.source,
            revision=loaded.revision,
            options=options,
        ),
        desc=f"{spec.name}/{lang} train",
    )


# ------------------------------------------------------------------------- entry


def _our_splits(
    spec: DatasetSpec,
    lang: str,
    loaded: _Loaded,
    options: Mapping[str, Any],
    exclusion: TextExclusion | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Iterable[Mapping[str, Any]]]:
    """Map the hub's splits onto ours, converting rows (lazily where possible).

    Rows a conversion leaves out (MARC's 3-star reviews) are counted in
    ``extra["dropped"]`` while the splits are consumed.
    """
    extra = {} if extra is None else extra
    splits: dict[str, Iterable[Mapping[str, Any]]]
    dropped = RowCounts()
    if spec.name == "xquad":
        # The hub has one split; the papers cut it 50/50 by order (ceil to validation).
        rows = list(loaded.splits["validation"])
        half = len(rows) - len(rows) // 2
        splits = {
            "validation": _convert(spec, rows[:half], f"{lang}-validation", loaded.features),
            "test": _convert(spec, rows[half:], f"{lang}-test", loaded.features),
        }
    elif spec.name == "tydiqa":
        splits = {"test": _tydiqa_test(spec, lang, loaded)}
    else:
        splits = {
            s: _convert(spec, loaded.splits[s], f"{lang}-{s}", loaded.features, s, dropped)
            for s in spec.splits
        }
    if exclusion is not None:
        splits = {s: exclusion.keep(rows, s) for s, rows in splits.items()}
    if spec.name == "marc":
        extra["dropped"] = lambda: dropped.counts  # read once the rows are written
    max_rows = _positive_int(options, "max_rows")
    if max_rows is not None:
        splits = {s: itertools.islice(rows, max_rows) for s, rows in splits.items()}
    return splits


# --------------------------------------------------------------------- UD treebanks


def _prepare_ud(spec: DatasetSpec, lang: str, out_dir: Path, options: Mapping[str, Any]) -> Path:
    """A UD treebank (:mod:`langarith.data.ud`): local CoNLL-U files, else the hub's
    parquet export of the treebank's config; rows streamed into :func:`write_dataset`."""
    treebank, hub_splits = UD_TREEBANKS[lang]
    streams: dict[str, Iterable[Mapping[str, Any]]]
    if "local_path" in options:
        files = local_conllu_files(options["local_path"], treebank)
        digest = hashlib.sha256()
        for split in sorted(files):
            for path in files[split]:
                digest.update(f"{split} {path.name} {sha256_file(path)}\n".encode())
        source = f"local:{options['local_path']}"
        revision = str(options.get("revision") or f"sha256:{digest.hexdigest()}")
        streams = rows_from_local(files, lang)
    else:
        loaded = _load_hub(replace(spec, hub_splits=hub_splits), treebank, options)
        source, revision = loaded.source, loaded.revision
        streams = {
            s: rows_from_hub(loaded.splits[s], f"{lang}-{s}", f"{source} {s}")
            if s in hub_splits
            else iter(())
            for s in spec.splits
        }
    max_rows = _positive_int(options, "max_rows")
    if max_rows is not None:
        streams = {s: itertools.islice(rows, max_rows) for s, rows in streams.items()}
    try:
        return write_dataset(
            out_dir, spec.name, lang, streams, source=source, revision=revision, options=options
        )
    except (KeyError, OSError, ValueError) as err:
        raise LangarithError(
            f"Reading UD treebank {treebank} for {lang!r} from {source} failed: "
            f"{type(err).__name__}: {err}. Local files must be CoNLL-U; hub rows need "
            "tokens, head and deprel."
        ) from err


def _tydiqa_test(spec: DatasetSpec, lang: str, loaded: _Loaded) -> Iterator[dict[str, Any]]:
    """TyDiQA-GoldP's rows of ``lang``: its validation file holds every language, each
    row's ``id`` starting with the language's name (``swahili-…``). The whole validation
    set of the language is our test split (GoldP has no test split; the TLR paper scores
    it whole). Already SQuAD's format: ``_convert_qa`` makes the answers lists."""
    prefix = f"{TYDIQA_NAMES[lang]}-"
    rows = (r for r in loaded.splits["validation"] if str(r.get("id") or "").startswith(prefix))
    count = 0
    for row in _convert(spec, rows, f"{lang}-test", loaded.features):
        count += 1
        yield row
    if not count:
        raise LangarithError(
            f"TyDiQA-GoldP from {loaded.source} has no validation rows of {lang!r} (ids "
            f"starting with {prefix!r}); give the hub's secondary_task files, whose ids "
            "name their language."
        )


def prepare_real_dataset(
    dataset: str, lang: str, out_dir: Path | str, *, options: Mapping[str, Any] | None = None
) -> Path:
    """Download (or read locally) one dataset for one language and write our format.

    Args:
        dataset: a key of :data:`langarith.data.DATASETS`.
        lang: language code; one the dataset lacks raises ``UncoveredLanguageError``.
        out_dir: the folder to write (atomically), e.g. ``resources/data/xnli/de``.
        options: all optional (``None`` means default):

            * ``revision``: hub revision (branch, tag or commit) to pin.
            * ``local_path``: read local files instead of the hub: a folder with
              ``<split>.jsonl|json|parquet`` (or ``<split>-*.parquet``, optionally under
              the hub config's subfolder, or a ``save_to_disk`` folder), one file for a
              dataset with a single hub split, or a mapping ``{split: file(s)}``. Columns
              are the hub's (e.g. WikiANN ``ner_tags`` as ints).
            * ``cache_dir``: datasets cache folder (default: the ``HF_HOME`` cache).
            * ``hub_path``: another hub repository with the same layout, or a local
              folder laid out like the repository (a mirror: ``README.md`` with the
              repository's configs and its parquet files), read by the same
              ``datasets.load_dataset`` call.
            * ``streaming``: stream from the hub instead of downloading everything
              (default: on for Wikipedia unless offline, where only a cache or a
              local mirror can serve).
            * ``max_rows`` (tasks): keep at most this many rows per written split.
            * Wikipedia: ``dump`` (default ``20231101``), ``validation_docs`` (first N
              documents held out, default 1000) or ``validation_fraction`` (documents
              held out by a hash of their id), ``max_train_tokens`` (whitespace-token
              budget of train, the last document cut to fit; default all),
              ``min_chars`` (skip shorter documents, default 0), ``shard_docs``
              (train documents per shard, default 50,000; see
              :mod:`langarith.data.shards`: a killed download resumes from its last
              finished shard); ``text_manifest``: the language's own text instead of
              its Wikipedia, a ``sha256sum`` listing of local text files (one document
              per line; :func:`read_text_manifest`), for languages without a Wikipedia.
            * SMSA: ``exclude_texts_of``: a prepared folder (NusaX-senti Indonesian)
              whose test texts are left out of every split, exactly or after
              :func:`normalise_text`; the counts go to the manifest (``excluded``).

    MARC is binarised on the way (:func:`marc_label`); its dropped 3-star reviews are
    counted in the manifest (``dropped``).

    With ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set and no cached or local copy the
    call fails at once with a ``LangarithError`` that says how to fetch the data.
    """
    options = _check_options(dataset, dict(options or {}))
    if dataset == "wikipedia" and "text_manifest" in options:
        # A language's own text instead of its Wikipedia (any language code).
        spec = get_spec(dataset)
        loaded = _load_text(lang, options)
        return _write_wikipedia(spec, lang, Path(out_dir), loaded, options)
    spec = require_coverage(dataset, lang)
    if spec.task == "dp":
        return _prepare_ud(spec, lang, Path(out_dir), options)
    exclusion = None
    if options.get("exclude_texts_of"):
        exclusion = TextExclusion.from_folder(options["exclude_texts_of"])
    elif spec.exclude_test_of:
        log.warning(
            "%s/%s: prepared without exclude_texts_of, so rows that repeat the %s/%s test set "
            "are kept (the workflow always passes it)",
            dataset,
            lang,
            *spec.exclude_test_of,
        )
    if "local_path" in options:
        loaded = _load_local(spec, lang, options)
        if spec.name == "wikipedia":  # the dump date first, as for the hub
            loaded.revision = f"{options.get('dump', DEFAULT_WIKIPEDIA_DUMP)}@{loaded.revision}"
    else:
        loaded = _load_hub(spec, lang, options)

    try:
        if spec.name == "wikipedia":
            return _write_wikipedia(spec, lang, Path(out_dir), loaded, options)
        extra: dict[str, Any] = {}
        if exclusion is not None:
            extra["excluded"] = exclusion.manifest_entry  # filled once the rows are written
        return write_dataset(
            out_dir,
            dataset,
            lang,
            _our_splits(spec, lang, loaded, options, exclusion, extra),
            source=loaded.source,
            revision=loaded.revision,
            options=options,
            extra=extra,
        )
    except KeyError as err:
        raise LangarithError(
            f"A row of {spec.name!r} from {loaded.source} has no column {err}; local files "
            f"must use the hub's column names: {list(HUB_COLUMNS[spec.task])}"
        ) from err
    except (OSError, ValueError) as err:
        # Rows are read lazily while writing: broken local files or a dropped
        # connection surface here.
        hint = (
            "Check that local_path holds the hub's format."
            if "local_path" in options
            else _fetch_help(spec, lang, loaded.source)
        )
        if spec.name == "wikipedia":
            hint += (
                " The shards finished so far are kept: rerunning the same command resumes "
                "after them."
            )
        raise LangarithError(
            f"Reading {spec.name!r} for {lang!r} from {loaded.source} failed: "
            f"{type(err).__name__}: {err}. {hint}"
        ) from err
