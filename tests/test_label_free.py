"""Label-free λ selectors: hand-worked picks and entropies, labels never read, the
in-job run on the toy setup, the label_free table on synthetic files, config errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from toy_setup import build_toy_setup

from langarith import LangarithError
from langarith.data import prepare_demo_dataset, read_split
from langarith.evaluate import ScoreJob, run_job
from langarith.evaluate.jobs import Baseline, Curve
from langarith.evaluate.label_free import (
    LabelFreeRow,
    check_label_free,
    label_free_outputs,
    read_label_free,
    write_label_free,
)
from langarith.evaluate.label_free_run import (
    EntropySignal,
    prediction_entropy,
    prediction_positions,
    unlabelled_rows,
)
from langarith.evaluate.runner import LabelFreeRequest
from langarith.evaluate.score_files import ScoreRow, read_scores, write_scores
from langarith.evaluate.selectors import SELECTORS, lowest, nearest, pick, signals_of
from langarith.paths import DATA_DIR, TOKENS_DIR
from langarith.report.label_free import label_free_table
from langarith.train.tokens import tokenize_corpus

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- selectors


def test_lowest_signal_wins_and_ties_go_to_the_larger_lambda() -> None:
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    values = {0.0: 3.0, 0.25: 2.0, 0.5: 2.5, 0.75: 2.0, 1.0: 4.0}
    assert lowest(grid, values) == 0.75  # 0.25 and 0.75 tie at 2.0
    assert pick("mlm_loss", grid, {"mlm_loss": values}) == 0.75
    assert pick("entropy", grid, {"entropy": {**values, 0.5: 1.0}}) == 0.5


def test_fixed_half_is_the_grid_point_nearest_one_half() -> None:
    assert pick("fixed_0.5", [0.0, 0.05, 0.5, 0.55, 1.0], {}) == 0.5
    assert nearest([0.0, 0.4, 0.6, 1.0], 0.5) == 0.6  # equally near: the larger
    assert nearest([0.8, 0.9, 1.8], 0.5) == 0.8


def test_a_selector_refuses_missing_or_non_finite_signals() -> None:
    with pytest.raises(LangarithError, match=r"mlm_loss: no signal value at λ = \[1.0\]"):
        pick("mlm_loss", [0.0, 1.0], {"mlm_loss": {0.0: 1.0}})
    with pytest.raises(LangarithError, match="entropy: the signal is not finite"):
        pick("entropy", [0.0, 1.0], {"entropy": {0.0: 1.0, 1.0: math.nan}})
    with pytest.raises(LangarithError, match="Unknown label-free selector 'oracle'"):
        pick("oracle", [0.0], {})


def test_signals_are_those_the_selectors_need() -> None:
    assert signals_of(["fixed_0.5"]) == []
    assert signals_of(["entropy", "fixed_0.5", "mlm_loss"]) == ["mlm_loss", "entropy"]


# ----------------------------------------------------------------------------- entropy


def test_prediction_entropy_by_hand() -> None:
    uniform = torch.zeros(2, 4)  # two rows, 4 equally likely classes: log 4 each
    total, count = prediction_entropy(uniform)
    assert count == 2 and total == pytest.approx(2 * math.log(4))
    # p = (1/2, 1/2, 0): log 2; a certain prediction: 0
    logits = torch.tensor([[0.0, 0.0, -math.inf], [50.0, 0.0, 0.0]])
    total, count = prediction_entropy(logits)
    assert count == 2 and total == pytest.approx(math.log(2), abs=1e-12)
    # per token (NER): only the masked positions count
    tokens = torch.zeros(1, 3, 2)
    tokens[0, 1] = torch.tensor([100.0, 0.0])
    mask = torch.tensor([[True, True, False]])
    total, count = prediction_entropy(tokens, mask)
    assert count == 2 and total == pytest.approx(math.log(2))


class _Output:
    def __init__(self, **tensors: torch.Tensor) -> None:
        self.__dict__.update(tensors)


class _Batch:
    def __init__(self, index: list[int]) -> None:
        self.index = index


class _Split:
    def __init__(self, name: str, lengths: list[int]) -> None:
        self.name = name
        self.info = {"lengths": lengths}


def test_qa_entropy_is_over_each_windows_context_for_start_and_end() -> None:
    # one window of 4 tokens, context = tokens 1 and 2: start uniform over them (log 2),
    # end certain (0): the window's entropy is (log 2 + 0) / 2
    signal = EntropySignal("qa", [4], [[False, True, True, False]])
    start = torch.tensor([[9.0, 0.0, 0.0, 9.0]])
    end = torch.tensor([[0.0, 0.0, 60.0, 0.0]])
    signal(
        _Split("validation", [4]), _Output(start_logits=start, end_logits=end), _Batch([0]), ("p",)
    )
    signal(_Split("test", [4]), _Output(start_logits=end, end_logits=end), _Batch([0]), ("p",))
    point = type("P", (), {"key": lambda self: ("p",)})()
    assert signal.value(point) == pytest.approx(math.log(2) / 2)


class _Poisoned(dict):
    """A row whose label fields explode when read."""

    LABELS = ("label", "ner_tags", "answers")

    def __getitem__(self, key):
        if key in self.LABELS:
            raise AssertionError(f"label field {key!r} was read")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self.LABELS:
            raise AssertionError(f"label field {key!r} was read")
        return super().get(key, default)

    def items(self):
        raise AssertionError("a row was read whole")

    def values(self):
        raise AssertionError("a row was read whole")


@pytest.mark.parametrize(
    ("kind", "row"),
    [
        ("nli", {"id": "1", "premise": "a b c", "hypothesis": "a b", "label": 1}),
        ("ner", {"id": "1", "tokens": ["Ana", "vive"], "ner_tags": ["B-PER", "O"]}),
        (
            "qa",
            {
                "id": "1",
                "question": "who",
                "context": "Ana lives here",
                "answers": {"text": ["Ana"], "answer_start": [0]},
            },
        ),  # fmt: skip
    ],
)
def test_unlabelled_inputs_never_read_a_label(kind, row, toy) -> None:
    """Input fields only: a row whose labels raise when read is handled as any other,
    and the positions predicted are those of the same row with its labels removed."""
    tokenizer = _tokenizer(toy)
    poisoned = [_Poisoned(row)]
    stripped = unlabelled_rows(poisoned, kind)
    assert all(key not in stripped[0] for key in _Poisoned.LABELS)
    plain = {k: v for k, v in row.items() if k not in _Poisoned.LABELS}
    options = {"labels": ["O", "B-PER", "I-PER"] if kind == "ner" else None, "doc_stride": 32}
    assert prediction_positions(poisoned, kind, tokenizer, **options) == (
        prediction_positions([plain], kind, tokenizer, **options)
    )


def _tokenizer(toy):
    from langarith.backbone.folder import load_tokenizer

    return load_tokenizer(toy.backbone)


# ----------------------------------------------------------------------------- in the job

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
SETTINGS = {
    "selectors": ["mlm_loss", "entropy", "fixed_0.5"],
    "blocks": 4,
    "mask_seed": 0,
    "block_size": 32,
    "mlm_probability": 0.15,
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    toy = build_toy_setup(tmp_path_factory.mktemp("toy"), kinds=("ner",), rows=30)
    text = toy.root / DATA_DIR.format(dataset="wikipedia", lang="es")
    prepare_demo_dataset(
        "wikipedia", "es", text, options={"wikipedia_train_docs": 10, "validation_docs": 10}
    )
    tokens = tokenize_corpus(
        toy.backbone, text, toy.root / TOKENS_DIR.format(model="toy", lang="es")
    )
    toy.text, toy.tokens = text, tokens
    return toy


def _job(toy, data: Path, output: Path) -> ScoreJob:
    return ScoreJob(
        scenario="zero_shot", model="toy", task="ner", target="es", seed=1, kind="ner",
        backbone=str(toy.backbone), task_adapter=str(toy.task["ner"]), init=str(toy.init),
        data=str(data), adapters=(("en", str(toy.lang["en"])), ("it", str(toy.lang["it"]))),
        baselines=(Baseline("pEA", "en"), Baseline("pRA", "it")),
        curves=(Curve("LA", ("en", "it"), GRID),), output=str(output),
    )  # fmt: skip


def _run(toy, data: Path, out: Path) -> tuple[Path, Path]:
    scores = out / "scores.csv"
    lf = out / "label_free.csv"
    request = LabelFreeRequest(SETTINGS, lf, str(toy.tokens), str(toy.text))
    run_job(_job(toy, data, scores), output=scores, label_free=request, device="cpu")
    return scores, lf


@pytest.fixture(scope="module")
def runs(toy, tmp_path_factory):
    """The toy job with label-free λ, on its data and on the same data with every
    validation label changed (all NER tags O), and the plain job."""
    out = tmp_path_factory.mktemp("runs")
    data = toy.data_dir("ner", "es")
    relabelled = out / "relabelled"
    shutil.copytree(data, relabelled)
    rows = read_split(data, "validation")
    with open(relabelled / "validation.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({**row, "ner_tags": ["O"] * len(row["tokens"])}) + "\n")
    plain = out / "plain.csv"
    run_job(_job(toy, data, plain), output=plain, device="cpu")
    (out / "a").mkdir()
    (out / "b").mkdir()
    return {
        "plain": plain,
        "with": _run(toy, data, out / "a"),
        "relabelled": _run(toy, relabelled, out / "b"),
    }


def _frame(path: Path) -> pd.DataFrame:
    return pd.DataFrame([row.__dict__ for row in read_label_free(path)])


def test_the_score_csv_is_the_same_with_label_free_choices(runs) -> None:
    assert runs["with"][0].read_text() == runs["plain"].read_text()


def test_every_selector_picks_from_its_signal_and_is_scored_on_test(runs) -> None:
    frame = _frame(runs["with"][1])
    signals = frame[frame["kind"] == "signal"]
    for signal in ("mlm_loss", "entropy"):
        curve = signals[signals["metric"] == signal].set_index("lam")["value"]
        assert sorted(curve.index) == list(GRID)
        assert (curve > 0).all()
        chosen = frame[(frame["kind"] == "choice") & (frame["selector"] == signal)]
        assert set(chosen["lam"]) == {lowest(GRID, curve.to_dict())}
    choices = frame[frame["kind"] == "choice"]
    assert set(choices["selector"]) == set(SELECTORS)
    assert set(choices[choices["selector"] == "fixed_0.5"]["lam"]) == {0.5}
    assert set(choices["metric"]) == {"f1"}
    # a selector's test score is the labelled search's when both choose the same λ
    scores = read_scores(runs["with"][0])
    labelled = next(r for r in scores if r.method == "LA" and r.split == "test")
    same = choices[choices["lam"] == labelled.lam]
    assert (same["value"] == labelled.score).all()


def test_signals_and_choices_ignore_the_validation_labels(runs) -> None:
    """Every validation label changed: the validation scores change, the label-free
    signals and choices do not."""
    before, after = _frame(runs["with"][1]), _frame(runs["relabelled"][1])
    pd.testing.assert_frame_equal(before, after)
    val = [
        [r.score for r in read_scores(path) if r.split == "validation"]
        for path in (runs["with"][0], runs["relabelled"][0])
    ]
    assert val[0] != val[1]


# ----------------------------------------------------------------------------- table


def _score(scenario, task, target, seed, method, lam, split, score, metric="f1") -> ScoreRow:
    return ScoreRow(
        scenario=scenario, model="m", task=task, target=target, seed=seed, method=method,
        adapters="en,it", lam=lam, top_k=None, split=split, metric=metric, score=score,
    )  # fmt: skip


def _choice(task, target, seed, selector, lam, value, metric="f1") -> LabelFreeRow:
    return LabelFreeRow(
        "zero_shot", "m", task, target, seed, "LA", "en,it", selector, lam, "choice", metric, value
    )


def test_label_free_table_on_synthetic_files(tmp_path) -> None:
    scores, choices = [], []
    # es: labelled λ 0.7 scores 60 on test; mlm_loss picks 0.7 too, entropy 0.2 (50),
    # fixed 0.5 (58); it: labelled 40, mlm 36, entropy 44 (better than labelled), fixed 40
    for target, labelled, picks in (
        ("es", 60.0, {"mlm_loss": (0.7, 60.0), "entropy": (0.2, 50.0), "fixed_0.5": (0.5, 58.0)}),
        ("it", 40.0, {"mlm_loss": (0.1, 36.0), "entropy": (0.9, 44.0), "fixed_0.5": (0.5, 40.0)}),
    ):
        path = tmp_path / "scores" / f"{target}.csv"
        rows = [
            _score("zero_shot", "ner", target, 1, "LA", 0.7, "test", labelled),
            _score("zero_shot", "ner", target, 1, "LA", 0.7, "validation", 70.0),
            _score("zero_shot", "ner", target, 1, "pEA", None, "test", 1.0),
        ]
        write_scores(rows, path)
        scores.append(str(path))
        lf = tmp_path / "label_free" / f"{target}.csv"
        write_label_free(
            [_choice("ner", target, 1, s, lam, v) for s, (lam, v) in picks.items()], lf
        )
        choices.append(str(lf))
    long, summary = label_free_table(scores, choices)
    es = long[(long["target"] == "es")].set_index("selector")
    assert es.loc["mlm_loss", "regret"] == 0.0
    assert es.loc["entropy", "regret"] == 10.0
    assert es.loc["fixed_0.5", "labelled"] == 60.0 and es.loc["fixed_0.5", "regret"] == 2.0
    mean = summary.set_index("selector")["mean_regret"]
    assert mean["mlm_loss"] == pytest.approx(2.0)
    assert mean["entropy"] == pytest.approx(3.0)  # (10 + (40 - 44)) / 2
    assert mean["fixed_0.5"] == pytest.approx(1.0)


def test_label_free_table_refuses_a_choice_without_its_labelled_row(tmp_path) -> None:
    path = tmp_path / "s.csv"
    write_scores([_score("zero_shot", "ner", "es", 1, "pEA", None, "test", 1.0)], path)
    lf = tmp_path / "lf.csv"
    write_label_free([_choice("ner", "es", 1, "mlm_loss", 0.5, 3.0)], lf)
    with pytest.raises(LangarithError, match="no labelled test row of LA"):
        label_free_table([str(path)], [str(lf)])


def test_a_damaged_label_free_csv_is_refused_before_any_value_is_read(tmp_path) -> None:
    lf = tmp_path / "lf.csv"
    write_label_free([_choice("ner", "es", 1, s, 0.5, 3.0) for s in ("mlm_loss", "entropy")], lf)
    assert [r.selector for r in read_label_free(lf)] == ["mlm_loss", "entropy"]
    whole = lf.read_bytes()
    lf.write_bytes(whole[:-9])  # cut mid-row: the last value still parses as a number
    with pytest.raises(LangarithError, match=r"label-free CSV .* line 3 \(no final newline\)"):
        read_label_free(lf)
    lf.write_bytes(whole.replace(b"entropy", b"entr\xffpy"))
    with pytest.raises(LangarithError, match="line 3 is not UTF-8"):
        read_label_free(lf)
    lf.write_bytes(whole + b"zero_shot,m\n")
    with pytest.raises(LangarithError, match="line 4 has 2 values"):
        read_label_free(lf)


# ----------------------------------------------------------------------------- config


def _demo() -> dict:
    return yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())


def test_schema_lists_the_registered_selectors() -> None:
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    items = schema["properties"]["label_free"]["properties"]["selectors"]["items"]
    assert items["enum"] == list(SELECTORS)


def test_demo_plans_one_label_free_file_per_zero_shot_job() -> None:
    config = _demo()
    outputs = label_free_outputs(config)
    assert outputs and all(p.startswith("results/label_free/zero_shot/") for p in outputs)
    check_label_free(config)
    assert label_free_outputs({**config, "label_free": None}) == []


@pytest.mark.parametrize(
    ("block", "languages", "message"),
    [
        ({"selectors": ["oracle"], "scenarios": ["zero_shot"]}, None,
         r"label_free.selectors: unknown selector\(s\) \['oracle'\]"),
        ({"scenarios": ["ties", "zero_shot", "romance_x"]}, None,
         r"label_free.scenarios lists \['romance_x'\], which the config does not run"),
        ({"scenarios": ["zero_shot"]}, ["en", "de", "es", "it", "pt", "bg"],
         r"mlm_loss needs target-language text, but target\(s\) \['ru'\] are not in languages"),
    ],
)  # fmt: skip
def test_config_errors_before_any_job(block, languages, message) -> None:
    config = {**_demo(), "label_free": block}
    if languages is not None:
        config["languages"] = languages
        config["related"] = {**config["related"], "pool": [x for x in languages if x != "en"]}
    with pytest.raises(LangarithError, match=message):
        check_label_free(config)
