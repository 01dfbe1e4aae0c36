"""The on-disk data format shared by the real download and the offline demo source.

One folder per (dataset, language) holds ``<split>.jsonl`` (one JSON object per line)
and ``manifest.json`` (see ``docs/interfaces.md``). Both sources go through
:func:`write_dataset`, which checks every row against the dataset's fields, so the later
stages never need to know where the data came from. The real Wikipedia train split is
the exception in layout, not in rows: it is written in shards by
:mod:`langarith.data.shards` (resumable), and the readers here (:func:`iter_split`,
:func:`read_split`, :func:`split_files`, :func:`verify_dataset`) read both layouts.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langarith import LangarithError
from langarith.data import coverage
from langarith.data.shards import DATASET_OUTPUT, shards_checksum
from langarith.io import atomic_dir, read_json, sha256_file, write_json
from langarith.languages import three_letter_of

log = logging.getLogger(__name__)

#: IOB2 tags in the order of WikiANN's ``ner_tags`` class label on the hub.
NER_LABELS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
#: CoNLL-2003's tags in the order of its ``ner_tags`` class label on the hub (MISC last).
CONLL2003_LABELS: tuple[str, ...] = (*NER_LABELS, "B-MISC", "I-MISC")
#: MasakhaNER's tags in the order of its ``ner_tags`` class label on the hub (DATE last).
MASAKHANER_LABELS: tuple[str, ...] = (*NER_LABELS, "B-DATE", "I-DATE")
#: XNLI's label order: 0 entailment, 1 neutral, 2 contradiction.
NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
#: Binarised MARC (1-2 stars negative, 4-5 positive, 3 dropped).
BINARY_SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
#: Three-way sentiment of SMSA and NusaX-senti, in our order (the hub's orders differ
#: and are mapped by name).
SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

#: The 37 universal dependency relations of UD v2 (https://universaldependencies.org/u/dep/),
#: the labels of the ``ud`` dataset: subtypes (``nsubj:pass``) are cut to their
#: universal part when a treebank is read (:mod:`langarith.data.ud`).
UD_RELATIONS: tuple[str, ...] = (
    "acl",
    "advcl",
    "advmod",
    "amod",
    "appos",
    "aux",
    "case",
    "cc",
    "ccomp",
    "clf",
    "compound",
    "conj",
    "cop",
    "csubj",
    "dep",
    "det",
    "discourse",
    "dislocated",
    "expl",
    "fixed",
    "flat",
    "goeswith",
    "iobj",
    "list",
    "mark",
    "nmod",
    "nsubj",
    "nummod",
    "obj",
    "obl",
    "orphan",
    "parataxis",
    "punct",
    "reparandum",
    "root",
    "vocative",
    "xcomp",
)

MANIFEST = "manifest.json"

#: Row fields per task kind, in the order they are written.
FIELDS: dict[str, tuple[str, ...]] = {
    "mlm": ("id", "text"),
    "ner": ("id", "tokens", "ner_tags"),
    "nli": ("id", "premise", "hypothesis", "label"),
    "qa": ("id", "title", "context", "question", "answers"),
    "dp": ("id", "tokens", "heads", "deprels"),
    "sentiment": ("id", "text", "label"),
}


class UncoveredLanguageError(LangarithError):
    """The dataset has no data for the language (e.g. XQuAD has no Bulgarian).

    A separate class, because the workflow skips such languages on purpose while any
    other data error must stop it.
    """


@dataclass(frozen=True)
class HubFiles:
    """One layout of a repository's files, for repositories ``datasets`` cannot resolve.

    Some repositories are defined by a loading script, which ``datasets`` no longer
    runs; their files are read directly. Layouts are tried in order and the first whose
    files exist wins (one layout only, so two copies of a split are never concatenated).

    Attributes:
        revision: branch or ref holding these files (``None``: the default branch).
        pattern: file pattern with ``{lang}`` and ``{split}`` filled in (``{lang3}``: the
            language's ISO 639-3 code, for repositories keyed by it, as MasakhaNER).
        split_names: the repository's name of our split where it differs
            (``{"validation": "dev"}``).
        builder: ``None`` to load the repository itself with these ``data_files``; a
            packaged builder (``"json"``) to read the files by URL instead, which is
            the only way past a branch that holds a loading script (``datasets``
            refuses such a repository whatever ``data_files`` says).
    """

    revision: str | None
    pattern: str
    split_names: tuple[tuple[str, str], ...] = ()
    builder: str | None = None

    def data_files(self, lang: str, splits: Iterable[str]) -> dict[str, list[str]]:
        """``data_files`` for ``datasets.load_dataset``: one pattern per split."""
        names = dict(self.split_names)
        return {
            s: [self.pattern.format(lang=lang, lang3=three_letter_of(lang), split=names.get(s, s))]
            for s in splits
        }


@dataclass(frozen=True)
class DatasetSpec:
    """What the workflow knows about one dataset.

    Attributes:
        name: key in :data:`DATASETS`, used in paths (``resources/data/<name>/<lang>``).
        hub_path: repository of the dataset on the Hugging Face hub.
        hub_config: format of the hub config name; ``{lang}`` (and ``{dump}`` for
            Wikipedia) are filled in; ``None`` when the dataset has a single config.
        hub_splits: the splits the hub provides.
        splits: the splits written to disk (Wikipedia holds out ``validation`` from the
            hub's ``train``; XQuAD's hub ``validation`` is cut 50/50 into validation and
            test, as the papers do).
        languages: languages covered (hub config codes, ISO 639-1 for the papers' ones).
        task: row layout: ``mlm``, ``ner``, ``nli``, ``qa`` or ``sentiment`` (see
            :data:`FIELDS`).
        labels: label names for tagging/classification, empty otherwise.
        reference: the paper that introduced the dataset.
        hub_revision: revision to load when the option ``revision`` is not given.
        hub_files: file layouts tried in order (:class:`HubFiles`) for repositories
            whose configs are defined by a loading script, which ``datasets`` no
            longer runs; empty when the repository's own configs are used.
        hub_languages: our code -> the hub's config (or folder) name where they differ
            (Aymara is ``ay`` here, ``aym`` on the hub; NusaX's Javanese ``jv``/``jav``).
        hub_labels: the hub's label order, used when its rows carry bare ints without
            class-label names (local files); names are mapped onto :attr:`labels`.
        exclude_test_of: ``(dataset, language)`` whose test texts this dataset's rows
            must not repeat (SMSA: NusaX's Indonesian test set, translated from SMSA);
            the workflow prepares that folder first and passes it as the option
            ``exclude_texts_of``.
    """

    name: str
    hub_path: str
    hub_config: str | None
    hub_splits: tuple[str, ...]
    splits: tuple[str, ...]
    languages: frozenset[str]
    task: str
    labels: tuple[str, ...] = ()
    reference: str = ""
    hub_revision: str | None = None
    hub_files: tuple[HubFiles, ...] = ()
    hub_languages: tuple[tuple[str, str], ...] = ()
    hub_labels: tuple[str, ...] = ()
    exclude_test_of: tuple[str, str] | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        """Row fields of this dataset, in file order."""
        return FIELDS[self.task]

    def hub_lang(self, lang: str) -> str:
        """The hub's name of our language code ``lang`` (its config or folder)."""
        return dict(self.hub_languages).get(lang, lang)


def _parquet_export() -> tuple[HubFiles, ...]:
    """The hub's parquet export of a script-defined repository, one folder per config,
    in the converter's current layout or its older one (tried in this order)."""
    return (
        HubFiles("refs/convert/parquet", "{lang}/{split}/*.parquet"),
        HubFiles("refs/convert/parquet", "{lang}/*-{split}.parquet"),
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="wikipedia",
            hub_path="wikimedia/wikipedia",
            hub_config="{dump}.{lang}",
            hub_splits=("train",),
            splits=("train", "validation"),
            languages=coverage.WIKIPEDIA_LANGUAGES,
            task="mlm",
            # Komi-Zyrian is ISO 639-3 kpv (UD's code), its Wikipedia edition kv
            hub_languages=(("kpv", "kv"),),
            reference="https://huggingface.co/datasets/wikimedia/wikipedia",
        ),
        DatasetSpec(
            name="wikiann",
            hub_path="unimelb-nlp/wikiann",
            hub_config="{lang}",
            hub_splits=("train", "validation", "test"),
            splits=("train", "validation", "test"),
            languages=coverage.WIKIANN_LANGUAGES,
            task="ner",
            labels=NER_LABELS,
            reference="Rahimi et al. 2019, https://aclanthology.org/P19-1015",
        ),
        DatasetSpec(
            name="xnli",
            hub_path="facebook/xnli",
            hub_config="{lang}",
            hub_splits=("train", "validation", "test"),
            splits=("train", "validation", "test"),
            languages=coverage.XNLI_LANGUAGES,
            task="nli",
            labels=NLI_LABELS,
            reference="Conneau et al. 2018, https://aclanthology.org/D18-1269",
        ),
        DatasetSpec(
            name="indicxnli",
            # The repository is lower-case; the hub resolves other spellings only for
            # some calls (the parquet export's ref among them not reliably).
            hub_path="Divyanshu/indicxnli",
            hub_config=None,
            hub_splits=("train", "validation", "test"),
            splits=("train", "validation", "test"),
            languages=coverage.INDICXNLI_LANGUAGES,
            task="nli",
            labels=NLI_LABELS,
            reference="Aggarwal et al. 2022, https://aclanthology.org/2022.emnlp-main.755",
            # The main branch holds a loading script and the raw json files; the hub's
            # parquet export has one folder per language, in the converter's current
            # layout or its older one. Tried in this order; the raw json is the fallback.
            hub_files=(
                HubFiles("refs/convert/parquet", "{lang}/{split}/*.parquet"),
                HubFiles("refs/convert/parquet", "{lang}/*-{split}.parquet"),
                HubFiles(
                    "main", "forward/{split}/xnli_{lang}.json", (("validation", "dev"),), "json"
                ),
            ),
        ),
        DatasetSpec(
            name="squad",
            hub_path="rajpurkar/squad",
            hub_config=None,
            hub_splits=("train", "validation"),
            splits=("train", "validation"),
            languages=coverage.SQUAD_LANGUAGES,
            task="qa",
            reference="Rajpurkar et al. 2016, https://aclanthology.org/D16-1264",
        ),
        DatasetSpec(
            name="xquad",
            hub_path="google/xquad",
            hub_config="xquad.{lang}",
            hub_splits=("validation",),
            splits=("validation", "test"),
            languages=coverage.XQUAD_LANGUAGES,
            task="qa",
            reference="Artetxe et al. 2020, https://aclanthology.org/2020.acl-main.421",
        ),
        DatasetSpec(
            # The X-MOD arm scores MLQA's monolingual test sets whole (its dev split is
            # kept as validation). The repository is a loading script, which datasets no
            # longer runs: its parquet export is read, in the converter's current layout
            # or its older one.
            name="mlqa",
            hub_path="facebook/mlqa",
            hub_config=None,
            hub_splits=("validation", "test"),
            splits=("validation", "test"),
            languages=coverage.MLQA_LANGUAGES,
            task="qa",
            reference="Lewis et al. 2020, https://aclanthology.org/2020.acl-main.653",
            hub_files=(
                HubFiles("refs/convert/parquet", "mlqa.{lang}.{lang}/{split}/*.parquet"),
                HubFiles("refs/convert/parquet", "mlqa.{lang}.{lang}/*-{split}.parquet"),
            ),
        ),
        DatasetSpec(
            # UD 2.7 for the TLR arm's parsing (langarith.data.ud: CoNLL-U files or the
            # hub's parquet export, config = the language's treebank). Test-only
            # treebanks get empty train and validation splits.
            name="ud",
            hub_path="universal-dependencies/universal_dependencies",
            hub_config=None,
            hub_splits=("train", "validation", "test"),
            splits=("train", "validation", "test"),
            languages=coverage.UD_LANGUAGES,
            task="dp",
            labels=UD_RELATIONS,
            reference="Zeman et al. 2020, Universal Dependencies 2.7, http://hdl.handle.net/11234/1-3424",
            hub_files=(
                HubFiles("refs/convert/parquet", "{lang}/{split}/*.parquet"),
                HubFiles("refs/convert/parquet", "{lang}/*-{split}.parquet"),
            ),
        ),
        DatasetSpec(
            # AmericasNLI: XNLI's test and validation sets translated into ten indigenous
            # languages of the Americas (the TLR arm reads it under the same name). The
            # repository is a loading script: its parquet export is read. Aymara is
            # ``ay`` here (it has an ISO 639-1 code), ``aym`` on the hub.
            name="americasnli",
            hub_path="americas_nli",
            hub_config=None,
            hub_splits=("validation", "test"),
            splits=("validation", "test"),
            languages=coverage.AMERICASNLI_LANGUAGES,
            task="nli",
            labels=NLI_LABELS,
            reference="Ebrahimi et al. 2022, https://aclanthology.org/2022.acl-long.435",
            hub_files=_parquet_export(),
            hub_languages=(("ay", "aym"),),
            hub_labels=NLI_LABELS,
        ),
        DatasetSpec(
            # MARC binarised as in Keung et al. (2020): 3 stars dropped, 1-2 negative,
            # 4-5 positive; the text is the review title and body
            # (task-arithmetic-crosslingual, Appendix B).
            name="marc",
            hub_path="amazon_reviews_multi",
            hub_config=None,
            hub_splits=("train", "validation", "test"),
            splits=("train", "validation", "test"),
            languages=coverage.MARC_LANGUAGES,
            task="sentiment",
            labels=BINARY_SENTIMENT_LABELS,
            reference="Keung et al. 2020, https://aclanthology.org/2020.emnlp-main.369",
            hub_files=_parquet_export(),
        ),
        DatasetSpec(
            # SMSA (IndoNLU): Indonesian sentiment, the source data of NusaX. Rows whose
            # text reappears in the Indonesian NusaX test set are removed
            # (langarith.data.real, option exclude_texts_of).
            name="smsa",
            hub_path="indonlp/indonlu",
            hub_config=None,
            hub_splits=("train", "validation", "test"),
            splits=("train", "validation", "test"),
            languages=coverage.SMSA_LANGUAGES,
            task="sentiment",
            labels=SENTIMENT_LABELS,
            reference="Wilie et al. 2020, https://aclanthology.org/2020.aacl-main.85",
            hub_files=(
                HubFiles("refs/convert/parquet", "smsa/{split}/*.parquet"),
                HubFiles("refs/convert/parquet", "smsa/*-{split}.parquet"),
            ),
            hub_labels=("positive", "neutral", "negative"),
            exclude_test_of=("nusax", "id"),
        ),
        DatasetSpec(
            # NusaX-senti: 1,000 SMSA sentences translated into ten Indonesian local
            # languages (and English); the hub names Indonesian, Javanese, Sundanese and
            # English by their ISO 639-3 codes.
            name="nusax",
            hub_path="indonlp/NusaX-senti",
            hub_config=None,
            hub_splits=("train", "validation", "test"),
            splits=("train", "validation", "test"),
            languages=coverage.NUSAX_LANGUAGES,
            task="sentiment",
            labels=SENTIMENT_LABELS,
            reference="Winata et al. 2023, https://aclanthology.org/2023.eacl-main.57",
            hub_files=_parquet_export(),
            hub_languages=(("en", "eng"), ("id", "ind"), ("jv", "jav"), ("su", "sun")),
            hub_labels=SENTIMENT_LABELS,
        ),
    )
}


#: The TLR arm's datasets (issue 17): CoNLL-2003 → MasakhaNER for NER, SQuAD 1.1 →
#: TyDiQA-GoldP for QA. Their repositories hold loading scripts, which ``datasets`` no
#: longer runs: the hub's parquet export is read, in the converter's current layout or its
#: older one (as MLQA).
_TLR_DATASETS = (
    DatasetSpec(
        name="conll2003",
        hub_path="eriktks/conll2003",
        hub_config=None,
        hub_splits=("train", "validation", "test"),
        splits=("train", "validation", "test"),
        languages=coverage.CONLL2003_LANGUAGES,
        task="ner",
        labels=CONLL2003_LABELS,
        reference="Tjong Kim Sang and De Meulder 2003, https://aclanthology.org/W03-0419",
        hub_files=(
            HubFiles("refs/convert/parquet", "conll2003/{split}/*.parquet"),
            HubFiles("refs/convert/parquet", "conll2003/*-{split}.parquet"),
        ),
    ),
    DatasetSpec(
        name="masakhaner",
        hub_path="masakhane/masakhaner",
        hub_config=None,
        hub_splits=("train", "validation", "test"),
        splits=("train", "validation", "test"),
        languages=coverage.MASAKHANER_LANGUAGES,
        task="ner",
        labels=MASAKHANER_LABELS,
        reference="Adelani et al. 2021, https://aclanthology.org/2021.tacl-1.66",
        hub_files=(
            HubFiles("refs/convert/parquet", "{lang3}/{split}/*.parquet"),
            HubFiles("refs/convert/parquet", "{lang3}/*-{split}.parquet"),
        ),
    ),
    DatasetSpec(
        # TyDiQA-GoldP has no test split: its whole validation set (the rows of the
        # language, by id prefix) is written as our test split, as the TLR paper scores
        # it; there is no validation split, since the task adapter is chosen on English.
        name="tydiqa",
        hub_path="google-research-datasets/tydiqa",
        hub_config=None,
        hub_splits=("validation",),
        splits=("test",),
        languages=coverage.TYDIQA_LANGUAGES,
        task="qa",
        reference="Clark et al. 2020, https://aclanthology.org/2020.tacl-1.30",
        hub_files=(
            HubFiles("refs/convert/parquet", "secondary_task/{split}/*.parquet"),
            HubFiles("refs/convert/parquet", "secondary_task/*-{split}.parquet"),
        ),
    ),
)
DATASETS.update({spec.name: spec for spec in _TLR_DATASETS})


def get_spec(dataset: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``dataset``; an unknown name lists the valid ones."""
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        raise LangarithError(
            f"Unknown dataset {dataset!r}. Must be one of {sorted(DATASETS)}"
        ) from None


def data_dependencies(dataset: str) -> list[tuple[str, str]]:
    """The (dataset, language) folders the preparation of ``dataset`` reads (SMSA:
    NusaX Indonesian, whose test texts it leaves out)."""
    spec = get_spec(dataset)
    return [spec.exclude_test_of] if spec.exclude_test_of else []


def dataset_covers(dataset: str, lang: str) -> bool:
    """Whether ``dataset`` has data for language ``lang``."""
    return lang in get_spec(dataset).languages


def require_coverage(dataset: str, lang: str) -> DatasetSpec:
    """The spec of ``dataset``, or :class:`UncoveredLanguageError` if it lacks ``lang``."""
    spec = get_spec(dataset)
    if lang not in spec.languages:
        shown = sorted(spec.languages)
        listing = " ".join(shown) if len(shown) <= 30 else f"{len(shown)} languages"
        raise UncoveredLanguageError(
            f"Dataset {dataset!r} does not cover language {lang!r} (covered: {listing}); "
            f"leave {lang!r} out of this dataset's languages"
        )
    return spec


def covered_languages(dataset: str, langs: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split ``langs`` into those ``dataset`` covers and those it does not.

    The workflow calls this to plan only the jobs that can exist; each skipped language
    is logged so that a missing column in a table is explained in the log.
    Order is kept; duplicates are dropped.
    """
    spec = get_spec(dataset)
    covered: list[str] = []
    skipped: list[str] = []
    for lang in dict.fromkeys(langs):
        if lang in spec.languages:
            covered.append(lang)
        else:
            skipped.append(lang)
            log.warning("skipping language %r for dataset %r: not covered", lang, dataset)
    return covered, skipped


# ---------------------------------------------------------------------------- rows


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_answers(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == {"text", "answer_start"}
        and _is_str_list(value["text"])
        and isinstance(value["answer_start"], list)
        and all(type(s) is int for s in value["answer_start"])
    )


def check_row(spec: DatasetSpec, row: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one row against the dataset's fields and return it in file order.

    Both sources pass through here, which is what makes the demo and the real data
    interchangeable: a field with the wrong name or type is caught at write time.
    """
    fields = spec.fields
    if not isinstance(row, Mapping):
        raise LangarithError(f"{where}: row must be a JSON object, got {type(row).__name__}")
    if set(row) != set(fields):
        raise LangarithError(
            f"{where}: row fields {sorted(row)} differ from the {spec.name} fields {list(fields)}"
        )
    out = {name: row[name] for name in fields}
    problem = None
    if not isinstance(out["id"], str) or not out["id"]:
        problem = "'id' must be a non-empty string"
    elif spec.task == "mlm":
        if not isinstance(out["text"], str):
            problem = "'text' must be a string"
    elif spec.task == "ner":
        tokens, tags = out["tokens"], out["ner_tags"]
        if not (_is_str_list(tokens) and _is_str_list(tags)):
            problem = "'tokens' and 'ner_tags' must be lists of strings"
        elif len(tokens) != len(tags):
            problem = f"{len(tokens)} tokens but {len(tags)} tags"
        elif bad := sorted(set(tags) - set(spec.labels)):
            problem = f"unknown tags {bad}; allowed: {list(spec.labels)}"
    elif spec.task == "nli":
        if not (isinstance(out["premise"], str) and isinstance(out["hypothesis"], str)):
            problem = "'premise' and 'hypothesis' must be strings"
        elif type(out["label"]) is not int or not 0 <= out["label"] < len(spec.labels):
            problem = f"'label' must be an int in 0..{len(spec.labels) - 1}, got {out['label']!r}"
    elif spec.task == "sentiment":
        if not isinstance(out["text"], str):
            problem = "'text' must be a string"
        elif type(out["label"]) is not int or not 0 <= out["label"] < len(spec.labels):
            problem = f"'label' must be an int in 0..{len(spec.labels) - 1}, got {out['label']!r}"
    elif spec.task == "qa":
        answers = out["answers"]
        if not all(isinstance(out[k], str) for k in ("title", "context", "question")):
            problem = "'title', 'context' and 'question' must be strings"
        elif not _is_answers(answers):
            problem = "'answers' must be {'text': [str], 'answer_start': [int]}"
        elif len(answers["text"]) != len(answers["answer_start"]):
            problem = "'answers' has different numbers of texts and starts"
        else:
            out["answers"] = {
                "text": list(answers["text"]),
                "answer_start": list(answers["answer_start"]),
            }
    elif spec.task == "dp":
        problem = _dp_problem(out, spec.labels)
    if problem:
        raise LangarithError(f"{where}: {problem}")
    return out


def _dp_problem(row: Mapping[str, Any], labels: Iterable[str]) -> str | None:
    """What is wrong with a dependency-parsing row (words, 1-based heads, relations)."""
    tokens, heads, rels = row["tokens"], row["heads"], row["deprels"]
    if not (_is_str_list(tokens) and _is_str_list(rels) and tokens):
        return "'tokens' and 'deprels' must be non-empty lists of strings"
    if not isinstance(heads, list) or not all(type(h) is int for h in heads):
        return "'heads' must be a list of ints (0 = root, else the head word's 1-based index)"
    if not len(tokens) == len(heads) == len(rels):
        return f"{len(tokens)} tokens, {len(heads)} heads and {len(rels)} deprels"
    if any(not 0 <= h <= len(tokens) for h in heads):
        return f"a head outside 0..{len(tokens)}: {heads}"
    if bad := sorted(set(rels) - set(labels)):
        return f"unknown relations {bad}; allowed: the UD universal relations {list(labels)}"
    return None


# ----------------------------------------------------------------------- manifest


def combined_checksum(split_sums: Mapping[str, str]) -> str:
    """SHA-256 over the split checksums: lines ``"<split> <sha256>\\n"`` sorted by split.

    One value that changes whenever any split changes; later stages record it as the
    identity of the data they were trained or evaluated on.
    """
    text = "".join(f"{split} {split_sums[split]}\n" for split in sorted(split_sums))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_dataset(
    out_dir: Path | str,
    dataset: str,
    lang: str,
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    source: str,
    revision: str,
    options: Mapping[str, Any],
    labels: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write one (dataset, language) folder atomically and return its path.

    Args:
        out_dir: the folder to create, e.g. ``resources/data/xnli/de``; an existing one
            is replaced only once the new one is complete.
        dataset: a key of :data:`DATASETS`; ``splits`` must hold exactly its splits.
        lang: language code stored in the manifest.
        splits: rows per split; iterables are consumed once, so generators stream.
        source: ``hub:<path>/<config>``, ``local:<path>`` or ``demo``.
        revision: hub revision, dataset fingerprint, dump date or generator version.
        options: the options that made the data (stored for provenance).
        labels: label names; defaults to the dataset's (stored for NER and NLI only).
        extra: further manifest keys, read once every row is written (so counts that a
            generator fills while it is consumed are complete); a callable value is
            called then.

    Every row is checked with :func:`check_row`. For ``wikipedia`` each split also
    records ``tokens``, its whitespace-token count, because the data-size study is
    stated in tokens.
    """
    spec = get_spec(dataset)
    if set(splits) != set(spec.splits):
        raise LangarithError(
            f"{dataset}: got splits {sorted(splits)}, expected exactly {list(spec.splits)}"
        )
    out_dir = Path(out_dir)
    entries: dict[str, dict[str, int | str]] = {}
    with atomic_dir(out_dir, DATASET_OUTPUT) as tmp:
        for split in spec.splits:
            path = tmp / f"{split}.jsonl"
            rows = tokens = 0
            with open(path, "w", encoding="utf-8", newline="\n") as handle:
                for row in splits[split]:
                    clean = check_row(spec, row, f"{dataset}/{lang} {split} row {rows}")
                    handle.write(json.dumps(clean, ensure_ascii=False) + "\n")
                    rows += 1
                    if spec.task == "mlm":
                        tokens += len(clean["text"].split())
            entry: dict[str, int | str] = {"rows": rows, "sha256": sha256_file(path)}
            if spec.task == "mlm":
                entry["tokens"] = tokens
            entries[split] = entry
            log.info("%s/%s %s: %d rows", dataset, lang, split, rows)
        manifest = build_manifest(
            dataset, lang, entries, source=source, revision=revision, options=options, labels=labels
        )
        for key, value in (extra or {}).items():
            if key in manifest:
                raise LangarithError(f"{dataset}: manifest key {key!r} is taken")
            manifest[key] = _jsonable(value() if callable(value) else value)
        write_json(tmp / MANIFEST, manifest)
    return out_dir


def build_manifest(
    dataset: str,
    lang: str,
    entries: Mapping[str, Mapping[str, Any]],
    *,
    source: str,
    revision: str,
    options: Mapping[str, Any],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The manifest of a data folder from its split entries.

    One builder for the single-file writer (:func:`write_dataset`) and the sharded one
    (:mod:`langarith.data.shards`), so both folders carry the same keys.
    """
    spec = get_spec(dataset)
    manifest: dict[str, Any] = {
        "dataset": dataset,
        "language": lang,
        "source": source,
        "revision": revision,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "options": _jsonable(dict(options)),
        "splits": {split: dict(entry) for split, entry in entries.items()},
        "checksum": combined_checksum({s: str(e["sha256"]) for s, e in entries.items()}),
    }
    if spec.labels:
        manifest["labels"] = list(labels if labels is not None else spec.labels)
    return manifest


def _jsonable(value: Any) -> Any:
    """Options as plain JSON (paths become strings, tuples lists)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def read_manifest(data_dir: Path | str) -> dict[str, Any]:
    """The manifest of a data folder, checked for the keys every stage relies on."""
    path = Path(data_dir) / MANIFEST
    manifest = read_json(path)
    required = ("dataset", "language", "source", "revision", "splits", "checksum")
    if not isinstance(manifest, dict) or any(key not in manifest for key in required):
        raise LangarithError(
            f"{path} is not a data manifest (needs keys {list(required)}); "
            "rerun the data preparation step"
        )
    return manifest


def split_files(data_dir: Path | str, split: str) -> list[Path]:
    """The files of one split in reading order: ``<split>.jsonl`` or its shards.

    A sharded split (the real Wikipedia train split) lists its shards in the manifest;
    every other split is one file. Callers that need the files themselves (checksums,
    sizes) use this instead of assuming ``<split>.jsonl``.
    """
    data_dir = Path(data_dir)
    entry = _split_entry(data_dir, split)
    shards = entry.get("shards")
    if shards:
        return [data_dir / str(shard["file"]) for shard in shards]
    return [data_dir / f"{split}.jsonl"]


def _split_entry(data_dir: Path, split: str) -> dict[str, Any]:
    manifest = read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise LangarithError(
            f"{data_dir} has no split {split!r}; available: {list(manifest['splits'])}"
        )
    return dict(manifest["splits"][split])


def _check_shard(path: Path, shard: Mapping[str, Any]) -> None:
    """Refuse a shard that is missing or no longer matches its recorded checksum.

    Shards are checked before their first row is read, so training never starts on a
    corpus whose middle was truncated or overwritten.
    """
    if not path.is_file():
        raise LangarithError(f"Shard {path} is missing; rerun the data preparation step")
    digest = sha256_file(path)
    if digest != shard.get("sha256"):
        raise LangarithError(
            f"Shard {path} fails its checksum (sha256 {digest[:12]}… vs "
            f"{str(shard.get('sha256'))[:12]}… in the manifest): it was truncated or "
            "changed; rerun the data preparation step"
        )


def _iter_file(path: Path, spec: DatasetSpec | None = None) -> Iterator[dict[str, Any]]:
    """The rows of one JSON-lines file; with ``spec``, each checked by :func:`check_row`.

    Lines are decoded one at a time, so bytes that are not UTF-8 and malformed rows
    (a ``text`` that is missing or not a string, ...) are refused with their line number.
    """
    if not path.is_file():
        raise LangarithError(f"{path} is missing; rerun the data preparation step")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise LangarithError(
                    f"{path} line {number} is not UTF-8 text (byte {err.start + 1}: "
                    f"{raw[err.start : err.start + 1]!r}); rerun the data preparation step"
                ) from None
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise LangarithError(
                    f"{path} line {number} is not valid JSON ({err.msg}); the file is "
                    "corrupt or truncated: rerun the data preparation step"
                ) from None
            yield row if spec is None else check_row(spec, row, f"{path} line {number}")


def _row_spec(data_dir: Path) -> DatasetSpec | None:
    """The spec whose fields every row of ``data_dir`` must have (None: unknown dataset)."""
    return DATASETS.get(str(read_manifest(data_dir).get("dataset")))


def iter_split(data_dir: Path | str, split: str) -> Iterator[dict[str, Any]]:
    """Rows of one split, one at a time (for corpora too big to hold in memory).

    A sharded split is read shard after shard, in order; each shard is checked
    against its recorded sha256 before its rows are read. Every row is checked against
    the dataset's fields (:func:`check_row`), naming the file and line of a bad one.
    """
    data_dir = Path(data_dir)
    entry = _split_entry(data_dir, split)
    spec = _row_spec(data_dir)
    shards = entry.get("shards")
    if not shards:
        yield from _iter_file(data_dir / f"{split}.jsonl", spec)
        return
    for shard in shards:
        path = data_dir / str(shard["file"])
        _check_shard(path, shard)
        yield from _iter_file(path, spec)


def read_split(data_dir: Path | str, split: str) -> list[dict[str, Any]]:
    """All rows of one split as a list."""
    return list(iter_split(data_dir, split))


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def _verify_file(path: Path, entry: Mapping[str, Any]) -> str:
    """The sha256 of one file after checking it against ``entry`` (rows and sha256)."""
    if not path.is_file():
        raise LangarithError(f"{path} is missing; rerun the data preparation step")
    digest = sha256_file(path)
    rows = _count_lines(path)
    if rows != entry.get("rows") or digest != entry.get("sha256"):
        raise LangarithError(
            f"{path} does not match its manifest ({rows} rows, sha256 {digest[:12]}… "
            f"vs {entry.get('rows')} rows, {str(entry.get('sha256'))[:12]}…): it was "
            "truncated or changed; rerun the data preparation step"
        )
    return digest


def verify_manifest(data_dir: Path | str, splits: Iterable[str] | None = None) -> dict[str, Any]:
    """Check the files of ``splits`` (default: all) against the manifest; return it.

    The one check training runs before it reads a data folder (and ``langarith data
    verify`` runs on all splits): every file's row count and sha256, every shard, and
    the manifest's overall checksum over the split checksums it records. Raises
    ``LangarithError`` naming the first file that is missing, truncated or changed
    after the manifest was written, so edited data is never trained on under the
    manifest's clean checksum.
    """
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    wanted = list(manifest["splits"]) if splits is None else list(splits)
    for split in wanted:
        entry = _split_entry(data_dir, split)
        shards = entry.get("shards")
        if not shards:
            _verify_file(data_dir / f"{split}.jsonl", entry)
            continue
        for shard in shards:
            _verify_file(data_dir / str(shard["file"]), shard)
        total = sum(int(shard["rows"]) for shard in shards)
        if shards_checksum(shards) != entry.get("sha256") or total != entry.get("rows"):
            raise LangarithError(
                f"{data_dir / MANIFEST}: split {split!r} does not match its shard list "
                f"({total} rows); rerun the data preparation step"
            )
    recorded = {split: str(entry.get("sha256")) for split, entry in manifest["splits"].items()}
    if combined_checksum(recorded) != manifest.get("checksum"):
        raise LangarithError(
            f"{data_dir / MANIFEST}: overall checksum does not match the split checksums; "
            "the manifest was edited: rerun the data preparation step"
        )
    return manifest


def verify_dataset(data_dir: Path | str) -> dict[str, Any]:
    """Recompute every checksum and row count of a data folder; return its manifest.

    Raises ``LangarithError`` naming the first file (split or shard) that is missing,
    truncated or changed, so a damaged download is never trained on silently.
    """
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    sums: dict[str, str] = {}
    for split, entry in manifest["splits"].items():
        shards = entry.get("shards")
        if not shards:
            sums[split] = _verify_file(data_dir / f"{split}.jsonl", entry)
            continue
        for shard in shards:
            _verify_file(data_dir / str(shard["file"]), shard)
        total = sum(int(shard["rows"]) for shard in shards)
        if shards_checksum(shards) != entry.get("sha256") or total != entry.get("rows"):
            raise LangarithError(
                f"{data_dir / MANIFEST}: split {split!r} does not match its shard list "
                f"({total} rows); rerun the data preparation step"
            )
        sums[split] = str(entry["sha256"])
    if combined_checksum(sums) != manifest["checksum"]:
        raise LangarithError(
            f"{data_dir / MANIFEST}: overall checksum does not match the split checksums; "
            "rerun the data preparation step"
        )
    return manifest
