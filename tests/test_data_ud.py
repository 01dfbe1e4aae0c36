"""The UD 2.7 loader (dataset ``ud``): CoNLL-U fixtures and hub-format rows, offline."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from langarith import LangarithError
from langarith.data import DATASETS, prepare_demo_dataset, read_split, verify_dataset
from langarith.data.real import prepare_real_dataset
from langarith.data.ud import UD_TREEBANKS, iter_conllu, rows_from_hub

# A sentence with a multiword token (1-2 "don't" = do + n't), an empty node (3.1) and
# subtyped relations (nsubj:pass, obl:tmod, aux:pass) that must be cut.
SENTENCE = """\
# sent_id = ewt-1
# text = Don't stop it was said today .
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\t_\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_
3\tstop\tstop\tVERB\t_\t_\t0\troot\t_\t_
3.1\tgo\tgo\tVERB\t_\t_\t_\t_\t3:conj\t_
4\tit\tit\tPRON\t_\t_\t6\tnsubj:pass\t_\t_
5\twas\tbe\tAUX\t_\t_\t6\taux:pass\t_\t_
6\tsaid\tsay\tVERB\t_\t_\t3\tparataxis\t_\t_
7\ttoday\ttoday\tNOUN\t_\t_\t6\tobl:tmod\t_\t_
8\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

"""


def conllu(sentences: list[list[tuple[str, int, str]]]) -> str:
    """CoNLL-U text of (form, head, relation) sentences, without sent_id comments."""
    blocks = []
    for words in sentences:
        lines = [
            f"{i}\t{form}\t_\t_\t_\t_\t{head}\t{rel}\t_\t_"
            for i, (form, head, rel) in enumerate(words, start=1)
        ]
        blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks)


SHORT = [[("dogs", 2, "nsubj"), ("bark", 0, "root")], [("cats", 2, "nsubj"), ("sleep", 0, "root")]]


def test_conllu_words_heads_and_universal_relations() -> None:
    rows = list(iter_conllu(SENTENCE.splitlines(keepends=True), "en-train", "fixture"))
    assert rows == [
        {
            "id": "ewt-1",
            "tokens": ["Do", "n't", "stop", "it", "was", "said", "today", "."],
            "heads": [3, 3, 0, 6, 6, 3, 6, 3],
            "deprels": ["aux", "advmod", "root", "nsubj", "aux", "parataxis", "obl", "punct"],
        }
    ]
    # no blank line at the end, no sent_id: the last sentence still counts, named by order
    text = conllu(SHORT).rstrip("\n")
    ids = [r["id"] for r in iter_conllu(text.splitlines(), "af-test", "fixture")]
    assert ids == ["af-test-0", "af-test-1"]


def test_conllu_refuses_broken_lines_and_unknown_relations() -> None:
    with pytest.raises(LangarithError, match=r"fixture:1: 3 tab-separated columns"):
        list(iter_conllu(["1\tdogs\t_\n"], "x", "fixture"))
    bad = conllu([[("dogs", 2, "subject"), ("bark", 0, "root")]])
    with pytest.raises(LangarithError, match="'subject' is not a UD v2 universal relation"):
        list(iter_conllu(bad.splitlines(), "x", "fixture"))


def test_hub_rows_drop_multiword_tokens_and_empty_nodes() -> None:
    row = {
        "idx": "s1",
        "tokens": ["Don't", "Do", "n't", "stop", "go"],
        "head": [None, "3", "3", "0", "_"],
        "deprel": ["_", "aux", "advmod:neg", "root", "_"],
    }
    assert list(rows_from_hub([row], "en-test", "hub")) == [
        {
            "id": "s1",
            "tokens": ["Do", "n't", "stop"],
            "heads": [3, 3, 0],
            "deprels": ["aux", "advmod", "root"],
        }
    ]


def _release(root: Path, treebank: str, splits: dict[str, str]) -> Path:
    """A UD release's treebank folder: ``UD_X/<treebank>-ud-<split>.conllu``."""
    folder = root / f"UD_{treebank}"
    folder.mkdir(parents=True)
    for name, text in splits.items():
        (folder / f"{treebank}-ud-{name}.conllu").write_text(text, encoding="utf-8")
    return root


