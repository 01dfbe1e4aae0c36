"""An offline stand-in for the real datasets, in exactly the same format.

The demo must let the whole workflow run on a laptop without the hub, and still show
what language arithmetic is about: languages that are related on the surface (shared
words and subwords in Romance languages, Cyrillic script in Russian, Bulgarian and
Ukrainian) and tasks whose signal transfers from English.

* **Words**: each language's ``vocab_size`` most frequent words from ``wordfreq``, drawn
  with their real frequencies, so Spanish text shares ``de``, ``la``, ``que``… with
  Portuguese and Italian but nothing with Russian.
* **Local structure**: sentences follow one latent successor table over frequency ranks
  that all languages share, so masked-LM training has something to learn and the same
  "grammar" is spelled differently per language (like real languages share meaning).
* **Entities** from ``faker`` locales (persons, cities, companies) with each language's
  own names and script.
* **Tasks** with correct labels and a rule that is the same in every language:
  NER tags one-word entities (often after a cue word such as "named"/"llamado"); NLI
  hypotheses are a contiguous piece of a short premise (entailment), that piece with
  the language's negation word (contradiction), or words absent from the premise
  (neutral); QA answers are the entity that follows a cue word in the sentence the
  question quotes.
* **Learnable by the tiny demo backbones**: their attention stays almost uniform after
  a short pre-training, so a frozen one shows a task adapter each token plus a bag of
  words of its sentence, little of word order. Hence one-word NER entities whose type
  shows in the word itself (first names, cities, companies; English cities from a fixed
  list because faker's are built from person names) and short NLI pairs (the negation
  word is less diluted in the [CLS] average).

Everything is deterministic given the language and the option ``seed``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import random
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langarith import LangarithError
from langarith.data.formats import (
    NLI_LABELS,
    DatasetSpec,
    get_spec,
    require_coverage,
    write_dataset,
)
from langarith.data.real import truncate_tokens

#: Bumped whenever the generator changes what it writes; stored as the manifest revision.
GENERATOR_VERSION = "langarith-demo/2"


@dataclass(frozen=True)
class DemoLanguage:
    """The few words of a language the task rules need, and where its names come from.

    Attributes:
        code: ISO 639-1 code (the ``wordfreq`` list of the same name is used).
        faker_locale: ``faker`` locale for person, city and company names.
        negation: the word that turns an entailment into a contradiction (NLI).
        person_cue: word put before a person ("named"); QA asks with it.
        city_cue: word put before a city ("city").
        who: question word for persons; ``where``: for cities.
        org_word: company suffix, used when faker only offers English-looking companies.
        end: sentence-final punctuation.
        cities: fixed city names, used when faker's cities are not in the language
            or are made of person names (en_US: "Smithfurt", "Lake Grace").
    """

    code: str
    faker_locale: str
    negation: str
    person_cue: str
    city_cue: str
    who: str
    where: str
    org_word: str
    end: str = "."
    cities: tuple[str, ...] = ()

    @property
    def reserved(self) -> frozenset[str]:
        """Words kept out of the task sentences so that the task rules stay exact."""
        return frozenset({self.negation, self.person_cue, self.city_cue})


_BG_CITIES = (
    "София", "Пловдив", "Варна", "Бургас", "Русе", "Стара Загора", "Плевен", "Сливен",
    "Добрич", "Шумен", "Перник", "Хасково", "Ямбол", "Пазарджик", "Благоевград",
    "Велико Търново", "Враца", "Габрово", "Асеновград", "Видин", "Казанлък", "Кюстендил",
    "Кърджали", "Монтана", "Ловеч", "Силистра", "Търговище", "Разград", "Дупница",
    "Горна Оряховица", "Смолян", "Петрич", "Самоков", "Сандански", "Севлиево", "Лом",
    "Карлово", "Велинград", "Нова Загора", "Троян", "Айтос", "Ботевград", "Гоце Делчев",
    "Харманли", "Карнобат", "Свиленград", "Панагюрище", "Чирпан", "Попово", "Козлодуй",
)  # fmt: skip

_EN_CITIES = (
    "Albany", "Denver", "Seattle", "Raleigh", "Houston", "Phoenix", "Dallas", "Austin",
    "Portland", "Atlanta", "Detroit", "Memphis", "Nashville", "Baltimore", "Milwaukee",
    "Louisville", "Sacramento", "Oakland", "Tucson", "Fresno", "Omaha", "Miami", "Cleveland",
    "Tulsa", "Wichita", "Tampa", "Pittsburgh", "Cincinnati", "Orlando", "Richmond", "Tacoma",
    "Spokane", "Birmingham", "Liverpool", "Leeds", "Bristol", "Glasgow", "Edinburgh",
    "Cardiff", "Belfast", "Dublin", "Toronto", "Vancouver", "Ottawa", "Reno", "Melbourne",
    "Brisbane", "Perth", "Adelaide", "Auckland",
)  # fmt: skip

#: Supported demo languages: every one is in ``wordfreq`` and has a ``faker`` locale.
DEMO_LANGUAGES: dict[str, DemoLanguage] = {
    lang.code: lang
    for lang in (
        DemoLanguage(
            "en", "en_US", "not", "named", "city", "who", "where", "Group", cities=_EN_CITIES
        ),
        DemoLanguage("de", "de_DE", "nicht", "namens", "stadt", "wer", "wo", "GmbH"),
        DemoLanguage("nl", "nl_NL", "niet", "genaamd", "stad", "wie", "waar", "BV"),
        DemoLanguage("sv", "sv_SE", "inte", "heter", "staden", "vem", "var", "AB"),
        DemoLanguage("es", "es_ES", "no", "llamado", "ciudad", "quién", "dónde", "S.A."),
        DemoLanguage("it", "it_IT", "non", "chiamato", "città", "chi", "dove", "S.p.A."),
        DemoLanguage("pt", "pt_PT", "não", "chamado", "cidade", "quem", "onde", "Lda."),
        DemoLanguage("fr", "fr_FR", "pas", "nommé", "ville", "qui", "où", "SARL"),
        DemoLanguage("ro", "ro_RO", "nu", "numit", "orașul", "cine", "unde", "SRL"),
        DemoLanguage("ru", "ru_RU", "не", "имени", "город", "кто", "где", "Групп"),
        DemoLanguage("bg", "bg_BG", "не", "име", "град", "кой", "къде", "ООД", cities=_BG_CITIES),
        DemoLanguage("uk", "uk_UA", "не", "імені", "місто", "хто", "де", "Груп"),
        DemoLanguage("pl", "pl_PL", "nie", "imieniu", "miasto", "kto", "gdzie", "Sp."),
        DemoLanguage("cs", "cs_CZ", "ne", "jménem", "město", "kdo", "kde", "s.r.o."),
        DemoLanguage("el", "el_GR", "δεν", "όνομα", "πόλη", "ποιος", "πού", "Α.Ε."),
        DemoLanguage("hi", "hi_IN", "नहीं", "नाम", "शहर", "कौन", "कहाँ", "समूह", end="।"),
    )
}

#: Demo options and their defaults (``None`` in a caller's options means default).
DEMO_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "vocab_size": 3000,
    "local_structure": 0.5,
    "entity_rate": 0.3,
    "wikipedia_train_docs": 2000,
    "validation_docs": 200,
    "validation_fraction": None,
    "max_train_tokens": None,
    "task_train_rows": 2000,
    "task_validation_rows": 300,
    "task_test_rows": 300,
    "qa_context_sentences": 4,
    "respect_coverage": True,
    "dump": None,
    "min_chars": None,
    "shard_docs": None,
}
#: Options of the real Wikipedia data that the demo accepts so that one config serves
#: both sources, but that change nothing in the generated text.
DEMO_IGNORED = ("dump", "min_chars", "shard_docs")

_SUCCESSORS = 4  # successors per rank in the shared latent table
_LATENT_SEED = "langarith-demo-latent-grammar"


def _rng(*parts: Any) -> random.Random:
    """A generator seeded from the parts' text, the same in every process."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _is_word(token: str) -> bool:
    """Letters and combining marks only (``str.isalpha`` rejects Devanagari vowel signs)."""
    return bool(token) and all(unicodedata.category(c)[0] in "LM" for c in token)


