"""Which language codes the project accepts: ISO 639-1, or ISO 639-3 where no 639-1 exists.

The papers key every language by its ISO 639-1 code (``en``, ``sw``, ``as``), and so do
the paths, the datasets' configs and the tables. Many languages have no two-letter code
(Acehnese ``ace``, Nigerian Pidgin ``pcm``); for those the ISO 639-3 code is the key.
A language therefore has exactly one spelling: a three-letter code of a language that
*has* a two-letter one (``eng``, ``aym``, ``fre``) is refused with the two-letter code
to use instead, never silently normalised, because two spellings of one language would
give two sets of paths, adapters and table rows.

The code lists are shipped in ``langarith/resources`` (``iso639_1.tsv``: each 639-1
code with its 639-3 and 639-2/B codes; ``iso639_3.txt``: the 639-3 codes without a
639-1 code), taken from the IANA language subtag registry, so that the config check
stays quick and offline. ``langarith.config`` (the workflow's config check) and
``langarith.related`` (the URIEL look-up) both ask this module.
"""

from __future__ import annotations

import functools
from importlib import resources

from langarith import LangarithError

__all__ = [
    "ISO_639_1",
    "check_code",
    "code_problem",
    "iso639_3_only",
    "known_code",
    "three_letter_of",
    "two_letter_for",
]


def _lines(name: str) -> list[str]:
    text = (resources.files("langarith") / "resources" / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@functools.lru_cache(maxsize=1)
def _iso639_1_table() -> dict[str, tuple[str, ...]]:
    """639-1 code -> (its 639-3 code, its 639-2/B code)."""
    table = {}
    for line in _lines("iso639_1.tsv"):
        two, *three = line.split("\t")
        table[two] = tuple(dict.fromkeys(three))
    return table


#: Every ISO 639-1 code.
ISO_639_1: frozenset[str] = frozenset(_iso639_1_table())


@functools.lru_cache(maxsize=1)
def iso639_3_only() -> frozenset[str]:
    """ISO 639-3 codes of languages without an ISO 639-1 code (``ace``, ``pcm``, ``arb``)."""
    return frozenset(_lines("iso639_3.txt"))


@functools.lru_cache(maxsize=1)
def _two_letter_of_three() -> dict[str, str]:
    return {three: two for two, codes in _iso639_1_table().items() for three in codes}


def two_letter_for(code: str) -> str | None:
    """The 639-1 code of a three-letter code that has one (``eng`` -> ``en``), else None."""
    return _two_letter_of_three().get(code)


def three_letter_of(code: str) -> str:
    """The ISO 639-3 code of a 639-1 code (``ay`` -> ``aym``); other codes unchanged."""
    codes = _iso639_1_table().get(code)
    return codes[0] if codes else code


def known_code(code: object) -> bool:
    """True for an ISO 639-1 code or a 639-3 code of a language without one."""
    return isinstance(code, str) and (code in ISO_639_1 or code in iso639_3_only())


def code_problem(code: object) -> str | None:
    """What to write instead of ``code`` (one clause), or None when ``code`` is accepted.

    ``eng`` gets "it has the ISO 639-1 code 'en'; write 'en'"; an unknown code gets
    the rule.
    """
    if known_code(code):
        return None
    if isinstance(code, str) and (two := two_letter_for(code.lower())):
        return f"it has the ISO 639-1 code {two!r}; write {two!r}"
    return (
        "use an ISO 639-1 code (e.g. en, es, sw, as) or, for a language without one, "
        "its ISO 639-3 code (e.g. ace, pcm)"
    )


def check_code(code: object, where: str) -> str:
    """``code`` when accepted, else a :class:`LangarithError` naming ``where``."""
    problem = code_problem(code)
    if problem:
        raise LangarithError(f"unknown language code {code!r} in {where}; {problem}")
    return str(code)
