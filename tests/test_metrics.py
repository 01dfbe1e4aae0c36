"""Tests of langarith.metrics on hand-worked examples."""

from __future__ import annotations

import pytest

from langarith import LangarithError
from langarith.metrics import (
    TASK_METRICS,
    accuracy,
    exact_match_score,
    f1_score,
    ner_f1,
    normalize_answer,
    squad_scores,
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  A  cat, an apple;\tTHE end. ", "cat apple end"),
        ("the theatre", "theatre"),  # articles only as whole words
        ("Anne's (1999) car-park", "annes 1999 carpark"),  # punctuation removed, not split
        ("北京。", "北京。"),  # non-ASCII punctuation is kept
        ("¿Qué?", "¿qué"),
        ("Ça  va", "ça va"),
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_exact_match() -> None:
    assert exact_match_score("the Eiffel Tower", "Eiffel tower.") == 1.0
    assert exact_match_score("Eiffel", "Eiffel Tower") == 0.0
    assert exact_match_score("北京", "北京。") == 0.0  # the full stop is not ASCII


def test_f1_partial_overlap() -> None:
    # pred tokens: big red car (3); ref tokens: red car in garage (4); overlap 2
    # P = 2/3, R = 1/2, F1 = 2PR/(P+R) = 4/7
    assert f1_score("the big red car", "a red car in the garage") == pytest.approx(4 / 7)
    # tokens count with multiplicity: overlap {red: 1, car: 1} = 2, P = 2/3, R = 1 -> 0.8
    assert f1_score("red red car", "red car") == pytest.approx(0.8)


def test_f1_no_overlap_and_empty() -> None:
    assert f1_score("Paris", "London") == 0.0
    assert f1_score("", "London") == 0.0
    # both normalise to nothing: EM 1 but F1 0, as in the SQuAD v1.1 script
    assert exact_match_score("the", "a") == 1.0
    assert f1_score("the", "a") == 0.0


def test_squad_scores_max_over_references_and_missing_predictions() -> None:
    references = {
        "q1": ["Denver Broncos", "Broncos"],
        "q2": ["a red car in the garage", "a garage"],
        "q3": ["Paris"],
    }
    predictions = {"q1": "the Broncos", "q2": "the big red car", "other": "ignored"}
    # q1: EM 1 (second reference), F1 1; q2: EM 0, F1 max(4/7, 0) = 4/7; q3: missing -> 0
    scores = squad_scores(predictions, references)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 4 / 7) / 3)
    assert squad_scores({"q3": "Paris."}, {"q3": ["Paris"]}) == {"exact_match": 100.0, "f1": 100.0}


def test_squad_scores_errors() -> None:
    with pytest.raises(LangarithError, match="no reference"):
        squad_scores({}, {})
    with pytest.raises(LangarithError, match="'q1'"):
        squad_scores({"q1": "x"}, {"q1": []})
    with pytest.raises(LangarithError, match="list of reference answers"):
        squad_scores({"q1": "x"}, {"q1": "x"})


def test_ner_f1_hand_worked() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "I-ORG", "O"]]
    # gold entities: PER(0-1), LOC(3), ORG(0) -> 3; predicted: PER(0-1), ORG(0-1) -> 2
    # correct: PER only -> P = 1/2, R = 1/3, F1 = 2PR/(P+R) = 0.4
    assert ner_f1(gold, pred) == pytest.approx(40.0)
    assert ner_f1(gold, gold) == pytest.approx(100.0)


def test_ner_f1_default_mode_accepts_leading_inside_tag() -> None:
    # default (conlleval-like) mode reads I-PER I-PER as one PER entity; strict IOB2
    # mode would not
    assert ner_f1([["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]) == pytest.approx(100.0)


def test_ner_f1_errors() -> None:
    with pytest.raises(LangarithError, match="no sentences"):
        ner_f1([], [])
    with pytest.raises(LangarithError, match="1 gold sentences but 2"):
        ner_f1([["O"]], [["O"], ["O"]])
    with pytest.raises(LangarithError, match="sentence 0 has 2 gold tags but 1"):
        ner_f1([["O", "O"]], [["O"]])


def test_accuracy() -> None:
    assert accuracy([0, 1, 2, 1], [0, 1, 1, 1]) == pytest.approx(75.0)
    assert accuracy(["entailment"], ["entailment"]) == 100.0
    with pytest.raises(LangarithError, match="no examples"):
        accuracy([], [])
    with pytest.raises(LangarithError, match="2 gold labels but 1"):
        accuracy([0, 1], [0])


def test_task_metrics() -> None:
    assert TASK_METRICS == {
        "ner": "f1",
        "nli": "accuracy",
        "qa": "f1",
        "dp": "las",
        "sentiment": "accuracy",
    }