def _scripts(word: str) -> set[str]:
    """Scripts of a word's letters (first word of the Unicode name: LATIN, CYRILLIC…)."""
    return {unicodedata.name(c, "?").split()[0] for c in word if unicodedata.category(c)[0] == "L"}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@functools.lru_cache(maxsize=32)
def _raw_words(lang: str, n: int) -> tuple[str, ...]:
    import wordfreq

    return tuple(w for w in wordfreq.top_n_list(lang, n) if _is_word(w))


@functools.lru_cache(maxsize=32)
def language_script(lang: str) -> str:
    """The main script of a language's frequent words (``LATIN``, ``CYRILLIC``…)."""
    counts = collections.Counter(s for w in _raw_words(lang, 400)[:200] for s in _scripts(w))
    if not counts:
        raise LangarithError(f"wordfreq has no word list for {lang!r}")
    return counts.most_common(1)[0][0]


@functools.lru_cache(maxsize=32)
def _word_list(lang: str, vocab_size: int) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The language's ``vocab_size`` most frequent words and their frequencies."""
    import wordfreq

    script = language_script(lang)
    # Keep the language's own script: the Hindi list, say, also holds English words.
    words = [w for w in _raw_words(lang, vocab_size * 2) if _scripts(w) == {script}]
    words = words[:vocab_size]
    if len(words) < min(vocab_size, 100):
        raise LangarithError(f"wordfreq has too few words for {lang!r} ({len(words)})")
    weights = tuple(wordfreq.word_frequency(w, lang) for w in words)
    if lang == "el":  # wordfreq folds the final sigma; real Greek text writes ς
        words = [re.sub("σ$", "ς", w) for w in words]
    return tuple(words), weights


