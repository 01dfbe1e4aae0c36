"""Related languages through URIEL: which adapter to merge with a target language.

The papers pick, for every target language, the "related" language from the pool of
languages that have an adapter, by querying URIEL through lang2vec. lang2vec from PyPI
does not ship URIEL's precomputed distance files, so ``lang2vec.distance()`` fails
offline; its feature files are shipped, and this module computes the distances from
them. It reads the ``.npz`` files of the installed ``lang2vec`` package directly (same
files, sources and feature prefixes as ``lang2vec.get_features``), because
``import lang2vec.lang2vec`` alone takes about 2 s and ``get_features(..., "fam")``
about 3.4 s per call (it looks up each of the 3718 family names one by one), while
loading the arrays once takes about 1.4 s. The tables are cached in-process and, in a
compact exact form, on disk (:data:`CACHE_ENV`; about 0.05 s to read), because every
``snakemake`` run plans the related languages again.

Distance
--------
``language_distance(a, b)`` is the mean of three URIEL distances, each in [0, 1]::

    d(a, b) = (d_genetic + d_geographic + d_featural) / 3

* **genetic**: cosine distance between the binary Glottolog lineage vectors (``fam``:
  one feature per family node the language descends from), i.e. ``1 - shared nodes /
  sqrt(nodes_a * nodes_b)``; 1 when a language has no lineage (isolates such as eu).
  The cosine (rather than ``1 - shared / max``) does not punish languages whose
  Glottolog branch is coded more deeply (Romance languages have 9-12 nodes, Slavic
  4-6), which otherwise made de pick bg over fr.
* **geographic**: ``max_k |geo_a[k] - geo_b[k]|`` over the 299 ``geo`` features. Each
  ``geo`` value is the orthodromic distance from the language to a fixed point on the
  globe divided by the antipodal distance (checked: the values fit a single point
  within 0.005). By the triangle inequality the maximum difference is a lower bound of,
  and with 299 points close to, the orthodromic distance between the two languages
  divided by the antipodal distance, which is how URIEL defines geographic distance.
* **featural**: cosine distance between the kNN-imputed typological vectors, the
  concatenation of ``syntax_knn`` (103), ``phonology_knn`` (28) and ``inventory_knn``
  (158) features; the imputed sets have no missing values for any language.

A target never picks itself (nor another code for the same ISO 639-3 language); ties
are broken by the language code, so picks are deterministic.

How it was chosen, and how well it matches the papers
-----------------------------------------------------
Candidates were unweighted means of subsets of: genetic (cosine / ``1 - shared/max`` /
Jaccard), geographic (as above, or cosine of ``geo``), and cosine or normalised Hamming
distances of the syntax, phonology and inventory kNN sets (separately or concatenated).
Scored on the ACL paper's 13-language pool (Appendix A, Table 2), the best unweighted
means of cosine distances match **9 of 13** pairs; reaching 10 needed ad-hoc mixtures
that count the inventory features twice (cosine and Hamming) and pick e.g. vi -> ur,
so we kept the simplest 9-match definition, which also matches the ECAI list best.

* ACL list (pool = ar bg de el es fr hi ru sw tr ur vi zh): **9/13** match. Ours vs the
  paper: ar -> el (paper sw), el -> bg (paper es), vi -> zh (paper ru), zh -> vi
  (paper ar). No pool language shares a family with vi or zh, and the paper's ru
  and ar are not the nearest in any single geographic, syntax, phonology or
  inventory distance either.
* ECAI list (pool adds fa, it; Appendix B, Table 5, which the paper describes as a
  trade-off between relatedness and available adapters, not a URIEL query): **10/13**
  match. Ours vs the paper: el -> bg (paper de), fr -> es (paper it), tr -> bg
  (paper de). Table 5 publishes all 13 pairs: its second block (ru..zh) is the last
  line of the seed text, without a final newline.

Both counts are computed, not copied: :func:`agreement_summary` on these pools, checked
by ``tests/test_related.py``. The papers' setups (``config/config.yaml``,
``config/ecai.yaml``) use the papers' pairs through ``related.overrides``; the table
keeps the URIEL pick beside them (column ``uriel``).

Codes
-----
Language codes are ISO 639-1 as in the papers; ``iso3`` maps them to the ISO 639-3
code URIEL has data for. For macrolanguages lang2vec's own table points to codes with
shallow or mixed data (``ara``, ``zho``, ``fas``, ``swa``, ``msa``), so the standard
individual language is used: ar -> arb (Standard Arabic), zh -> cmn (Mandarin),
fa -> pes (Iranian Persian), sw -> swh (Swahili), ms -> zsm (Standard Malay). Where
the individual code has no Glottolog lineage in URIEL the macrolanguage is kept:
et -> est, lv -> lav, no/nb -> nor. ISO 639-3 codes URIEL has data for are accepted
as they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.resources
import logging
import os
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from langarith import LangarithError
from langarith import languages as language_codes
from langarith.io import OutputKind, atomic_file, check_replaceable

__all__ = [
    "ISO639_1_TO_3",
    "RelatedPick",
    "agreement_summary",
    "distance_matrix",
    "iso3",
    "language_distance",
    "paper_related_languages",
    "pick_related",
    "register_cli",
    "related_table_kind",
    "write_related_table",
]

log = logging.getLogger(__name__)

#: ISO 639-1 -> the ISO 639-3 code used for the URIEL lookup (see the module docstring
#: for the macrolanguage choices). Every entry has Glottolog, geographic and kNN
#: typological data in lang2vec (eu, an isolate, has no lineage); a test checks it.
ISO639_1_TO_3: dict[str, str] = {
    "af": "afr", "am": "amh", "ar": "arb", "as": "asm", "az": "azj", "be": "bel",
    "bg": "bul", "bn": "ben", "bs": "bos", "ca": "cat", "cs": "ces", "cy": "cym",
    "da": "dan", "de": "deu", "el": "ell", "en": "eng", "eo": "epo", "es": "spa",
    "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "fy": "fry",
    "ga": "gle", "gd": "gla", "gl": "glg", "gu": "guj", "ha": "hau", "he": "heb",
    "hi": "hin", "hr": "hrv", "hu": "hun", "hy": "hye", "id": "ind", "ig": "ibo",
    "is": "isl", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
    "km": "khm", "kn": "kan", "ko": "kor", "ku": "kmr", "ky": "kir", "la": "lat",
    "lb": "ltz", "lo": "lao", "lt": "lit", "lv": "lav", "mg": "plt", "mk": "mkd",
    "ml": "mal", "mn": "khk", "mr": "mar", "ms": "zsm", "mt": "mlt", "my": "mya",
    "nb": "nor", "ne": "npi", "nl": "nld", "no": "nor", "or": "ory", "pa": "pan",
    "pl": "pol", "ps": "pbu", "pt": "por", "qu": "quy", "ro": "ron", "ru": "rus",
    "sa": "san", "sd": "snd", "si": "sin", "sk": "slk", "sl": "slv", "so": "som",
    "sq": "als", "sr": "srp", "su": "sun", "sv": "swe", "sw": "swh", "ta": "tam",
    "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "tt": "tat", "ug": "uig",
    "uk": "ukr", "ur": "urd", "uz": "uzn", "vi": "vie", "xh": "xho", "yi": "ydd",
    "yo": "yor", "zh": "cmn", "zu": "zul",
}  # fmt: skip

#: (file in lang2vec/data, source, feature-name prefix), as lang2vec defines its sets.
_FEATURE_FILES = {
    "fam": ("family_features.npz", "FAM", "F_"),
    "geo": ("geocoord_features.npz", "GEOCOORDS", "GC_"),
    "syntax_knn": ("feature_predictions.npz", "predicted", "S_"),
    "phonology_knn": ("feature_predictions.npz", "predicted", "P_"),
    "inventory_knn": ("feature_predictions.npz", "predicted", "INV_"),
}
_FEATURAL_SETS = ("syntax_knn", "phonology_knn", "inventory_knn")
_PAPERS = ("acl", "ecai")
TABLE_COLUMNS = (
    "target",
    "related",
    "distance",
    "overridden",
    "uriel",
    "paper_acl",
    "agrees_acl",
    "paper_ecai",
    "agrees_ecai",
)


# --------------------------------------------------------------------------- URIEL data
@dataclasses.dataclass(frozen=True)
class _Uriel:
    """The three feature tables, indexed by ISO 639-3 code (one row per language)."""

    index: dict[str, int]
    lineage: np.ndarray  # (n_langs, n_family_nodes) bool
    geo: np.ndarray  # (n_langs, 299) float64, -1 = missing
    featural: np.ndarray  # (n_langs, 289) float64, -1 = missing


def _select(path: Path, source: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Languages and the (languages x features) slice of one lang2vec ``.npz`` file."""
    with np.load(path) as db:
        sources = list(db["sources"])
        feats = db["feats"]
        columns = np.flatnonzero(np.char.startswith(feats.astype(str), prefix))
        data = db["data"][:, columns, sources.index(source)]
        return db["langs"].astype(str), data


