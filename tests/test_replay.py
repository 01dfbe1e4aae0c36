"""Tests of langarith.evaluate.replay: the λ engine's checked TorchScript replay and lanes.

The replay must give, for every batch and every point written into the model after the
trace was recorded, the eager forward's outputs bit for bit; a batch whose replay does
not match (a data-dependent branch in the model's Python) must stay eager; lanes must
hand outputs back in batch order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_setup import build_toy_setup
from transformers.modeling_outputs import SequenceClassifierOutput

from langarith.data import read_split
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point
from langarith.evaluate.replay import ForwardRunner
from langarith.evaluate.tasks import Batch

LENGTHS = {"qa": {"max_length": 96, "doc_stride": 32}}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    torch.set_num_threads(1)
    return build_toy_setup(tmp_path_factory.mktemp("toy"), rows=40)


def _engine(toy, kind: str) -> LambdaGridEngine:
    adapters = {"en": toy.lang["en"], "it": toy.lang["it"]}
    return LambdaGridEngine.load(toy.backbone, toy.task[kind], toy.init, adapters, kind)


def _split(engine: LambdaGridEngine, toy, kind: str, max_tokens: int = 512):
    rows = read_split(toy.data_dir(kind, "es"), "validation")
    return engine.encode("validation", rows, max_tokens=max_tokens, **LENGTHS.get(kind, {}))


def _eager(model: torch.nn.Module, batches: list[Batch]) -> list:
    with torch.inference_mode():
        return [model(**batch.inputs) for batch in batches]


def _same(first, second) -> bool:
    return list(first.keys()) == list(second.keys()) and all(
        torch.equal(first[key], second[key]) for key in first
    )


@pytest.mark.parametrize("kind", ["ner", "nli", "qa"])
def test_replay_equals_the_eager_pass_at_points_written_after_the_trace(toy, kind):
    engine = _engine(toy, kind)
    split = _split(engine, toy, kind)
    assert len(split.batches) > 1  # shapes other than the traced batch's are replayed
    runner = ForwardRunner(engine.task_model.model, engine.task_model.device, lanes=1)
    engine.apply(Point.pair("en", "it", 0.2))
    for _ in range(runner.check_after + 1):  # eager passes, then the checking pass
        list(runner.run(split.batches))
    assert runner.replayed_batches == 0
    for lam in (0.9, 0.0, 0.55):
        engine.apply(Point.pair("en", "it", lam))
        replayed = list(runner.run(split.batches))
        eager = _eager(engine.task_model.model, split.batches)
        assert all(_same(a, b) for a, b in zip(replayed, eager, strict=True))
    assert runner.replayed_batches == 3 * len(split.batches)


def test_engine_scores_are_the_same_with_and_without_the_replay(toy, monkeypatch):
    lambdas = [round(0.1 * i, 10) for i in range(11)]
    scores = {}
    for trace in ("1", "0"):
        monkeypatch.setenv("LANGARITH_TRACE", trace)
        engine = _engine(toy, "ner")
        split = _split(engine, toy, "ner")
        scores[trace] = [engine.score(Point.pair("en", "it", lam), split) for lam in lambdas]
        assert (engine.runner.replayed_batches > 0) == (trace == "1")
    assert scores["1"] == scores["0"]


class _Branchy(torch.nn.Module):
    """A model whose Python branches on its input's values, as a trace cannot follow."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, input_ids: torch.Tensor) -> SequenceClassifierOutput:
        values = input_ids.float() * self.scale
        if bool((input_ids > 50).any()):  # the trace keeps the branch it saw
            values = values + 1000.0
        return SequenceClassifierOutput(logits=values.sum(dim=1, keepdim=True))


def _batches(*rows: list[int]) -> list[Batch]:
    return [
        Batch({"input_ids": torch.tensor([row])}, np.asarray([i])) for i, row in enumerate(rows)
    ]


def test_a_batch_the_trace_gets_wrong_stays_eager():
    model = _Branchy().eval().requires_grad_(False)  # as evaluation models are
    batches = _batches([1, 2, 3], [60, 2, 3], [4, 5, 6, 7])  # the second takes the branch
    runner = ForwardRunner(model, torch.device("cpu"), trace=True, lanes=1, check_after=0)
    expected = _eager(model, batches)
    for _ in range(3):
        outputs = list(runner.run(batches))
        assert all(_same(a, b) for a, b in zip(outputs, expected, strict=True))
    # the first pass checks (traced on the first batch): the branchy batch fails its
    # check and runs eagerly ever after, the other two are replayed on passes 2 and 3
    assert runner.replayed_batches == 4
    with torch.no_grad():
        model.scale.copy_(torch.tensor(3.0))  # weights written in place are replayed
    expected = _eager(model, batches)
    assert all(_same(a, b) for a, b in zip(runner.run(batches), expected, strict=True))
    assert runner.replayed_batches == 6


def test_outputs_that_are_not_model_outputs_run_eagerly():
    class Plain(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return input_ids * 2

    batches = _batches([1, 2], [3, 4, 5])
    runner = ForwardRunner(Plain(), torch.device("cpu"), trace=True, lanes=1, check_after=0)
    for _ in range(3):
        outputs = list(runner.run(batches))
    assert [o.tolist() for o in outputs] == [[[2, 4]], [[6, 8, 10]]]
    assert runner.replayed_batches == 0


def test_lanes_return_outputs_in_batch_order_and_restore_the_threads(toy):
    engine = _engine(toy, "nli")
    split = _split(engine, toy, "nli", max_tokens=128)
    assert len(split.batches) >= 6
    model = engine.task_model.model
    threads = torch.get_num_threads()
    one = ForwardRunner(model, engine.task_model.device, trace=False, lanes=1)
    three = ForwardRunner(model, engine.task_model.device, lanes=3, check_after=1)
    try:
        reference = list(one.run(split.batches))
        # eager, checked (a batch whose lane met another lane tracing is checked on the
        # next pass), then replayed on the lanes
        for _ in range(4):
            before = three.replayed_batches
            outputs = list(three.run(split.batches))
            assert all(_same(a, b) for a, b in zip(outputs, reference, strict=True))
            assert torch.get_num_threads() == threads
        assert three.replayed_batches - before == len(split.batches)
        # a pass left early leaves no lane running and the threads as they were
        partial = three.run(split.batches)
        next(partial)
        partial.close()
        assert torch.get_num_threads() == threads
    finally:
        three.close()


def test_a_split_passed_few_times_is_never_traced(toy):
    engine = _engine(toy, "ner")
    split = _split(engine, toy, "ner")
    runner = engine.runner
    for _ in range(runner.check_after):
        engine.run(split)
    assert runner.replayed_batches == 0
    assert not runner._traces  # no trace recorded, nothing checked


def test_a_split_announced_for_a_grid_is_checked_on_its_first_pass(toy):
    engine = _engine(toy, "ner")
    split = _split(engine, toy, "ner")
    engine.expect_passes(split, 21)
    engine.run(split)
    assert engine.runner._traces
    engine.run(split)
    assert engine.runner.replayed_batches == len(split.batches)
    # a few passes announced change nothing
    other = _split(engine, toy, "ner", max_tokens=256)
    engine.expect_passes(other, 3)
    engine.run(other)
    replayed = engine.runner.replayed_batches
    engine.run(other)
    assert engine.runner.replayed_batches == replayed