@functools.lru_cache(maxsize=8)
def _latent_successors(vocab_size: int) -> tuple[tuple[int, ...], ...]:
    """Successor ranks per rank, shared by every language (Zipf-weighted over ranks)."""
    rng = _rng(_LATENT_SEED, vocab_size)
    ranks = range(vocab_size)
    cum, total = [], 0.0
    for r in ranks:
        total += 1.0 / (r + 1)
        cum.append(total)
    return tuple(tuple(rng.choices(ranks, cum_weights=cum, k=_SUCCESSORS)) for _ in ranks)


class _Sampler:
    """Draws words of one language: Zipf unigrams mixed with the shared latent table."""

    def __init__(
        self,
        lang: str,
        vocab_size: int,
        local_structure: float,
        banned: frozenset[str] = frozenset(),
    ):
        self.words, weights = _word_list(lang, vocab_size)
        # A banned word keeps its rank but gets zero width, so it is never drawn.
        self._banned = {i for i, w in enumerate(self.words) if w in banned}
        self._cum: list[float] = []
        total = 0.0
        for i, weight in enumerate(weights):
            total += 0.0 if i in self._banned else weight
            self._cum.append(total)
        self._succ = _latent_successors(len(self.words))
        self._local = local_structure
        self._ranks = range(len(self.words))

    def ranks(self, rng: random.Random, n: int) -> list[int]:
        out = rng.choices(self._ranks, cum_weights=self._cum, k=1)
        while len(out) < n:
            nxt = -1
            if rng.random() < self._local:
                nxt = rng.choice(self._succ[out[-1]])
            if nxt < 0 or nxt in self._banned:
                nxt = rng.choices(self._ranks, cum_weights=self._cum, k=1)[0]
            out.append(nxt)
        return out

    def draw(self, rng: random.Random, n: int) -> list[str]:
        """``n`` words: the first a Zipf draw, each next one often a latent successor."""
        return [self.words[r] for r in self.ranks(rng, n)]


_PUNCT = re.compile(r"[«»\"„“”,;:!?()\[\]]")