def test_local_release_folder_becomes_our_format(tmp_path: Path) -> None:
    release = _release(
        tmp_path / "ud-2.7",
        "en_ewt",
        {"train": SENTENCE + conllu(SHORT), "dev": conllu(SHORT[:1]), "test": conllu(SHORT)},
    )
    _release(release, "bm_crb", {"test": conllu(SHORT)})
    en = prepare_real_dataset("ud", "en", tmp_path / "en", options={"local_path": str(release)})
    manifest = verify_dataset(en)
    assert manifest["labels"] == list(DATASETS["ud"].labels) and len(manifest["labels"]) == 37
    assert {s: e["rows"] for s, e in manifest["splits"].items()} == {
        "train": 3,
        "validation": 1,
        "test": 2,
    }
    assert manifest["source"].startswith("local:") and manifest["revision"].startswith("sha256:")
    assert read_split(en, "train")[0]["deprels"][3] == "nsubj"
    # a test-only treebank: empty train and validation, the same files as every other
    bm = prepare_real_dataset("ud", "bm", tmp_path / "bm", options={"local_path": str(release)})
    rows = {s: e["rows"] for s, e in verify_dataset(bm)["splits"].items()}
    assert rows == {"train": 0, "validation": 0, "test": 2}
    capped = prepare_real_dataset(
        "ud", "en", tmp_path / "cap", options={"local_path": str(release), "max_rows": 1}
    )
    assert verify_dataset(capped)["splits"]["train"]["rows"] == 1


def test_local_mapping_and_refusals(tmp_path: Path) -> None:
    test_file = tmp_path / "wo.conllu"
    test_file.write_text(conllu(SHORT), encoding="utf-8")
    out = prepare_real_dataset(
        "ud", "wo", tmp_path / "wo", options={"local_path": {"test": str(test_file)}}
    )
    assert [r["tokens"] for r in read_split(out, "test")] == [["dogs", "bark"], ["cats", "sleep"]]
    with pytest.raises(LangarithError, match="no \\*-ud-train/dev/test.conllu files of af_"):
        prepare_real_dataset("ud", "af", tmp_path / "af", options={"local_path": str(tmp_path)})
    with pytest.raises(LangarithError, match="does not cover language 'de'"):
        prepare_real_dataset("ud", "de", tmp_path / "de", options={"local_path": str(tmp_path)})
    with pytest.raises(LangarithError, match="no generator"):
        prepare_demo_dataset("ud", "en", tmp_path / "demo")
    bad = tmp_path / "bad.conllu"
    bad.write_text(conllu([[("dogs", 3, "nsubj"), ("bark", 0, "root")]]), encoding="utf-8")
    with pytest.raises(LangarithError, match="a head outside 0..2"):
        prepare_real_dataset("ud", "wo", tmp_path / "w2", options={"local_path": {"test": bad}})
    assert not (tmp_path / "w2").exists()


def test_hub_mirror_of_the_parquet_export(tmp_path: Path) -> None:
    """The hub code path, on a local folder laid out like the parquet export."""
    mirror = tmp_path / "mirror"
    treebank = UD_TREEBANKS["myv"][0]
    (mirror / treebank / "test").mkdir(parents=True)
    table = pa.table(
        {
            "idx": ["m1", "m2"],
            "tokens": [["Mon", "moran"], ["Ton", "ashtyt", "."]],
            "head": [["2", "0"], ["2", "0", "2"]],
            "deprel": [["nsubj", "root"], ["nsubj", "root", "punct"]],
        }
    )
    pq.write_table(table, mirror / treebank / "test" / "0000.parquet")
    out = prepare_real_dataset("ud", "myv", tmp_path / "myv", options={"hub_path": str(mirror)})
    manifest = verify_dataset(out)
    assert {s: e["rows"] for s, e in manifest["splits"].items()} == {
        "train": 0,
        "validation": 0,
        "test": 2,
    }
    assert read_split(out, "test")[1] == {
        "id": "m2",
        "tokens": ["Ton", "ashtyt", "."],
        "heads": [2, 0, 2],
        "deprels": ["nsubj", "root", "punct"],
    }