def _lang2vec_data_dir() -> Path:
    """The ``data`` folder of the installed lang2vec package, found without importing it.

    ``import lang2vec`` is unsafe here: lang2vec also installs a script
    ``<venv>/bin/lang2vec.py``, which shadows the package whenever ``bin`` is first on
    ``sys.path`` (as for the ``langarith`` console script).
    """
    candidates = []
    try:
        dist = importlib.metadata.distribution("lang2vec")
        candidates.append(Path(str(dist.locate_file("lang2vec/data"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    candidates += [Path(entry or ".") / "lang2vec" / "data" for entry in sys.path]
    for candidate in candidates:
        if (candidate / "family_features.npz").is_file():
            return candidate
    raise LangarithError(
        "lang2vec's feature files (lang2vec/data/*.npz) were not found; "
        "install lang2vec>=1.1 in this environment (pip install lang2vec)"
    )


def _read_lang2vec(data_dir: Path) -> _Uriel:
    """The three tables from lang2vec's own ``.npz`` files (about 1.4 s, mostly ``fam``)."""
    tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (filename, source, prefix) in _FEATURE_FILES.items():
        tables[name] = _select(data_dir / filename, source, prefix)
    langs = tables["fam"][0]
    index = {code: i for i, code in enumerate(langs)}

    def aligned(name: str) -> np.ndarray:
        other, values = tables[name]
        if np.array_equal(other, langs):
            return values.astype(np.float64)
        order = np.array([index[c] for c in other])  # same languages, other order
        out = np.full((len(langs), values.shape[1]), -1.0)
        out[order] = values
        return out

    return _Uriel(
        index=index,
        lineage=tables["fam"][1] == 1.0,
        geo=aligned("geo"),
        featural=np.concatenate([aligned(name) for name in _FEATURAL_SETS], axis=1),
    )


# ------------------------------------------------------------------ the on-disk cache
#: Environment variable naming the folder of the URIEL cache; empty turns the cache
#: off. Default: ``$XDG_CACHE_HOME/langarith``, else ``~/.cache/langarith``.
CACHE_ENV = "LANGARITH_CACHE_DIR"
#: Bump when the cached arrays change meaning; old files are then simply not used.
_CACHE_FORMAT = 1


def _cache_dir() -> Path | None:
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value) if value.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "langarith"


def _cache_key(data_dir: Path) -> str:
    """Names the lang2vec files the tables come from (size and mtime) and how they are cut.

    A reinstalled or upgraded lang2vec, or another selection here, gives another key,
    so a cache never outlives its source.
    """
    parts = [f"format {_CACHE_FORMAT}", repr(sorted(_FEATURE_FILES.items())), repr(_FEATURAL_SETS)]
    for filename in sorted({spec[0] for spec in _FEATURE_FILES.values()}):
        stat = (data_dir / filename).stat()
        parts.append(f"{filename} {stat.st_size} {stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _exact_compact(values: np.ndarray) -> np.ndarray:
    """The smallest of int8 / float32 that holds ``values`` exactly (else float64).

    The featural table is 0/1 and the geographic one float32 data widened by lang2vec,
    so the cache file is about a tenth of the float64 tables and reads back bit-equal.
    """
    for dtype in (np.int8, np.float32):
        small = values.astype(dtype)
        if np.array_equal(small.astype(np.float64), values):
            return small
    return values


def _write_cache(path: Path, key: str, uriel: _Uriel) -> None:
    """Store ``uriel`` under ``path`` (lineage as sparse rows, tables compacted)."""
    rows, columns = np.nonzero(uriel.lineage)
    arrays = {
        "key": np.array(key),
        "langs": np.array(list(uriel.index)),
        "lineage_counts": np.bincount(rows, minlength=uriel.lineage.shape[0]).astype(np.int32),
        "lineage_columns": columns.astype(np.int32),
        "lineage_width": np.array(uriel.lineage.shape[1]),
        "geo": _exact_compact(uriel.geo),
        "featural": _exact_compact(uriel.featural),
    }
    with atomic_file(path, "wb") as handle:
        np.savez(handle, **arrays)


def _read_cache(path: Path, key: str) -> _Uriel:
    """The tables stored by :func:`_write_cache`; raises if the file is not one of its."""
    with np.load(path, allow_pickle=False) as db:
        if str(db["key"]) != key:
            raise ValueError("written for other lang2vec files")
        langs = db["langs"].tolist()
        counts = db["lineage_counts"]
        lineage = np.zeros((len(langs), int(db["lineage_width"])), dtype=bool)
        lineage[np.repeat(np.arange(len(langs)), counts), db["lineage_columns"]] = True
        geo = db["geo"].astype(np.float64)
        featural = db["featural"].astype(np.float64)
    if not (len(counts) == geo.shape[0] == featural.shape[0] == len(langs)):
        raise ValueError("tables of different lengths")
    return _Uriel({code: i for i, code in enumerate(langs)}, lineage, geo, featural)


@functools.lru_cache(maxsize=1)
def _uriel() -> _Uriel:
    """The URIEL tables, once per process: from the cache when it is there and current.

    A cache that cannot be read (missing, damaged, from other lang2vec files) is
    rebuilt from lang2vec; one that cannot be written (read-only home, full disk) is
    skipped. Either way the tables are lang2vec's.
    """
    start = time.perf_counter()
    data_dir = _lang2vec_data_dir()
    key = _cache_key(data_dir)
    folder = _cache_dir()
    path = None if folder is None else folder / f"uriel-{key}.npz"
    if path is not None and path.is_file():
        try:
            uriel = _read_cache(path, key)
        except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile) as err:
            log.debug("URIEL cache %s not used (%s); reading lang2vec", path, err)
        else:
            log.debug("read URIEL from %s in %.2fs", path, time.perf_counter() - start)
            return uriel
    uriel = _read_lang2vec(data_dir)
    if path is not None:
        try:
            _write_cache(path, key, uriel)
        except (OSError, LangarithError) as err:
            log.debug("URIEL cache %s not written (%s)", path, err)
    log.debug(
        "loaded URIEL features for %d languages in %.2fs",
        len(uriel.index),
        time.perf_counter() - start,
    )
    return uriel


def _has_data(code: str) -> bool:
    uriel = _uriel()
    row = uriel.index.get(code)
    if row is None:
        return False
    return bool((uriel.geo[row] >= 0).all() and (uriel.featural[row] >= 0).all())


def iso3(lang: str) -> str:
    """ISO 639-3 code used to look ``lang`` up in URIEL.

    Accepts the ISO 639-1 codes of :data:`ISO639_1_TO_3` (the project's codes), any
    other ISO 639-1 code whose ISO 639-3 code URIEL has data for (``ay`` -> ``aym``), and
    the ISO 639-3 code of a language without a 639-1 code (``ace``, ``pcm``) that URIEL
    has data for. A three-letter code of a language with a two-letter one (``eng``) is
    refused with the code to write, as the config check does (:mod:`langarith.languages`).
    """
    if not isinstance(lang, str):
        raise LangarithError(f"language code must be a string, got {lang!r}")
    code = lang.strip().lower()
    if code in ISO639_1_TO_3:
        return ISO639_1_TO_3[code]
    two = language_codes.two_letter_for(code)
    if two:
        raise LangarithError(
            f"language code {lang!r} has the ISO 639-1 code {two!r}; write {two!r}"
        )
    if code in language_codes.ISO_639_1 and _has_data(language_codes.three_letter_of(code)):
        return language_codes.three_letter_of(code)
    if len(code) == 3 and _has_data(code):
        return code
    known = ", ".join(sorted(ISO639_1_TO_3))
    raise LangarithError(
        f"unknown language code {lang!r}: use an ISO 639-1 code among {known} "
        "(or an ISO 639-3 code that URIEL has data for)"
    )


def _cosine_distance(u: np.ndarray, v: np.ndarray) -> float:
    norm = float(np.linalg.norm(u) * np.linalg.norm(v))
    if norm == 0.0:
        return 1.0
    return float(min(1.0, max(0.0, 1.0 - float(u @ v) / norm)))


@functools.lru_cache(maxsize=65536)
def _distance3(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if b < a:  # cache one orientation; the distance is symmetric
        return _distance3(b, a)
    uriel = _uriel()
    i, j = uriel.index[a], uriel.index[b]
    genetic = _cosine_distance(
        uriel.lineage[i].astype(np.float64), uriel.lineage[j].astype(np.float64)
    )
    geographic = float(np.abs(uriel.geo[i] - uriel.geo[j]).max())
    featural = _cosine_distance(uriel.featural[i], uriel.featural[j])
    return (genetic + geographic + featural) / 3.0


def language_distance(a: str, b: str) -> float:
    """URIEL distance in [0, 1] between two languages (definition: module docstring)."""
    return _distance3(iso3(a), iso3(b))


def distance_matrix(langs: Sequence[str]) -> pd.DataFrame:
    """Symmetric table of :func:`language_distance`, rows and columns in ``langs`` order."""
    langs = list(langs)
    codes = [iso3(lang) for lang in langs]
    values = [[_distance3(a, b) for b in codes] for a in codes]
    return pd.DataFrame(values, index=langs, columns=langs, dtype=float)


# ------------------------------------------------------------------------------ picks
@functools.lru_cache(maxsize=1)
def _paper_lists() -> dict[str, dict[str, str]]:
    path = importlib.resources.files("langarith") / "resources" / "paper_related_languages.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {paper: dict(data[paper]["related"]) for paper in _PAPERS}


def paper_related_languages() -> dict[str, dict[str, str]]:
    """The papers' target -> related lists: ``{"acl": {...}, "ecai": {...}}``.

    Read once from the package data file ``resources/paper_related_languages.yaml``,
    which also records the pools and the tables they come from; callers get a copy.
    """
    return {paper: dict(pairs) for paper, pairs in _paper_lists().items()}


@dataclasses.dataclass(frozen=True)
class RelatedPick:
    """The related language chosen for one target, with the papers' choices beside it.

    ``related`` is what the runs use (an override when the config gives one); ``uriel``
    is the URIEL pick either way, so a setup that uses a paper's pairs still reports
    which language URIEL would have chosen.
    """

    target: str
    related: str
    distance: float
    overridden: bool
    paper_acl: str | None
    paper_ecai: str | None
    uriel: str = ""

    @property
    def agrees_acl(self) -> bool | None:
        return None if self.paper_acl is None else self.related == self.paper_acl

    @property
    def agrees_ecai(self) -> bool | None:
        return None if self.paper_ecai is None else self.related == self.paper_ecai


def _normalise(langs: Iterable[str], what: str) -> list[str]:
    """Lower-cased, de-duplicated codes in input order, each checked by :func:`iso3`."""
    if isinstance(langs, str):
        raise LangarithError(f"{what} must be a list of language codes, got the string {langs!r}")
    out: list[str] = []
    for lang in langs:
        iso3(lang)
        code = lang.strip().lower()
        if code not in out:
            out.append(code)
    if not out:
        raise LangarithError(f"{what} is empty: give at least one language code")
    return out


def pick_related(
    targets: Iterable[str],
    pool: Iterable[str],
    overrides: Mapping[str, str] | None = None,
) -> list[RelatedPick]:
    """For each target, the closest pool language other than itself.

    ``overrides`` (target -> related) replaces the URIEL pick, e.g. to reproduce a
    paper's pairs; the replacement must be in the pool and differ from the target,
    and the pick is marked ``overridden``. Its distance is still the URIEL distance.
    """
    target_list = _normalise(targets, "targets")
    pool_list = _normalise(pool, "pool")
    fixed: dict[str, str] = {}
    for key, value in (overrides or {}).items():
        target, related = key.strip().lower(), str(value).strip().lower()
        if target not in target_list:
            raise LangarithError(
                f"override for {key!r}, which is not a target; targets: {', '.join(target_list)}"
            )
        if related not in pool_list:
            raise LangarithError(
                f"override {key}={value}: {value!r} is not in the pool; "
                f"pool: {', '.join(pool_list)}"
            )
        if iso3(related) == iso3(target):
            raise LangarithError(
                f"override {key}={value}: a language cannot be its own related language"
            )
        fixed[target] = related

    papers = paper_related_languages()
    picks = []
    for target in target_list:
        code = iso3(target)
        candidates = [lang for lang in pool_list if iso3(lang) != code]
        if not candidates:
            raise LangarithError(
                f"no related language for {target!r}: the pool ({', '.join(pool_list)}) "
                "holds no other language"
            )
        uriel = min(candidates, key=lambda lang: (_distance3(code, iso3(lang)), lang))
        related, overridden = (fixed[target], True) if target in fixed else (uriel, False)
        picks.append(
            RelatedPick(
                target=target,
                related=related,
                distance=_distance3(code, iso3(related)),
                overridden=overridden,
                paper_acl=papers["acl"].get(target),
                paper_ecai=papers["ecai"].get(target),
                uriel=uriel,
            )
        )
    return picks


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def related_table_kind() -> OutputKind:
    """The TSV as an output: an earlier one is recognised by its header line."""
    return OutputKind("related-languages table", is_dir=False, header="\t".join(TABLE_COLUMNS))


def write_related_table(picks: Sequence[RelatedPick], path: Path | str) -> Path:
    """Write the picks as a TSV (columns :data:`TABLE_COLUMNS`), atomically.

    Booleans are ``true``/``false``; a paper column and its ``agrees_`` column are
    empty for targets the paper does not list. ``related`` is the language the runs
    use, ``uriel`` the URIEL pick (they differ only where an override replaced it).
    ``path`` may replace only a missing path or an earlier table
    (:func:`langarith.io.check_replaceable`).
    """
    path = Path(path)
    lines = ["\t".join(TABLE_COLUMNS)]
    for pick in picks:
        row = [
            pick.target,
            pick.related,
            pick.distance,
            pick.overridden,
            pick.uriel,
            pick.paper_acl,
            pick.agrees_acl,
            pick.paper_ecai,
            pick.agrees_ecai,
        ]
        lines.append("\t".join(_cell(value) for value in row))
    with atomic_file(path, "w", related_table_kind()) as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def read_related_frame(path: str | PathLike[str]) -> pd.DataFrame:
    """The table :func:`write_related_table` wrote, booleans parsed (``true``/``false``).

    The one reader of ``results/related_languages.tsv``: the λ jobs check their planned
    partner against it and the report renders it, so both must read it the same way.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise LangarithError(
            f"Related-language table {path} does not exist; run the related_languages rule first"
        ) from None
    except pd.errors.EmptyDataError:
        raise LangarithError(f"Related-language table {path} is empty") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("target", "related") if c not in frame.columns]
    if missing:
        raise LangarithError(
            f"Related-language table {path} lacks the column(s) {missing}; it has "
            f"{list(frame.columns)}. Expected target, related, distance, overridden, "
            "uriel, paper_acl, agrees_acl, paper_ecai, agrees_ecai"
        )
    for column in frame.columns:
        if column == "overridden" or column.startswith("agrees_"):
            frame[column] = (
                frame[column]
                .str.strip()
                .str.lower()
                .map({"true": True, "false": False, "1": True, "0": False, "": None})
            )
    if "distance" in frame.columns:
        frame["distance"] = pd.to_numeric(frame["distance"], errors="coerce")
    return frame


def read_related_table(path: str | PathLike[str]) -> dict[str, str]:
    """target → related language from ``results/related_languages.tsv``."""
    frame = read_related_frame(path)
    return dict(zip(frame["target"], frame["related"], strict=True))


def agreement_summary(picks: Sequence[RelatedPick]) -> dict[str, dict[str, int]]:
    """How many picks equal each paper's choice: ``{"acl": {"matches", "total"}, ...}``.

    ``total`` counts the picks whose target the paper lists.
    """
    summary = {}
    for paper in _PAPERS:
        verdicts = [getattr(pick, f"agrees_{paper}") for pick in picks]
        known = [v for v in verdicts if v is not None]
        summary[paper] = {"matches": sum(known), "total": len(known)}
    return summary


# -------------------------------------------------------------------------------- CLI
def _split_codes(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def _parse_override(text: str) -> tuple[str, str]:
    target, sep, related = text.partition("=")
    if not sep or not target.strip() or not related.strip():
        raise LangarithError(f"--override {text!r}: write it as TARGET=RELATED, e.g. es=it")
    return target.strip(), related.strip()


def _cli_related(args: argparse.Namespace) -> int:
    overrides = dict(_parse_override(item) for item in args.override or [])
    if args.out is not None:  # refuse a path that must not be replaced before any work
        check_replaceable(args.out, related_table_kind())
    picks = pick_related(_split_codes(args.targets), _split_codes(args.pool), overrides)
    for pick in picks:
        print(f"{pick.target}\t{pick.related}\t{pick.distance:.4f}")
    if args.out is not None:
        write_related_table(picks, args.out)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith related``: print target, related language and URIEL distance."""
    parser = subparsers.add_parser(
        "related",
        help="pick related languages through URIEL",
        description="For each target, the closest pool language by URIEL distance "
        "(genetic, geographic and typological; see langarith.related).",
    )
    parser.add_argument("--targets", required=True, help="comma-separated codes, e.g. es,fr")
    parser.add_argument("--pool", required=True, help="comma-separated codes to pick from")
    parser.add_argument(
        "--override",
        action="append",
        metavar="TARGET=RELATED",
        help="replace the URIEL pick of a target (repeatable)",
    )
    parser.add_argument("--out", type=Path, help="also write the TSV table here")
    parser.set_defaults(func=_cli_related)
