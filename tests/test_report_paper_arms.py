"""paper_comparison for the arms: full-model task arithmetic, TLR and X-MOD published
numbers matched to synthetic score files (no training)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import yaml

from langarith.arms import load_arms
from langarith.report import paper as paper_numbers
from langarith.report import tables
from langarith.report.scores import read_scores

ROOT = Path(__file__).resolve().parents[1]
AMERICAS = "aym bzd cni gn hch nah oto quy shp tar".split()
TLR_XNLI = "ar hi sw th ur zh".split()
XMOD_XNLI = "en ar fr hi ru th vi sw".split()
HEADER = ["scenario", "model", "task", "target", "seed", "method", "adapters", "lambda",
          "top_k", "split", "metric", "score"]  # fmt: skip


def _write(root: Path, scenario, model, task, target, seed, rows) -> Path:
    """One score CSV at the workflow's path; ``rows``: (method, λ, split, metric, score)."""
    path = root / "scores" / scenario / model / task / target / f"seed{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for method, lam, split, metric, score in rows:
            writer.writerow(
                [scenario, model, task, target, seed, method, target, lam, "", split, metric, score]
            )
    return path


def _row(frame, **where):
    mask = True
    for column, value in where.items():
        mask = mask & (frame[column] == value)
    found = frame[mask]
    assert len(found) == 1, (where, found)
    return found.iloc[0]


def _fullft_scores(root: Path, targets, seeds=(1,), task="anli") -> tuple[list[Path], dict]:
    """+TGT scores: a validation curve at λ 0.1/0.2 and the test score at the chosen λ
    (the test score at the other λ would differ: a wrong pick shows)."""
    paths, tests = [], {}
    for seed in seeds:
        for i, target in enumerate(targets):
            test = 40.0 + i + seed
            tests[(target, seed)] = test
            rows = [
                ("+TGT", 0.1, "validation", "accuracy", 30.0),
                ("+TGT", 0.2, "validation", "accuracy", 35.0),
                ("+TGT", 0.2, "test", "accuracy", test),
            ]
            paths.append(_write(root, "ta-tgt", "xlmr", task, target, seed, rows))
    return paths, tests


def test_every_arm_number_of_issues_16_and_17_is_in_the_resources():
    papers = paper_numbers.load()
    published = {
        (r.paper, r.table, r.model, r.task, r.method, r.language): r.score
        for r in papers.itertuples(index=False)
    }
    expected = {
        # issue 16: Table 2 (XLM-R base), Table 7, Table 4 (large)
        ("ta-crosslingual", "Table 2", "xlmr", "xnli", "MODEL"): 73.13,
        ("ta-crosslingual", "Table 2", "xlmr", "xnli", "+SRC"): 73.89,
        ("ta-crosslingual", "Table 2", "xlmr", "xnli", "+TGT"): 74.79,
        ("ta-crosslingual", "Table 2", "xlmr", "xnli", "+SRC+TGT"): 75.16,
        ("ta-crosslingual", "Table 2", "xlmr", "xnli", "−SRC+TGT"): 73.19,
        ("ta-crosslingual", "Table 2", "xlmr", "americasnli", "MODEL"): 38.52,
        ("ta-crosslingual", "Table 2", "xlmr", "americasnli", "+TGT"): 50.05,
        ("ta-crosslingual", "Table 2", "xlmr", "americasnli", "ALL-MULTI"): 48.31,
        ("ta-crosslingual", "Table 2", "xlmr", "americasnli", "SFT"): 50.75,
        ("ta-crosslingual", "Table 2", "xlmr", "nusax", "MODEL"): 69.05,
        ("ta-crosslingual", "Table 2", "xlmr", "nusax", "+TGT"): 80.43,
        ("ta-crosslingual", "Table 2", "xlmr", "nusax", "SFT"): 77.95,
        ("ta-crosslingual", "Table 7", "xlmr", "marc", "MODEL"): 78.80,
        ("ta-crosslingual", "Table 7", "xlmr", "marc", "−SRC+TGT"): 79.02,
        ("ta-crosslingual", "Table 4", "xlmr-large", "americasnli", "MODEL"): 40.25,
        ("ta-crosslingual", "Table 4", "xlmr-large", "americasnli", "+TGT"): 52.46,
        ("ta-crosslingual", "Table 4", "xlmr-large", "nusax", "MODEL"): 74.17,
        ("ta-crosslingual", "Table 4", "xlmr-large", "nusax", "+TGT"): 83.43,
        # issue 17: Table 2 (mBERT) MAD-X -> ALL-MULTI and the other baselines
        ("tlr", "Table 2", "mbert", "masakhaner", "MAD-X"): 67.96,
        ("tlr", "Table 2", "mbert", "masakhaner", "ALL-MULTI"): 69.86,
        ("tlr", "Table 2", "mbert", "ud", "MAD-X"): 33.59,
        ("tlr", "Table 2", "mbert", "ud", "ALL-MULTI"): 36.89,
        ("tlr", "Table 2", "mbert", "ud", "BAD-X"): 32.66,
        ("tlr", "Table 2", "mbert", "americasnli", "MAD-X"): 43.49,
        ("tlr", "Table 2", "mbert", "americasnli", "ALL-MULTI"): 49.80,
        ("tlr", "Table 2", "mbert", "americasnli", "BAD-X"): 46.42,
        ("tlr", "Table 2", "mbert", "xnli", "MAD-X"): 52.76,
        ("tlr", "Table 2", "mbert", "xnli", "ALL-MULTI"): 58.33,
        ("tlr", "Table 2", "mbert", "xnli", "BILINGUAL"): 59.12,
        ("tlr", "Table 2", "mbert", "xquad", "MAD-X"): 51.91,
        ("tlr", "Table 2", "mbert", "xquad", "ALL-MULTI"): 54.17,
        ("tlr", "Table 2", "mbert", "xquad", "TARGET"): 54.75,
        ("tlr", "Table 2", "mbert", "tydiqa", "MAD-X"): 51.26,
        ("tlr", "Table 2", "mbert", "tydiqa", "ALL-MULTI"): 54.46,
        ("tlr", "Table 2", "mbert", "tydiqa", "TARGET"): 55.51,
        ("tlr", "Table 4", "mbert", "masakhaner", "MAD-X"): 68.27,
        ("tlr", "Table 4", "mbert", "masakhaner", "ALL-MULTI"): 69.10,
        ("tlr", "Table 4", "mbert", "americasnli", "MAD-X"): 44.66,
        ("tlr", "Table 4", "mbert", "americasnli", "ALL-MULTI"): 49.10,
        ("tlr", "Table 6", "xlmr", "xnli", "MAD-X"): 64.52,
        ("tlr", "Table 6", "xlmr", "xnli", "ALL-MULTI"): 65.95,
        ("tlr", "Table 6", "xlmr", "americasnli", "MAD-X"): 48.25,
        ("tlr", "Table 6", "xlmr", "americasnli", "ALL-MULTI"): 48.31,
    }
    for key, score in expected.items():
        assert published.get((*key, "AVG")) == pytest.approx(score), key
    arm_rows = papers[papers["paper"].isin(["ta-crosslingual", "tlr"])]
    assert (arm_rows["languages"].str.split().str.len() > 0).all()  # every AVG says its set


