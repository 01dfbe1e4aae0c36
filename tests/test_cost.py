"""``langarith plan``: what a config costs, computed before anything runs.

The job counts must be Snakemake's own (a dry run of the demo config), the numbers must
move with the settings, and the parameter formulas must count what the ``adapters``
library builds.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import adapters
import pytest
import yaml
from adapters import AutoAdapterModel
from snakemake_runs import run_snakemake
from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

from langarith import LangarithError
from langarith.arms import load_arms
from langarith.cli import main
from langarith.config import load_config
from langarith.cost.estimate import Throughput, estimate_cost, job_counts
from langarith.cost.sizes import BackboneShape, adapter_params, backbone_shape, head_params

load_arms()  # the arms' jobs are counted as `langarith plan` counts them

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo() -> dict:
    return load_config(ROOT / "config" / "demo.yaml")


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config(ROOT / "config" / "config.yaml")


def _dry_run_counts(tmp_path: Path, config: str = "demo.yaml") -> dict[str, int]:
    """Jobs per rule of ``snakemake -n`` on an empty directory."""
    result = run_snakemake(
        "-n", "--quiet", "rules", configfile=ROOT / "config" / config, directory=tmp_path
    )
    assert result.returncode == 0, result.output[-3000:]
    rows = re.findall(r"^(\w+)\s+(\d+)$", result.output, flags=re.MULTILINE)
    return {rule: int(n) for rule, n in rows if rule not in ("all", "total")}


def test_job_counts_are_snakemakes(demo, tmp_path):
    assert job_counts(demo) == _dry_run_counts(tmp_path)


def test_paper_setup_job_counts_are_snakemakes(paper, tmp_path):
    """The paper's config names a setup (outputs under results/acl/): counted the same."""
    assert job_counts(paper) == _dry_run_counts(tmp_path, "config.yaml")


def test_paper_config_jobs(paper):
    jobs = job_counts(paper)
    # the papers' 20 languages for both models and 3 seeds, and the TLR arm's other
    # targets for its models x seeds only (mbert, seed 42)
    assert len(paper["languages"]) == 20
    tlr = paper["tlr"]
    others = {t for targets in tlr["tasks"].values() for t in targets} - set(paper["languages"])
    assert {"ha", "luo", "bn", "th", "myv"} <= others
    assert jobs["train_language_adapter"] == 2 * 20 * 3 + len(others) * len(tlr["models"]) * len(
        tlr["seeds"]
    )
    # the papers' token-budget study: XLM-R only; as, sw, fr x 10k-10M, fr also 1B; 3 seeds
    assert jobs["train_budget_adapter"] == 1 * (4 + 4 + 5) * 3
    assert jobs["train_task_adapter"] == 2 * 3 * 3  # ner, nli, qa; nli_as reuses nli
    # DP is the TLR arm's own task (tlr.datasets): no core task adapter, one TLR job each
    assert jobs["tlr_train_dp"] == jobs["tlr_score_dp"] == 1  # mbert, seed 42


def _edited(config: dict, edit) -> dict:
    config = copy.deepcopy(config)
    edit(config)
    return config


def test_doubling_steps_doubles_tokens_and_hours(demo):
    rate = Throughput(language=1000.0)
    base = estimate_cost(demo, rate)

    def double_steps(cfg):
        cfg["language_adapter"]["training"]["max_steps"] *= 2

    doubled = estimate_cost(_edited(demo, double_steps), rate)
    for kind in ("language adapters", "token-budget adapters"):
        assert doubled.training_tokens(kind) == 2 * base.training_tokens(kind)
    hours = {line.label: line.values["hours"] for line in base.gpu_hours}
    hours2 = {line.label: line.values["hours"] for line in doubled.gpu_hours}
    assert hours2["language adapters"] == pytest.approx(2 * hours["language adapters"])
    assert hours2["task adapters"] == pytest.approx(hours["task adapters"])

    def double_block(cfg):
        cfg["language_adapter"]["training"]["block_size"] *= 2

    wider = estimate_cost(_edited(demo, double_block), rate)
    assert wider.training_tokens("language adapters") == 2 * base.training_tokens(
        "language adapters"
    )
    memory = {line.label: line.values["bytes"] for line in base.memory}
    memory2 = {line.label: line.values["bytes"] for line in wider.memory}
    assert memory2["train_language_adapter"] > memory["train_language_adapter"]

    def double_epochs(cfg):
        cfg["task_adapter"]["training"]["epochs"] *= 2
        for task in cfg["task_adapter"].get("per_task", {}).values():
            if "epochs" in task:
                task["epochs"] *= 2

    epochs = estimate_cost(_edited(demo, double_epochs), rate)
    assert epochs.training_tokens("task adapters") == 2 * base.training_tokens("task adapters")


def test_throughput_scales_gpu_hours(paper):
    slow = estimate_cost(paper, Throughput(language=10_000.0))
    fast = estimate_cost(paper, Throughput(language=20_000.0))
    for a, b in zip(slow.gpu_hours, fast.gpu_hours, strict=True):
        assert a.values["hours"] == pytest.approx(2 * b.values["hours"])
    assert estimate_cost(paper).gpu_hours == []
    with pytest.raises(LangarithError, match="positive"):
        estimate_cost(paper, Throughput(language=-1.0))


TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}


@pytest.mark.parametrize("arch", ["bert", "xlmr"])
def test_parameter_formulas_count_what_adapters_builds(arch):
    if arch == "bert":
        config = BertConfig(vocab_size=100, intermediate_size=64, **TINY)
        model = BertForMaskedLM(config)
        type_vocab = 2
    else:
        config = XLMRobertaConfig(
            vocab_size=100,
            intermediate_size=64,
            max_position_embeddings=66,
            type_vocab_size=1,
            **TINY,
        )
        model = XLMRobertaForMaskedLM(config)
        type_vocab = 1
    shape = BackboneShape(100, 32, 2, 2, 64, config.max_position_embeddings, type_vocab)
    assert shape.params() == sum(p.numel() for p in model.parameters())
    adapters.init(model)
    cases = {
        "lang": ({"architecture": "seq_bn_inv", "reduction_factor": 2}, adapters.SeqBnInvConfig),
        "task": ({"architecture": "seq_bn", "reduction_factor": 4}, adapters.SeqBnConfig),
    }
    for name, (settings, kind) in cases.items():
        model.add_adapter(name, config=kind(reduction_factor=settings["reduction_factor"]))
        built = sum(p.numel() for n, p in model.named_parameters() if f".{name}." in n)
        assert adapter_params(shape, settings) == built, name


def test_head_formulas_count_what_adapters_builds():
    model = AutoAdapterModel.from_config(BertConfig(vocab_size=100, intermediate_size=64, **TINY))
    shape = BackboneShape(100, 32, 2, 2, 64, 512, 2)
    model.add_tagging_head("ner", num_labels=7)
    model.add_classification_head("nli", num_labels=3)
    model.add_qa_head("qa", num_labels=2)
    model.add_dependency_parsing_head("dp", num_labels=37)
    for kind, labels in (("ner", 7), ("nli", 3), ("qa", 2), ("dp", 37)):
        built = sum(
            p.numel() for n, p in model.named_parameters() if n.startswith(f"heads.{kind}.")
        )
        assert head_params(shape, kind, labels) == built, kind


def test_bad_inputs_are_clear_errors(demo, tmp_path, capsys):
    with pytest.raises(LangarithError, match=r"models\[0\]\.hub 'bert-large-cased'"):
        backbone_shape({"name": "x", "hub": "bert-large-cased"}, "models[0]")
    assert main(["plan", "--configfile", str(tmp_path / "missing.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err
    broken = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    broken["language_adapter"]["training"]["max_steps"] = 0
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert main(["plan", "--configfile", str(path)]) == 1
    assert "max_steps" in capsys.readouterr().err


def test_cli_prints_every_section(capsys):
    code = main(
        ["plan", "--configfile", str(ROOT / "config" / "demo.yaml"), "--tokens-per-second", "5000"]
    )
    out = capsys.readouterr().out
    assert code == 0
    for heading in (
        "jobs per stage",
        "training and evaluation work",
        "disk per artifact family",
        "peak GPU memory",
        "GPU-hours",
    ):
        assert heading in out
    assert "train_language_adapter" in out and "at 5,000 tok/s" in out
