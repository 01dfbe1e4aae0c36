"""Tests of langarith.related: URIEL distances, picks against the papers' lists, CLI."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from langarith import LangarithError, cli, related

ACL_POOL = ["ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "tr", "ur", "vi", "zh"]
ECAI_POOL = [*ACL_POOL, "fa", "it"]

#: The picks of the documented distance on the ACL pool (module docstring).
OUR_ACL_POOL_PICKS = {
    "ar": "el",  # paper: sw
    "bg": "ru",
    "de": "fr",
    "el": "bg",  # paper: es
    "es": "fr",
    "fr": "es",
    "hi": "ur",
    "ru": "bg",
    "sw": "ar",
    "tr": "bg",
    "ur": "hi",
    "vi": "zh",  # paper: ru
    "zh": "vi",  # paper: ar
}


def test_iso3_uses_codes_with_uriel_data() -> None:
    assert related.iso3("es") == "spa"
    assert related.iso3("ar") == "arb"  # not the macrolanguage "ara"
    assert related.iso3("zh") == "cmn"
    assert related.iso3("fa") == "pes"
    assert related.iso3("sw") == "swh"
    assert related.iso3(" ES ") == "spa"
    assert related.iso3("cmn") == "cmn"  # ISO 639-3 with data passes through


def test_every_mapped_language_has_uriel_data() -> None:
    uriel = related._uriel()
    for code in related.ISO639_1_TO_3.values():
        assert related._has_data(code), code
        has_lineage = uriel.lineage[uriel.index[code]].any()
        assert has_lineage or code == "eus", code  # Basque is an isolate


@pytest.mark.parametrize("bad", ["xx", "", "english", "ara1"])
def test_unknown_code_is_a_clear_error(bad: str) -> None:
    with pytest.raises(LangarithError) as err:
        related.iso3(bad)
    message = str(err.value)
    assert repr(bad) in message
    assert "es" in message and "ISO 639-1" in message


def test_unknown_code_in_pick_related() -> None:
    with pytest.raises(LangarithError, match="'xx'"):
        related.pick_related(["es"], ["fr", "xx"])


def test_features_match_lang2vec_get_features() -> None:
    """Reading the npz files directly gives lang2vec's own vectors."""
    import lang2vec.lang2vec as l2v  # a required dependency; slow to import (~2 s)

    uriel = related._uriel()
    langs = ["spa", "arb"]
    got = l2v.get_features(langs, "syntax_knn+phonology_knn+inventory_knn")
    geo = l2v.get_features(langs, "geo")
    for lang in langs:
        row = uriel.index[lang]
        np.testing.assert_allclose(uriel.featural[row], np.array(got[lang], dtype=float))
        np.testing.assert_allclose(uriel.geo[row], np.array(geo[lang], dtype=float), rtol=1e-6)