class _Names:
    """Person, city and company names of a language from its ``faker`` locale."""

    def __init__(self, spec: DemoLanguage, seed: Any):
        from faker import Faker

        self.spec = spec
        self.fake = Faker(spec.faker_locale)
        # faker's it_IT builds its city list from a set, so the cities drawn change with
        # PYTHONHASHSEED; sorted lists make every process draw the same names.
        for provider in self.fake.providers:
            if isinstance(getattr(provider, "cities", None), list):
                provider.cities = sorted(provider.cities)
        self.fake.seed_instance(_rng("faker", spec.code, seed).getrandbits(32))
        self._rng = _rng("names", spec.code, seed)
        self._latin = language_script(spec.code) == "LATIN"
        self._city = getattr(self.fake, "city_name", None) or self.fake.city

    def _clean(self, value: str) -> str | None:
        """A name that looks native, or ``None``.

        Rejects brackets, digits and, outside Latin script, Latin letters: some faker
        locales fill in English parts ("Group", "New …", "…borough").
        """
        if any(c in value for c in "()[]") or any(c.isdigit() for c in value):
            return None
        if not self._latin and re.search(r"[A-Za-z]", value):
            return None
        value = " ".join(_PUNCT.sub(" ", value).split())
        return value or None

    def _pick(self, make: Callable[[], str], fallback: Callable[[], str]) -> str:
        for _ in range(8):
            value = self._clean(make())
            if value:
                return value
        return fallback()

    def person(self) -> str:
        return self._pick(
            lambda: f"{self.fake.first_name()} {self.fake.last_name()}",
            self.fake.last_name,
        )

    def city(self) -> str:
        if self.spec.cities:
            return self._rng.choice(self.spec.cities)
        return self._pick(self._city, self.fake.last_name)

    def company(self) -> str:
        return self._pick(
            self.fake.company,
            lambda: f"{self._clean(self.fake.last_name()) or 'X'} {self.spec.org_word}",
        )

    def single_word(self, kind: str) -> str:
        """A one-word name of ``kind``: a first name (PER), a city (LOC) or a company
        (ORG, which faker mostly names after families), for NER.

        Multi-word draws are redrawn; should all of them be, the words are hyphenated.
        """
        make = {"PER": self.fake.first_name, "LOC": self.city, "ORG": self.company}[kind]
        value = ""
        for _ in range(16):
            value = self._clean(make()) or ""
            if value and " " not in value:
                return value
        return _cap("-".join(value.split()) or self.spec.org_word)


# ------------------------------------------------------------------------ options


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEMO_DEFAULTS))
    if unknown:
        raise LangarithError(
            f"Unknown demo option(s) {unknown}. Must be among {sorted(DEMO_DEFAULTS)}"
        )
    merged = dict(DEMO_DEFAULTS)
    merged.update({k: v for k, v in options.items() if v is not None})
    for name in (
        "vocab_size",
        "wikipedia_train_docs",
        "validation_docs",
        "task_train_rows",
        "task_validation_rows",
        "task_test_rows",
        "qa_context_sentences",
    ):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LangarithError(f"Demo option {name!r} must be an integer >= 1, got {value!r}")
    if merged["vocab_size"] < 200:
        raise LangarithError("Demo option 'vocab_size' must be at least 200")
    budget = merged["max_train_tokens"]
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
    ):
        raise LangarithError(
            f"Demo option 'max_train_tokens' must be an integer >= 1, got {budget!r}"
        )
    for name in ("local_structure", "entity_rate", "validation_fraction"):
        value = merged[name]
        if value is None and name == "validation_fraction":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise LangarithError(f"Demo option {name!r} must be in [0, 1], got {value!r}")
    if merged["validation_fraction"] is not None:
        if "validation_docs" in options and options["validation_docs"] is not None:
            raise LangarithError("Give either validation_docs or validation_fraction, not both")
        fraction = merged.pop("validation_fraction")
        merged["validation_docs"] = max(1, round(fraction * merged["wikipedia_train_docs"]))
    else:
        merged.pop("validation_fraction")
    for name in DEMO_IGNORED:
        if merged[name] is None:
            merged.pop(name)
    return merged


def demo_languages() -> list[str]:
    """Codes of the languages the demo generator supports."""
    return sorted(DEMO_LANGUAGES)


# -------------------------------------------------------------------- generators