def test_tlr_registers_the_same_published_averages_as_the_resources():
    """The TLR table's PUBLISHED column and paper_numbers_tlr.csv must not drift apart."""
    from langarith.tlr.register import PUBLISHED

    tasks = {"ner": "masakhaner", "dp": "ud", "americasnli": "americasnli", "nli": "xnli",
             "qa": "xquad", "qa_tydiqa": "tydiqa"}  # fmt: skip
    papers = paper_numbers.load()
    tlr = papers[(papers["paper"] == "tlr") & (papers["table"] != "Table 3")]
    for (model, task, method), score in PUBLISHED.items():
        table = {"mbert": ["Table 2"], "mbert-3seeds": ["Table 4"], "xlmr": ["Table 6"]}[model]
        hit = tlr[
            tlr["table"].isin(table)
            & (tlr["model"] == model.removesuffix("-3seeds"))
            & (tlr["task"] == tasks[task])
            & (tlr["method"] == method)
        ]
        assert list(hit["score"]) == [pytest.approx(score)], (model, task, method)


def test_fullft_average_matches_over_the_papers_languages_only(tmp_path):
    paths, tests = _fullft_scores(tmp_path, [*AMERICAS, "es"])  # es: not in Table 2's set
    table = tables.paper_comparison_table(
        read_scores(paths), {"xlmr": "xlmr"}, task_datasets={"ta-tgt": {"anli": "americasnli"}}
    )
    row = _row(table, paper="ta-crosslingual", table="Table 2", task="americasnli", method="+TGT")
    expected = sum(tests[(t, 1)] for t in AMERICAS) / len(AMERICAS)
    assert row["run_mean"] == pytest.approx(expected)
    assert row["run_languages"] == len(AMERICAS)
    assert row["difference"] == pytest.approx(expected - 50.05)
    assert row["comparable"], row["why_not"]
    # the task name alone does not match without the dataset mapping
    unmapped = tables.paper_comparison_table(read_scores(paths), {"xlmr": "xlmr"})
    row = _row(unmapped, paper="ta-crosslingual", table="Table 2", task="americasnli",
               method="+TGT")  # fmt: skip
    assert math.isnan(row["run_mean"]) and not row["comparable"]
    # XLM-R large is another backbone: Table 4 is not matched by the base run
    large = _row(table, table="Table 4", task="americasnli", method="+TGT")
    assert "xlmr-large" in large["why_not"] and math.isnan(large["run_mean"])


def test_fullft_average_over_fewer_languages_is_not_comparable(tmp_path):
    paths, _ = _fullft_scores(tmp_path, AMERICAS[:7], seeds=(1,))
    table = tables.paper_comparison_table(
        read_scores(paths), {"xlmr": "xlmr"}, task_datasets={"ta-tgt": {"anli": "americasnli"}}
    )
    row = _row(table, paper="ta-crosslingual", table="Table 2", task="americasnli", method="+TGT")
    assert not row["comparable"]
    assert "(7 of 10 languages)" in row["why_not"]
    assert row["why_not"].endswith("the run lacks quy shp tar")