def test_data_dir_is_found_when_a_script_shadows_lang2vec(tmp_path, monkeypatch) -> None:
    """lang2vec installs bin/lang2vec.py, which shadows the package for console scripts."""
    (tmp_path / "lang2vec.py").write_text("raise RuntimeError('shadowing script imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert (related._lang2vec_data_dir() / "family_features.npz").is_file()


@pytest.fixture
def fresh_uriel(monkeypatch, tmp_path):
    """URIEL loads again in the test, with its cache in the returned folder (and after)."""
    monkeypatch.setenv(related.CACHE_ENV, str(tmp_path / "cache"))
    related._uriel.cache_clear()
    yield tmp_path / "cache"
    related._uriel.cache_clear()


def _assert_same_tables(got: related._Uriel, want: related._Uriel) -> None:
    assert got.index == want.index
    for table in ("lineage", "geo", "featural"):
        assert getattr(got, table).dtype == getattr(want, table).dtype, table
        assert np.array_equal(getattr(got, table), getattr(want, table)), table


def _lang2vec_is_not_read(*_args):
    raise AssertionError("lang2vec read although the cache is current")


def test_uriel_cache_gives_lang2vec_tables_bit_for_bit(fresh_uriel, monkeypatch) -> None:
    reference = related._read_lang2vec(related._lang2vec_data_dir())
    _assert_same_tables(related._uriel(), reference)  # reads lang2vec, writes the cache
    (cached,) = fresh_uriel.glob("uriel-*.npz")
    assert cached.stat().st_size < 20_000_000  # compact: the float64 tables are ~40 MB
    related._uriel.cache_clear()
    monkeypatch.setattr(related, "_read_lang2vec", _lang2vec_is_not_read)
    _assert_same_tables(related._uriel(), reference)
    assert not list(fresh_uriel.glob(".*tmp*"))  # nothing half-written left


def test_damaged_uriel_cache_is_rebuilt(fresh_uriel) -> None:
    related._uriel()
    (cached,) = fresh_uriel.glob("uriel-*.npz")
    cached.write_bytes(cached.read_bytes()[:1000])  # cut short, as by a kill mid-copy
    related._uriel.cache_clear()
    reference = related._read_lang2vec(related._lang2vec_data_dir())
    _assert_same_tables(related._uriel(), reference)
    key = cached.stem.removeprefix("uriel-")
    _assert_same_tables(related._read_cache(cached, key), reference)  # written anew


def test_uriel_cache_key_follows_the_lang2vec_files(tmp_path, monkeypatch) -> None:
    source = related._lang2vec_data_dir()
    data = tmp_path / "data"
    data.mkdir()
    for name in ("family_features.npz", "geocoord_features.npz", "feature_predictions.npz"):
        (data / name).symlink_to(source / name)
    before = related._cache_key(data)
    assert related._cache_key(data) == before
    (data / "family_features.npz").unlink()
    copy = data / "family_features.npz"
    copy.write_bytes((source / "family_features.npz").read_bytes())  # a reinstall
    os.utime(copy, ns=(1_000_000_000, 1_000_000_000))
    after = related._cache_key(data)
    assert after != before
    monkeypatch.setattr(related, "_lang2vec_data_dir", lambda: data)
    monkeypatch.setenv(related.CACHE_ENV, str(tmp_path / "cache"))
    related._uriel.cache_clear()
    try:
        related._uriel()
    finally:
        related._uriel.cache_clear()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"uriel-{after}.npz"]
    with pytest.raises(ValueError, match="other lang2vec files"):
        related._read_cache(tmp_path / "cache" / f"uriel-{after}.npz", before)


def test_uriel_without_a_usable_cache(fresh_uriel, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(related.CACHE_ENV, "")
    assert related._cache_dir() is None
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    monkeypatch.setenv(related.CACHE_ENV, str(blocker / "cache"))  # cannot be created
    assert "spa" in related._uriel().index  # read from lang2vec, the cache skipped
    assert not fresh_uriel.exists()


def test_distance_is_symmetric_and_zero_on_itself() -> None:
    assert related.language_distance("es", "es") == 0.0
    assert related.language_distance("no", "nb") == 0.0  # same ISO 639-3 language
    for a, b in [("es", "fr"), ("hi", "ur"), ("zh", "sw"), ("eu", "es")]:
        d = related.language_distance(a, b)
        assert d == related.language_distance(b, a)
        assert 0.0 < d <= 1.0
    assert related.language_distance("es", "pt") < related.language_distance("es", "ru")


def test_distance_matrix() -> None:
    langs = ["es", "fr", "pt", "ru", "uk"]
    table = related.distance_matrix(langs)
    assert list(table.index) == langs and list(table.columns) == langs
    values = table.to_numpy()
    np.testing.assert_array_equal(values, values.T)
    np.testing.assert_array_equal(np.diag(values), 0.0)
    assert table.loc["ru", "uk"] < table.loc["ru", "es"]


def test_acl_pool_picks_and_agreement() -> None:
    picks = related.pick_related(ACL_POOL, ACL_POOL)
    assert {p.target: p.related for p in picks} == OUR_ACL_POOL_PICKS
    assert all(p.target != p.related and not p.overridden for p in picks)
    summary = related.agreement_summary(picks)
    assert summary["acl"] == {"matches": 9, "total": 13}
    disagreements = {p.target: (p.related, p.paper_acl) for p in picks if not p.agrees_acl}
    assert disagreements == {
        "ar": ("el", "sw"),
        "el": ("bg", "es"),
        "vi": ("zh", "ru"),
        "zh": ("vi", "ar"),
    }


def test_ecai_pool_agreement() -> None:
    picks = related.pick_related(ACL_POOL, ECAI_POOL)
    assert related.agreement_summary(picks)["ecai"] == {"matches": 10, "total": 13}
    disagreements = {p.target: p.related for p in picks if not p.agrees_ecai}
    assert disagreements == {"el": "bg", "fr": "es", "tr": "bg"}


def test_sensible_pairs() -> None:
    romance = ["ca", "es", "fr", "it", "pt", "ro"]
    picks = {p.target: p.related for p in related.pick_related(romance, romance)}
    assert picks == {"ca": "pt", "es": "pt", "fr": "ca", "it": "ca", "pt": "ca", "ro": "it"}
    assert related.pick_related(["pt"], ["es", "fr", "it", "ru"])[0].related == "es"
    slavic = {
        p.target: p.related for p in related.pick_related(["ru", "uk"], ["ru", "uk", "bg", "pl"])
    }
    assert slavic == {"ru": "uk", "uk": "ru"}
    assert related.pick_related(["as"], ["en", "hi", "bg"])[0].related == "hi"


def test_papers_lists_are_packaged() -> None:
    papers = related.paper_related_languages()
    assert papers["acl"]["hi"] == "ur" and len(papers["acl"]) == 13
    assert papers["ecai"]["ar"] == "fa" and len(papers["ecai"]) == 13


def test_target_never_picks_itself() -> None:
    assert related.pick_related(["es"], ["es", "fr"])[0].related == "fr"
    with pytest.raises(LangarithError, match="no other language"):
        related.pick_related(["es"], ["es"])


def test_overrides_are_marked() -> None:
    picks = related.pick_related(["es", "fr"], ["es", "fr", "it", "pt"], overrides={"es": "it"})
    es, fr = picks
    assert (es.related, es.overridden) == ("it", True)
    assert es.distance == pytest.approx(related.language_distance("es", "it"))
    assert es.paper_acl == "fr" and es.agrees_acl is False and es.agrees_ecai is True
    assert (fr.related, fr.overridden) == ("pt", False)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"es": "ro"}, "'ro' is not in the pool"),
        ({"de": "it"}, "not a target"),
        ({"es": "es"}, "its own related language"),
    ],
)
def test_bad_overrides(overrides: dict[str, str], match: str) -> None:
    with pytest.raises(LangarithError, match=match):
        related.pick_related(["es"], ["es", "fr", "it"], overrides=overrides)