class _Generator:
    """Rows of every dataset for one language; one instance per (dataset, language)."""

    def __init__(self, spec: DatasetSpec, lang: DemoLanguage, opts: Mapping[str, Any]):
        self.spec, self.lang, self.opts = spec, lang, opts
        self.seed = opts["seed"]
        size, local = opts["vocab_size"], float(opts["local_structure"])
        self.text_words = _Sampler(lang.code, size, local)
        self.task_words = _Sampler(lang.code, size, local, banned=lang.reserved)
        self.names = _Names(lang, (spec.name, self.seed))

    def _rng(self, split: str) -> random.Random:
        return _rng(self.spec.name, self.lang.code, self.seed, split)

    def _sentence(self, words: list[str]) -> str:
        return _cap(" ".join(words)) + self.lang.end

    def _id(self, split: str, i: int) -> str:
        return f"demo-{self.spec.name}-{self.lang.code}-{split}-{i:06d}"

    # wikipedia ------------------------------------------------------------------
    def wikipedia(self, split: str, n: int, budget: int | None) -> Iterator[dict[str, Any]]:
        rng, used = self._rng(split), 0
        for i in range(n):
            sentences = []
            for _ in range(rng.randint(3, 8)):
                words = self.text_words.draw(rng, rng.randint(6, 20))
                if rng.random() < self.opts["entity_rate"]:
                    kind = rng.choice(("PER", "LOC", "ORG"))
                    pos = rng.randint(1, len(words))
                    words[pos:pos] = self._entity_with_cue(kind)
                sentences.append(self._sentence(words))
            text = " ".join(sentences)
            if budget is not None:
                left = budget - used
                if left <= 0:
                    return
                text = truncate_tokens(text, left)
            used += len(text.split())
            yield {"id": self._id(split, i), "text": text}

    def _entity_with_cue(self, kind: str) -> list[str]:
        name = self._entity(kind)
        cue = {"PER": self.lang.person_cue, "LOC": self.lang.city_cue}.get(kind)
        return ([cue] if cue else []) + name.split()

    def _entity(self, kind: str) -> str:
        if kind == "PER":
            return self.names.person()
        if kind == "LOC":
            return self.names.city()
        return self.names.company()

    # NER --------------------------------------------------------------------------
    def ner(self, split: str, n: int) -> Iterator[dict[str, Any]]:
        rng = self._rng(split)
        for i in range(n):
            segments = [[(w, "O")] for w in self.task_words.draw(rng, rng.randint(6, 20))]
            for _ in range(rng.randint(1, 3)):
                kind = rng.choice(("PER", "LOC", "ORG"))
                seg = [(self.names.single_word(kind), f"B-{kind}")]
                cue = {"PER": self.lang.person_cue, "LOC": self.lang.city_cue}.get(kind)
                if cue and rng.random() < 0.5:
                    seg = [(cue, "O")] + seg
                segments.insert(rng.randint(0, len(segments)), seg)
            pairs = [pair for seg in segments for pair in seg]
            yield {
                "id": self._id(split, i),
                "tokens": [t for t, _ in pairs],
                "ner_tags": [tag for _, tag in pairs],
            }

    # NLI --------------------------------------------------------------------------
    def nli(self, split: str, n: int) -> Iterator[dict[str, Any]]:
        rng = self._rng(split)
        labels = [i % len(NLI_LABELS) for i in range(n)]
        rng.shuffle(labels)
        for i, label in enumerate(labels):
            premise = self.task_words.draw(rng, rng.randint(5, 10))
            length = rng.randint(2, 4)
            if NLI_LABELS[label] == "neutral":
                absent = set(premise)
                hypothesis: list[str] = []
                while len(hypothesis) < length:
                    hypothesis += [w for w in self.task_words.draw(rng, length) if w not in absent]
                hypothesis = hypothesis[:length]
            else:
                start = rng.randint(0, len(premise) - length)
                hypothesis = premise[start : start + length]
                if NLI_LABELS[label] == "contradiction":
                    pos = rng.randint(0, length)
                    hypothesis = hypothesis[:pos] + [self.lang.negation] + hypothesis[pos:]
            yield {
                "id": self._id(split, i),
                "premise": self._sentence(premise),
                "hypothesis": self._sentence(hypothesis),
                "label": label,
            }

    # sentiment --------------------------------------------------------------------
    def sentiment(self, split: str, n: int) -> Iterator[dict[str, Any]]:
        """Single texts whose class a cue decides: "negative" holds the negation word,
        "positive" (of three classes) a word said twice for emphasis, the rest neither."""
        rng = self._rng(split)
        labels = [i % len(self.spec.labels) for i in range(n)]
        rng.shuffle(labels)
        for i, label in enumerate(labels):
            words = self.task_words.draw(rng, rng.randint(5, 12))
            name = self.spec.labels[label]
            pos = rng.randint(0, len(words) - 1)
            if name == "negative":
                words.insert(pos, self.lang.negation)
            elif name == "positive" and len(self.spec.labels) == 3:
                words.insert(pos, words[pos])
            yield {"id": self._id(split, i), "text": self._sentence(words), "label": label}

    # QA ---------------------------------------------------------------------------
    def qa(self, split: str, n: int) -> Iterator[dict[str, Any]]:
        rng = self._rng(split)
        n_sent = self.opts["qa_context_sentences"]
        for i in range(n):
            kind = rng.choice(("PER", "LOC"))
            entity = self._entity(kind)
            cue = self.lang.person_cue if kind == "PER" else self.lang.city_cue
            wh = self.lang.who if kind == "PER" else self.lang.where
            answer_at = rng.randrange(n_sent)
            context, start, asked = "", -1, []
            for k in range(n_sent):
                if context:
                    context += " "
                if k != answer_at:
                    words = self.task_words.draw(rng, rng.randint(6, 16))
                    context += self._sentence(words)
                    continue
                before = self.task_words.draw(rng, rng.randint(3, 8))
                after = self.task_words.draw(rng, rng.randint(2, 6))
                prefix = _cap(" ".join([*before, cue])) + " "
                start = len(context) + len(prefix)
                context += prefix + entity + " " + " ".join(after) + self.lang.end
                quoted = before + after
                keep = sorted(rng.sample(range(len(quoted)), min(len(quoted), rng.randint(2, 4))))
                asked = [quoted[j] for j in keep]
            title = " ".join(_cap(w) for w in self.task_words.draw(rng, 2))
            yield {
                "id": self._id(split, i),
                "title": title,
                "context": context,
                "question": _cap(" ".join([wh, cue, *asked])) + "?",
                "answers": {"text": [entity], "answer_start": [start]},
            }

    def split_rows(self, split: str) -> Iterator[dict[str, Any]]:
        o = self.opts
        if self.spec.task == "mlm":
            if split == "train":
                return self.wikipedia(split, o["wikipedia_train_docs"], o["max_train_tokens"])
            return self.wikipedia(split, o["validation_docs"], None)
        n = o[f"task_{split}_rows"]
        task = {"ner": self.ner, "nli": self.nli, "qa": self.qa, "sentiment": self.sentiment}
        return task[self.spec.task](split, n)


