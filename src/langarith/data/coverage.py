"""Which languages each dataset covers, as the hub's configuration names.

The workflow asks these sets before it plans a job, so a language a dataset lacks
(XQuAD has no Bulgarian, French, Swahili or Urdu) is skipped explicitly instead of
failing at download time. Codes are the ones the hub uses for each dataset's configs;
for the languages of the papers they are ISO 639-1 (or ISO 639-3 where a language has no
two-letter code); where the hub spells a language otherwise (AmericasNLI's ``aym``,
NusaX's ``jav``) the dataset's ``hub_languages`` maps ours to it.
"""

from __future__ import annotations


def _codes(text: str) -> frozenset[str]:
    """A set of codes from a whitespace-separated list (easier to read and diff)."""
    return frozenset(text.split())


#: WikiANN (Pan et al., 2017; Rahimi et al., 2019 split): the 176 configs of
#: ``unimelb-nlp/wikiann``.
WIKIANN_LANGUAGES: frozenset[str] = _codes(
    """
    ace af als am an ang ar arc arz as ast ay az ba bar bat-smg be be-x-old bg bh bn bo
    br bs ca cbk-zam cdo ce ceb ckb co crh cs csb cv cy da de diq dv el eml en eo es et
    eu ext fa fi fiu-vro fo fr frr fur fy ga gan gd gl gn gu hak he hi hr hsb hu hy ia
    id ig ilo io is it ja jbo jv ka kk km kn ko ksh ku ky la lb li lij lmo ln lt lv
    map-bms mg mhr mi min mk ml mn mr ms mt mwl my mzn nap nds ne nl nn no nov oc or os
    pa pdc pl pms pnb ps pt qu rm ro ru rw sa sah scn sco sd sh si simple sk sl so sq sr
    su sv sw szl ta te tg th tk tl tr tt ug uk ur uz vec vep vi vls vo wa war wuu xmf yi
    yo zea zh zh-classical zh-min-nan zh-yue
    """
)

#: XNLI (Conneau et al., 2018): the 15 languages of ``facebook/xnli``.
XNLI_LANGUAGES: frozenset[str] = _codes("ar bg de el en es fr hi ru sw th tr ur vi zh")

#: XQuAD (Artetxe et al., 2020): 12 languages; not bg, fr, sw, ur of the papers' 13.
XQUAD_LANGUAGES: frozenset[str] = _codes("ar de el en es hi ro ru th tr vi zh")

#: MLQA (Lewis et al., 2020): the seven languages of its monolingual configs
#: (``mlqa.<lang>.<lang>``), used by the X-MOD arm.
MLQA_LANGUAGES: frozenset[str] = _codes("ar de en es hi vi zh")

#: AmericasNLI (Ebrahimi et al., 2022): ten indigenous languages of the Americas, as
#: our codes (Aymara ``ay``, the hub's ``aym``; the others are ISO 639-3 or 639-2 codes
#: without a two-letter one, as on the hub).
AMERICASNLI_LANGUAGES: frozenset[str] = _codes("ay bzd cni gn hch nah oto quy shp tar")

#: MARC (Keung et al., 2020): the six languages of ``amazon_reviews_multi``.
MARC_LANGUAGES: frozenset[str] = _codes("de en es fr ja zh")

#: SMSA (IndoNLU; Purwarianti and Crisdayanti, 2019) is Indonesian only.
SMSA_LANGUAGES: frozenset[str] = frozenset({"id"})

#: NusaX-senti (Winata et al., 2023): ten Indonesian local languages, Indonesian and
#: English, as our codes (the hub's ``ind``, ``jav``, ``sun``, ``eng`` are id, jv, su, en).
NUSAX_LANGUAGES: frozenset[str] = _codes("ace ban bbc bjn bug en id jv mad min nij su")

#: SQuAD 1.1 (Rajpurkar et al., 2016) is English only.
SQUAD_LANGUAGES: frozenset[str] = frozenset({"en"})

#: IndicXNLI (Aggarwal et al., 2022): 11 Indic languages, including Assamese.
INDICXNLI_LANGUAGES: frozenset[str] = _codes("as bn gu hi kn ml mr or pa ta te")

#: UD 2.7 treebanks of the TLR arm's parsing (``langarith.data.ud.UD_TREEBANKS``): English
#: EWT and the seed's Table 2 targets.
UD_LANGUAGES: frozenset[str] = _codes("en af bm eu kpv mr mt myv te ug wo")

#: Wikipedia dumps of ``wikimedia/wikipedia``: a generous set of the language editions
#: (every WikiANN language plus further editions of the 2023 dumps).
WIKIPEDIA_LANGUAGES: frozenset[str] = (
    WIKIANN_LANGUAGES
    | _codes(
        """
    ab ady ak alt ami anp atj av avk awa ban bcl bi bjn blk bm bpy bug bxr ch chr chy cr cu
    din dsb dty dz ee ff fj fon gag gcr glk gom gor got gpe guc gur guw gv ha haw hif ht
    ie ig ik inh iu jam kaa kab kbd kbp kcg kg ki kl koi krc ks kv kw lad lbe lez lfn lg
    lld lo lrc ltg mad mai mdf mni mnw mrj myv na nah nds-nl new nia nqo nrm nso nv ny
    olo om pag pam pap pcd pcm pfl pi pih pnt pwn rmy rn roa-rup roa-tara rue sat sc se
    sg shi shn skr sm smn sn srn ss st stq szy tay tcy tet ti tly tn to tpi trv ts tum
    tw ty tyv udm ve vro wo xal xh za zgh zu
    """
    )
    | {"kpv"}
)  # Komi-Zyrian by UD's ISO 639-3 code: the kv edition (``hub_languages``)


# ---------------------------------------------------------------- TLR arm datasets

#: CoNLL-2003 (Tjong Kim Sang and De Meulder, 2003): English NER, the TLR arm's source
#: for MasakhaNER.
CONLL2003_LANGUAGES: frozenset[str] = frozenset({"en"})

#: MasakhaNER 1.0 (Adelani et al., 2021): ten African languages. Our codes are ISO 639-1
#: where one exists, else ISO 639-3 (luo, pcm); the hub's configs are ISO 639-3
#: (``hau``, ``swa``, ...), see :func:`langarith.languages.three_letter_of`.
MASAKHANER_LANGUAGES: frozenset[str] = _codes("am ha ig rw lg luo pcm sw wo yo")

#: TyDiQA-GoldP (Clark et al., 2020): the gold-passage task of TyDi QA, one file for every
#: language; a row's language is the prefix of its ``id`` (``arabic-…``).
TYDIQA_NAMES: dict[str, str] = {
    "ar": "arabic",
    "bn": "bengali",
    "en": "english",
    "fi": "finnish",
    "id": "indonesian",
    "ja": "japanese",
    "ko": "korean",
    "ru": "russian",
    "sw": "swahili",
    "te": "telugu",
    "th": "thai",
}
TYDIQA_LANGUAGES: frozenset[str] = frozenset(TYDIQA_NAMES)
