"""``langarith plan`` for the arms: the full-model arm's vectors (encoder × 4 bytes),
its MLM, task and evaluation tokens and GPU-hours with each model's own settings, and
the TLR arm's task adapters, beside the core's lines (job counts: test_cost.py)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from langarith.arms import load_arms
from langarith.config import load_config
from langarith.cost.estimate import Throughput, estimate_cost, render
from langarith.cost.sizes import HUB_BACKBONES, adapter_params, head_params
from langarith.fullft.cost import vector_bytes
from langarith.fullft.plan import fullft_languages, fullft_seeds

ROOT = Path(__file__).resolve().parents[1]


def _with_large(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["models"].append({"name": "xlmr-large", "hub": "xlm-roberta-large"})
    config["fullft"]["models"] = ["xlmr", "xlmr-large"]
    return config


def test_plan_reports_the_arms_vectors_and_gpu_hours():
    load_arms()
    config = load_config(ROOT / "config" / "config.yaml")
    base = HUB_BACKBONES["xlm-roberta-base"]
    h, vocab = 768, 250_002
    embeddings = (vocab + 514 + 1) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * 3072 + 3072) + (3072 * h + h) + 2 * h
    assert vector_bytes(base) == 4 * (embeddings + 12 * layer)
    assert 1.05e9 < vector_bytes(base) < 1.15e9  # the "~1.1 GB per base model"
    cost = estimate_cost(config, Throughput(language=10_000.0))
    # en and every fullft dataset's sources and targets with text; the arm's seeds
    langs, seeds = len(fullft_languages(config)), len(fullft_seeds(config))
    assert {"en", "sw", "ay", "ace", "id"} <= set(fullft_languages(config))
    work = {line.label: line.values for line in cost.training}
    mlm = work["fullft language vectors"]
    assert mlm == {"jobs": langs * seeds, "steps": langs * seeds * 50_000,
                   "tokens": langs * seeds * 50_000 * 64 * 256}  # fmt: skip
    hours = {line.label: line.values["hours"] for line in cost.gpu_hours}
    assert hours["fullft language vectors"] == pytest.approx(mlm["tokens"] / 10_000 / 3600)
    xnli_only = copy.deepcopy(config)
    xnli_only["fullft"]["datasets"] = {"xnli": config["fullft"]["datasets"]["xnli"]}
    training = estimate_cost(xnli_only, Throughput(language=10_000.0)).training
    task = {line.label: line.values for line in training}["fullft task models"]
    assert task["steps"] == seeds * 5 * math.ceil(392_702 / 32)  # MultiNLI: 5 epochs of 32
    disk = {line.label: line.values for line in cost.disk}
    assert disk["fullft language vectors"] == {
        "files": langs * seeds,
        "bytes": langs * seeds * vector_bytes(base),
    }
    assert {"fullft_language", "fullft_task", "fullft_evaluate"} <= {m.label for m in cost.memory}
    assert "fullft language vectors" in render(cost)


def test_plan_uses_the_large_models_own_settings():
    load_arms()
    config = _with_large(load_config(ROOT / "config" / "config.yaml"))
    large = HUB_BACKBONES["xlm-roberta-large"]
    assert 2.1e9 < vector_bytes(large) < 2.3e9
    cost = estimate_cost(config)
    mlm = next(line.values for line in cost.training if line.label == "fullft language vectors")
    langs, seeds = len(fullft_languages(config)), len(fullft_seeds(config))
    assert mlm["steps"] == langs * seeds * (50_000 + 20_000)  # base, then large's 20k
    disk = next(line.values for line in cost.disk if line.label == "fullft language vectors")
    base = HUB_BACKBONES["xlm-roberta-base"]
    assert disk["bytes"] == langs * seeds * (vector_bytes(base) + vector_bytes(large))


def test_plan_reports_the_tlr_adapters():
    load_arms()
    config = load_config(ROOT / "config" / "config.yaml")
    config["tlr"]["variants"] = ["madx", "target", "all_multi"]
    config["tlr"]["models"] = ["mbert"]  # the seed's Table 2 backbone
    config["tlr"]["tasks"] = {"nli": ["ar", "hi", "sw"]}
    config["scenarios"]["zero_shot_tlr"] = {"tasks": ["nli"]}
    cost = estimate_cost(config, Throughput(language=10_000.0))
    work = {line.label: line.values for line in cost.training}["TLR task adapters"]
    # MAD-X 2.0 (leave_out_last: the arm's own) and ALL-MULTI one adapter each, TARGET
    # one per target; the seed's NLI settings (5 epochs of batch 32 over MultiNLI)
    steps = 5 * math.ceil(392_702 / 32)
    assert work == {"jobs": 5, "steps": 5 * steps, "tokens": 5 * steps * 32 * 128}
    disk = {line.label: line.values for line in cost.disk}["TLR task adapters"]
    shape = HUB_BACKBONES["bert-base-multilingual-cased"]
    each = adapter_params(shape, {"reduction_factor": 16}) + head_params(shape, "nli", 3)
    assert disk == {"files": 5, "bytes": 5 * each * 4}
    hours = {line.label: line.values["hours"] for line in cost.gpu_hours}
    assert hours["TLR task adapters"] == pytest.approx(work["tokens"] / 10_000 / 3600)
