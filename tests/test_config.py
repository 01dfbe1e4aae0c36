"""Config: schema and semantic checks, each bad input stopping with one clear message."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml
from snakemake_runs import run_snakemake

from langarith.config import ConfigError, check_config, grid, load_config, validate_schema

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.fixture(params=["config.yaml", "demo.yaml"])
def config(request) -> dict:
    cfg = _load(request.param)
    validate_schema(cfg)
    return cfg


def test_shipped_configs_are_valid(config):
    check_config(config, base_dir=ROOT)


def test_paper_config_has_the_papers_setup():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert [m["hub"] for m in cfg["models"]] == ["bert-base-multilingual-cased", "xlm-roberta-base"]
    assert cfg["evaluation_languages"] == "ar bg de el es fr hi ru sw tr ur vi zh".split()
    assert {"en", "fa", "it", "ca", "pt", "ro", "as"} <= set(cfg["languages"])
    assert cfg["seeds"] == [42, 51, 99]
    assert len(grid(cfg["lambda_grid"])) == 21
    assert grid(cfg["scenarios"]["ties"]["lambda_grid"])[-1] == 1.8
    lang = cfg["language_adapter"]
    assert lang["adapter_config"]["reduction_factor"] == 2
    assert lang["adapter_config"]["non_linearity"] == "gelu_new"
    assert lang["training"]["max_steps"] == 250000
    assert lang["training"]["batch_size"] * lang["training"]["grad_accum"] == 64
    assert cfg["task_adapter"]["adapter_config"]["reduction_factor"] == 16
    assert cfg["task_adapter"]["training"]["epochs"] == 100


def test_grid_has_no_float_drift():
    assert grid({"start": 0, "stop": 1, "step": 0.05})[6] == 0.3
    assert grid({"start": 0, "stop": 1, "step": 0.2}) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def _broken(cfg: dict, edit) -> str:
    cfg = copy.deepcopy(cfg)
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        validate_schema(cfg)
        check_config(cfg, base_dir=ROOT)
    return str(err.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["languages"].append("xx"), "unknown language code 'xx'"),
        (lambda c: c["evaluation_languages"].append("xx"), "'xx' in evaluation_languages"),
        (lambda c: c.__setitem__("models", []), "models"),
        (lambda c: c.__setitem__("languages", []), "languages"),
        (lambda c: c["lambda_grid"].__setitem__("step", 0), "lambda_grid.step is 0"),
        (lambda c: c["lambda_grid"].__setitem__("step", -0.1), "lambda_grid.step is -0.1"),
        (lambda c: c["lambda_grid"].__setitem__("step", 1.5), "lambda_grid.step is 1.5"),
        (
            lambda c: c["tasks"]["qa"].__setitem__("targets", ["es", "bg"]),
            "dataset 'xquad' has no split for language 'bg'",
        ),
        (
            lambda c: c["data"].__setitem__(
                "local_paths", {"xnli": {"es": "missing/xnli_es.jsonl"}}
            ),
            "local file 'missing/xnli_es.jsonl' does not exist",
        ),
        (lambda c: c["tasks"]["ner"].__setitem__("eval_dataset", "conll"), "eval_dataset"),
        (
            lambda c: c["related"]["overrides"].__setitem__("es", "ja"),
            "'ja', which has no language",
        ),
        (lambda c: c["scenarios"]["zero_shot"]["tasks"].append("pos"), "names 'pos'"),
        (lambda c: c.__setitem__("source_language", "xx"), "unknown language code 'xx'"),
        (
            lambda c: c["related"].__setitem__("pool", ["es"]),
            "holds no language other than the target 'es'",
        ),
    ],
)
def test_bad_input_is_named(edit, expected):
    message = _broken(_load("config.yaml"), edit)
    assert expected in message


def test_all_problems_reported_together():
    def edit(cfg):
        cfg["languages"].append("xx")
        cfg["lambda_grid"]["step"] = 2

    message = _broken(_load("config.yaml"), edit)
    assert "'xx'" in message and "lambda_grid.step is 2" in message


def test_demo_source_rejects_languages_it_cannot_generate():
    message = _broken(_load("demo.yaml"), lambda c: c["languages"].append("sw"))
    assert "demo generator has no language 'sw'" in message


def test_uncovered_default_targets_are_skipped_not_errors():
    from langarith.config import task_targets

    cfg = load_config(ROOT / "config" / "config.yaml")
    targets, skipped = task_targets(cfg, "qa")
    assert sorted(skipped) == ["bg", "fr", "sw", "ur"]
    assert "bg" not in targets and "es" in targets


def test_cli_check(tmp_path, capsys):
    from langarith.cli import main

    assert main(["config", "check", str(ROOT / "config" / "demo.yaml")]) == 0
    assert "valid" in capsys.readouterr().out
    bad = _load("demo.yaml")
    bad["languages"].append("xx")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["config", "check", str(path)]) == 1
    assert "unknown language code 'xx'" in capsys.readouterr().err


def _dry_run(tmp_path: Path, cfg: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return run_snakemake("-n", "--quiet", configfile=path, directory=tmp_path, timeout=300)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["languages"].append("xx"), "unknown language code 'xx'"),
        (lambda c: c["lambda_grid"].__setitem__("step", 0), "lambda_grid.step is 0"),
        (lambda c: c.__setitem__("models", []), "models"),
        (lambda c: c["tasks"]["qa"].__setitem__("targets", ["sw"]), "no split for language 'sw'"),
    ],
)
def test_dry_run_stops_with_one_message_and_no_traceback(tmp_path, edit, expected):
    cfg = _load("config.yaml")
    edit(cfg)
    result = _dry_run(tmp_path, cfg)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr
