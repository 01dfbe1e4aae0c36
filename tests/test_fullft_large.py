"""XLM-R large for the full-model arm (task-arithmetic-crosslingual Tables 4 and 8): the
per-model settings, linear warm-up and early stopping in the shared training loop, and
early stopping in a full fine-tuning run on a tiny backbone (~10 s)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from tiny import demo_spec

from langarith.backbone import build_demo_backbone
from langarith.config import strict_validator
from langarith.data import prepare_demo_dataset
from langarith.fullft.plan import language_hparams, task_hparams
from langarith.fullft.train import finetune_task
from langarith.settings import SettingsError
from langarith.training.loop import LoopConfig, device_and_dtype, run_training_loop

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))


def _commented_large_block() -> dict:
    """The config's commented ``nusax`` line of the large settings, read as YAML."""
    text = (ROOT / "config" / "config.yaml").read_text(encoding="utf-8")
    found = re.search(r"#   nusax: (\{ training: \{.*?\} \})", text, flags=re.S)
    assert found, "config.yaml lost its commented nusax settings of XLM-R large"
    return yaml.safe_load(re.sub(r"\n\s*#\s*", " ", found.group(1)))


# --------------------------------------------------------------------------- settings


def test_large_settings_layer_on_the_base_ones():
    config = _config()
    base, large = (
        language_hparams(config, "de", "xlmr"),
        language_hparams(config, "de", "xlmr-large"),
    )
    assert base["max_steps"] == 50000 and large["max_steps"] == 20000
    assert large["lr"] == base["lr"] == 5.0e-5 and large["batch_size"] == 64
    assert task_hparams(config, "xnli", "xlmr")["warmup_steps"] == 0
    nli = task_hparams(config, "xnli", "xlmr-large")
    assert nli["warmup_steps"] == 6000 and nli["batch_size"] == 32 and nli["lr"] == 2.0e-5
    # the commented SMSA settings are valid and apply to a nusax dataset of the model
    config["fullft"]["datasets"]["nusax"] = {
        "kind": "nli",
        "train_dataset": "xnli",
        "targets": ["de"],
    }
    config["fullft"]["per_model"]["xlmr-large"]["datasets"]["nusax"] = _commented_large_block()
    smsa = task_hparams(config, "nusax", "xlmr-large")
    assert (smsa["batch_size"], smsa["lr"], smsa["warmup_steps"]) == (32, 1.0e-5, 300)
    assert smsa["early_stopping_patience"] == 3
    assert task_hparams(config, "nusax", "xlmr")["early_stopping_patience"] is None
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert list(strict_validator(schema).iter_errors(config)) == []


def test_bad_per_model_settings_name_their_place():
    config = _config()
    config["fullft"]["per_model"]["xlmr-large"]["datasets"]["xnli"]["training"] = {
        "early_stopping_patience": 0
    }
    with pytest.raises(SettingsError, match=r"fullft\.per_model\.xlmr-large\.datasets\.xnli"):
        task_hparams(config, "xnli", "xlmr-large")
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert list(strict_validator(schema).iter_errors(config))  # the schema refuses it too


# --------------------------------------------------------------------------- the loop


def _scalar_run(cfg: LoopConfig, scores=None):
    """A one-parameter model whose loss is w: with AdamW and a constant gradient of 1
    every step moves w by exactly the step's learning rate."""
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.zeros(()))
    seen: list[float] = []
    marks = iter(scores or [])

    def loss(k: int):
        seen.append(float(model.w.detach()))
        return model.w * 1.0, 1

    def evaluate():
        score = next(marks, 0.0)
        return {"score": score, "loss": -score}

    result = run_training_loop(
        model, dict(model.named_parameters()), loss, evaluate, cfg,
        setup=device_and_dtype(False, False), checkpoint_dir=None, config_hash="x",
    )  # fmt: skip
    seen.append(float(model.w.detach()))
    return result, [a - b for a, b in zip(seen, seen[1:], strict=False)]


def test_linear_warmup_then_linear_decay():
    cfg = LoopConfig(seed=0, max_steps=10, lr=0.01, warmup_steps=4, max_grad_norm=None)
    result, moves = _scalar_run(cfg)
    lrs = [0.01 * s / 4 if s < 4 else 0.01 * (10 - s) / 6 for s in range(10)]
    assert moves == pytest.approx(lrs, abs=1e-7)
    assert result.steps == 10 and not result.stopped_early


def test_early_stopping_after_patience_validations_without_gain():
    scores = [1.0, 2.0, 2.0, 1.5, 1.9, 3.0]  # best at step 2; steps 3-5 are not better
    cfg = LoopConfig(
        seed=0, max_steps=20, lr=0.01, eval_every=1, metric="score", higher_is_better=True,
        early_stopping_patience=3, max_grad_norm=None,
    )  # fmt: skip
    result, _ = _scalar_run(cfg, scores)
    assert (result.steps, result.best_step, result.best_score) == (5, 2, 2.0)
    assert result.stopped_early and [h["step"] for h in result.history] == [1, 2, 3, 4, 5]
    cfg.early_stopping_patience = None
    result, _ = _scalar_run(cfg, scores)
    assert result.steps == 20 and result.best_score == 3.0 and not result.stopped_early


# --------------------------------------------------------------------------- a real run


def test_full_finetuning_stops_early_on_a_tiny_backbone(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        corpus = prepare_demo_dataset(
            "wikipedia", "en", tmp_path / "wiki",
            options={"wikipedia_train_docs": 12, "validation_docs": 2},
        )  # fmt: skip
        data = prepare_demo_dataset(
            "xnli", "en", tmp_path / "xnli",
            options={"task_train_rows": 40, "task_validation_rows": 12, "task_test_rows": 4},
        )  # fmt: skip
        backbone = build_demo_backbone(
            [corpus], tmp_path / "backbone", arch="xlmr", spec=demo_spec(pretrain_steps=2), seed=0
        )
        hp = {"max_steps": 12, "batch_size": 4, "lr": 1e-12, "max_length": 32, "eval_every": 2,
              "warmup_steps": 3, "early_stopping_patience": 2}  # fmt: skip
        out = finetune_task(backbone, data, tmp_path / "task", kind="nli", seed=1, hparams=hp)
    finally:
        torch.set_num_threads(threads)
    meta = json.loads((out / "metadata.json").read_text())
    # lr 1e-12: the validation score never improves on step 2's, so two more
    # validations (steps 4 and 6) end the run
    assert meta["stopped_early"] and meta["steps"] == 6 and meta["best_step"] == 2
    assert meta["hparams"]["warmup_steps"] == 3 and meta["hparams"]["early_stopping_patience"] == 2