def test_fullft_seeds_differ_from_the_papers_single_run(tmp_path):
    paths, tests = _fullft_scores(tmp_path, AMERICAS, seeds=(1, 2))
    table = tables.paper_comparison_table(
        read_scores(paths), {"xlmr": "xlmr"}, task_datasets={"ta-tgt": {"anli": "americasnli"}}
    )
    row = _row(table, paper="ta-crosslingual", table="Table 2", task="americasnli", method="+TGT")
    per_seed = [sum(tests[(t, s)] for t in AMERICAS) / len(AMERICAS) for s in (1, 2)]
    assert row["run_mean"] == pytest.approx(sum(per_seed) / 2)
    assert row["run_seeds"] == 2
    assert not row["comparable"] and "2 seeds, the paper 1" in row["why_not"]


def test_tlr_runs_match_table_2_and_published_only_rows_say_why(tmp_path):
    paths = []
    for method, scenario, base in (
        ("MAD-X", "tlr-madx", 50.0),
        ("BILINGUAL", "tlr-bilingual", 60.0),
    ):
        for i, target in enumerate(TLR_XNLI):
            rows = [(method, "", "test", "accuracy", base + i)]
            paths.append(_write(tmp_path, scenario, "mbert", "nli", target, 1, rows))
    table = tables.paper_comparison_table(
        read_scores(paths), {"mbert": "mbert"}, task_datasets={"": {"nli": "xnli"}}
    )
    madx = _row(table, paper="tlr", table="Table 2", task="xnli", method="MAD-X")
    assert madx["run_mean"] == pytest.approx(52.5) and madx["comparable"], madx["why_not"]
    assert madx["difference"] == pytest.approx(52.5 - 52.76)
    bilingual = _row(table, paper="tlr", table="Table 2", task="xnli", method="BILINGUAL")
    assert bilingual["run_mean"] == pytest.approx(62.5) and bilingual["comparable"]
    all_multi = _row(table, paper="tlr", table="Table 2", task="xnli", method="ALL-MULTI")
    assert not all_multi["comparable"] and all_multi["why_not"] == "not in the run"
    badx = _row(table, paper="tlr", table="Table 2", task="americasnli", method="BAD-X")
    assert badx["why_not"].startswith("published only:")
    sft = _row(table, paper="ta-crosslingual", task="nusax", method="SFT")
    assert sft["why_not"].startswith("published only:") and not sft["comparable"]
    shared = table[(table["paper"] == "xmod") & (table["method"] == "SHARED")]
    assert len(shared) and shared["why_not"].str.startswith("published only:").all()
    # Table 4 (three seeds) and Table 6 (XLM-R) are not this run's setup
    t6 = _row(table, paper="tlr", table="Table 6", task="xnli", method="MAD-X")
    assert "xlmr" in t6["why_not"]


def test_xmod_rows_match_the_released_checkpoint(tmp_path):
    xmod = {"name": "60-265k", "hub": "facebook/xmod-base-60-265k"}
    config = {
        "models": [{"name": "mbert", "hub": "bert-base-multilingual-cased"}],
        "xmod": {"models": [xmod]},
    }
    backbones = paper_numbers.paper_backbones(config)
    assert backbones == {"mbert": "mbert", "60-265k": "xmod-base-60-265k"}
    paths = []
    for seed in range(1, 6):
        for i, target in enumerate(XMOD_XNLI):
            rows = [("X-MOD", "", "test", "accuracy", 70.0 + i)]
            paths.append(_write(tmp_path, "xmod", "60-265k", "nli", target, seed, rows))
    table = tables.paper_comparison_table(read_scores(paths), backbones)
    avg = _row(table, paper="xmod", table="Table 2", task="nli", method="X-MOD", language="AVG")
    assert avg["run_mean"] == pytest.approx(70.0 + 3.5) and avg["comparable"], avg["why_not"]
    ar = _row(table, paper="xmod", table="Table 2", task="nli", method="X-MOD", language="ar")
    assert ar["run_mean"] == pytest.approx(71.0) and ar["run_seeds"] == 5
    added = _row(table, paper="xmod", table="Table 3", task="nli", method="X-MOD", language="AVG")
    assert math.isnan(added["run_mean"]) and not added["comparable"]


def test_paper_comparison_reads_the_arms_scores_and_task_datasets():
    load_arms()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    scores = tables.paper_inputs(config, "paper_comparison")["scores"]
    assert any("/scores/ta-tgt/xlmr/xnli/" in p for p in scores)
    assert any("/scores/tlr-all-multi/mbert/nli/" in p for p in scores)
    assert any("/scores/xmod/60-265k/" in p for p in scores)
    options = tables.paper_options(config)
    assert options["task_datasets"]["ta-tgt"]["xnli"] == "xnli"
    assert options["task_datasets"][""]["qa"] == "xquad"
    assert options["backbones"]["60-265k"] == "xmod-base-60-265k"