def prepare_demo_dataset(
    dataset: str, lang: str, out_dir: Path | str, *, options: Mapping[str, Any] | None = None
) -> Path:
    """Generate one (dataset, language) folder offline, in the real data's format.

    Args:
        dataset: a key of :data:`langarith.data.DATASETS`; the same splits and row
            fields as the real data are written, with manifest ``source: "demo"``.
        lang: one of :func:`demo_languages` (others raise ``LangarithError``).
        out_dir: the folder to write (atomically).
        options: all optional (``None`` means default):

            * ``seed`` (0): the same (dataset, language, seed) gives the same bytes.
            * ``vocab_size`` (3000): most frequent ``wordfreq`` words used per language.
            * ``local_structure`` (0.5): probability that the next word follows the
              shared latent successor table instead of a free Zipf draw.
            * ``entity_rate`` (0.3): share of Wikipedia sentences with a named entity.
            * ``wikipedia_train_docs`` (2000), ``validation_docs`` (200): Wikipedia
              documents of 3–8 sentences of 6–20 words each; ``validation_fraction``
              instead sets the validation documents as a share of the train ones.
            * ``max_train_tokens`` (none): whitespace-token budget of Wikipedia train,
              the last document cut to fit, as in the real data.
            * ``task_train_rows`` (2000), ``task_validation_rows`` (300),
              ``task_test_rows`` (300): rows per split of NER, NLI, QA and sentiment data (only the
              dataset's own splits are written).
            * ``qa_context_sentences`` (4): sentences per QA context.
            * ``respect_coverage`` (true): refuse languages the real dataset lacks
              (``UncoveredLanguageError``), so the demo skips what a real run skips; set
              false to get e.g. IndicXNLI-shaped data for a demo language.
            * ``dump``, ``min_chars``: real Wikipedia options, accepted so that one
              config serves both sources; they change nothing here.
    """
    spec = get_spec(dataset)
    if spec.task == "dp":
        raise LangarithError(
            f"The demo has no generator for {dataset!r} (dependency parsing runs on UD "
            "CoNLL-U files, the tests on fixtures): set data.local_paths.ud or use the hub."
        )
    opts = _options(dict(options or {}))
    if opts["respect_coverage"]:
        require_coverage(dataset, lang)
    if lang not in DEMO_LANGUAGES:
        raise LangarithError(
            f"The demo generator does not support language {lang!r}. "
            f"Must be one of {demo_languages()}"
        )
    generator = _Generator(spec, DEMO_LANGUAGES[lang], opts)
    return write_dataset(
        out_dir,
        dataset,
        lang,
        {split: generator.split_rows(split) for split in spec.splits},
        source="demo",
        revision=GENERATOR_VERSION,
        options=opts,
    )