def test_write_related_table(tmp_path) -> None:
    picks = related.pick_related(["es", "sw", "as"], ["es", "fr", "it", "ar", "hi"], {"es": "fr"})
    out = related.write_related_table(picks, tmp_path / "sub" / "related.tsv")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == list(related.TABLE_COLUMNS)
    assert lines[1].split("\t")[:4] == ["es", "fr", f"{picks[0].distance:.4f}", "true"]
    # the URIEL pick (it) stays beside the override (fr, the ACL pair)
    assert lines[1].split("\t")[4:] == ["it", "fr", "true", "it", "false"]
    assert lines[2].split("\t")[1] == lines[2].split("\t")[4]  # not overridden: the same
    assert lines[3].split("\t")[5:] == ["", "", "", ""]  # as: in neither paper
    assert sorted(p.name for p in out.parent.iterdir()) == ["related.tsv"]  # no temp left
    table = pd.read_csv(out, sep="\t")
    assert table["overridden"].tolist() == [True, False, False]


def test_cli_prints_one_line_per_target(capsys, tmp_path) -> None:
    out = tmp_path / "related.tsv"
    argv = ["related", "--targets", "es,fr", "--pool", "es,fr,it,pt", "--override", "fr=it"]
    code = cli.main([*argv, "--out", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    d_es_pt = related.language_distance("es", "pt")
    d_fr_it = related.language_distance("fr", "it")
    assert lines == [f"es\tpt\t{d_es_pt:.4f}", f"fr\tit\t{d_fr_it:.4f}"]
    assert out.read_text(encoding="utf-8").startswith("target\trelated\tdistance\toverridden")


def test_cli_errors(capsys) -> None:
    assert cli.main(["related", "--targets", "xx", "--pool", "es,fr"]) == 1
    assert "'xx'" in capsys.readouterr().err
    assert cli.main(["related", "--targets", "es", "--pool", "fr", "--override", "es"]) == 1
    assert "TARGET=RELATED" in capsys.readouterr().err


def test_iso3_accepts_639_3_codes_and_refuses_a_second_spelling() -> None:
    """ISO 639-3 where no 639-1 code exists (as the config check); ``eng`` is ``en``."""
    assert related.iso3("ay") == "aym"  # a 639-1 code outside the project's table
    assert related.iso3("ace") == "ace"
    with pytest.raises(LangarithError, match="has the ISO 639-1 code 'en'; write 'en'"):
        related.iso3("eng")
    with pytest.raises(LangarithError, match="write 'ay'"):
        related.iso3("aym")
