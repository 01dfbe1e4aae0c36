"""Config: schema and semantic checks, each bad input stopping with one clear message."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake_runs import run_snakemake

from langarith import plan, settings
from langarith.backbone.demo import DEMO_SPEC
from langarith.config import (
    AS_WRITTEN,
    SCHEMA_PATH,
    ConfigError,
    check_config,
    config_fingerprint,
    grid,
    load_config,
    validate_schema,
)
from langarith.data.demo import DEMO_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.fixture(params=["config.yaml", "ecai.yaml", "demo.yaml"])
def config(request) -> dict:
    cfg = _load(request.param)
    validate_schema(cfg)
    return cfg


def test_shipped_configs_are_valid(config):
    check_config(config, base_dir=ROOT)


def test_filled_defaults_are_the_configs_own(tmp_path):
    """Defaults come from a schema parsed once per process: no two configs share one."""
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "type: object\n"
        "properties:\n"
        "  pairs: { type: object, default: { es: pt } }\n"
        "  seeds: { type: array, items: { type: integer }, default: [1] }\n"
        "  name: { type: string }\n"
    )
    first, second = {"name": "a"}, {"name": "b"}
    validate_schema(first, schema)
    validate_schema(second, schema)
    assert first == {"name": "a", "pairs": {"es": "pt"}, "seeds": [1]}
    assert first["pairs"] is not second["pairs"] and first["seeds"] is not second["seeds"]
    first["pairs"]["ru"] = "bg"
    first["seeds"].append(2)
    third = {}
    validate_schema(third, schema)
    assert third == {"pairs": {"es": "pt"}, "seeds": [1]}
    with pytest.raises(ConfigError, match="seeds"):
        validate_schema({"seeds": [1.0]}, schema)  # a whole number written as a float


def test_filled_configs_equal_snakemakes_validate(config):
    """The defaults filled here are those Snakemake's own validate() fills."""
    from snakemake.utils import validate

    ours, theirs = copy.deepcopy(config), copy.deepcopy(config)
    validate_schema(ours)
    validate(theirs, str(SCHEMA_PATH), set_default=True)
    for path in AS_WRITTEN:  # validate_schema keeps these sections as written
        written, filled = config, theirs
        for key in path[:-1]:
            written, filled = written.get(key, {}), filled[key]
        if path[-1] in written:
            filled[path[-1]] = written[path[-1]]
    assert ours == theirs


def test_config_fingerprint_follows_the_content():
    config = _load("demo.yaml")
    key = config_fingerprint(config)
    assert config_fingerprint(copy.deepcopy(config)) == key
    config["seeds"].append(7)  # changed in place: another key
    assert config_fingerprint(config) != key
    assert isinstance(config_fingerprint({"odd": lambda: None}), str)  # not picklable: JSON


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


def test_task_adapter_follows_the_authors_scripts():
    """lang_adapter.py of mklimasz/language-arithmetic: pfeiffer (seq_bn), 16, gelu_new;
    the paper config says so and the settings default to it (the demo inherits it)."""
    paper = load_config(ROOT / "config" / "config.yaml")
    expected = {"architecture": "seq_bn", "reduction_factor": 16, "non_linearity": "gelu_new"}
    assert settings.task_settings(paper).adapter_config.as_dict() == expected
    assert settings.TaskAdapterConfig.defaults() == expected
    demo = load_config(ROOT / "config" / "demo.yaml")
    assert settings.task_settings(demo).adapter_config.non_linearity == "gelu_new"


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


# ----------------------------------------------------------------------------- settings

#: Bad training settings of the issue: (key path, YAML value, what the message names).
BAD_SETTINGS = [
    (
        ("language_adapter", "training", "lrr"),
        "1e-4",
        "unknown key 'lrr' in language_adapter.training",
    ),
    (("langauges",), "[en, es]", "unknown key 'langauges' at the top level"),
    (("language_adapter", "training", "max_steps"), "-5", "language_adapter.training.max_steps"),
    (("language_adapter", "training", "max_steps"), "0", "language_adapter.training.max_steps"),
    (("language_adapter", "training", "max_steps"), "20.5", "language_adapter.training.max_steps"),
    (("language_adapter", "training", "max_steps"), "true", "language_adapter.training.max_steps"),
    (("language_adapter", "training", "max_steps"), "1e12", "language_adapter.training.max_steps"),
    (
        ("language_adapter", "training", "max_steps"),
        "1.0e12",
        "language_adapter.training.max_steps",
    ),
    (("language_adapter", "training", "lr"), "-1", "language_adapter.training.lr"),
    (("language_adapter", "training", "lr"), ".nan", "language_adapter.training.lr"),
]


def _with(cfg: dict, path: tuple[str, ...], literal: str) -> dict:
    """``cfg`` with the YAML ``literal`` (read as a config file would be) at ``path``."""
    cfg = copy.deepcopy(cfg)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = yaml.safe_load(f"value: {literal}")["value"]
    return cfg


def _config_file(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(("path", "literal", "expected"), BAD_SETTINGS)
def test_bad_setting_is_named_by_config_check(tmp_path, path, literal, expected):
    config_file = _config_file(tmp_path, _with(_load("demo.yaml"), path, literal))
    with pytest.raises(ConfigError) as err:
        load_config(config_file, base_dir=ROOT)
    assert expected in str(err.value)


def test_misspelt_key_names_the_closest_and_the_allowed_keys(tmp_path):
    cfg = _with(_load("demo.yaml"), ("language_adapter", "training", "lrr"), "1e-4")
    with pytest.raises(ConfigError) as err:
        load_config(_config_file(tmp_path, cfg), base_dir=ROOT)
    message = str(err.value)
    assert "did you mean 'lr'?" in message and "allowed: max_steps, batch_size" in message
    assert len(message.splitlines()) == 1


#: ``langarith ARGS`` in a fresh interpreter, as a user runs it.
CLI = "import sys; from langarith.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize(
    ("path", "literal", "expected"),
    [
        (("language_adapter", "training", "lrr"), "1e-4", "did you mean 'lr'"),
        (("langauges",), "[en]", "did you mean 'languages'"),
        (("language_adapter", "training", "max_steps"), "20.5", "training.max_steps"),
    ],
)
def test_cli_check_names_bad_setting(tmp_path, path, literal, expected):
    config_file = _config_file(tmp_path, _with(_load("demo.yaml"), path, literal))
    result = subprocess.run(
        [sys.executable, "-c", CLI, "config", "check", str(config_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("path", "literal", "expected"),
    [
        (("language_adapter", "training", "lrr"), "1e-4", "unknown key 'lrr'"),
        (("langauges",), "[en]", "unknown key 'langauges'"),
        (("language_adapter", "training", "max_steps"), "true", "training.max_steps"),
        (("language_adapter", "training", "lr"), ".nan", "language_adapter.training.lr is .nan"),
    ],
)
def test_dry_run_names_bad_setting(tmp_path, path, literal, expected):
    result = _dry_run(tmp_path, _with(_load("demo.yaml"), path, literal))
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["language_adapter"].__setitem__("per_language", {"es": {"lrr": 1.0}}),
            "unknown key 'lrr' in language_adapter.per_language.es",
        ),
        (
            lambda c: c["task_adapter"]["per_task"]["qa"].__setitem__("max_lenght", 64),
            "unknown key 'max_lenght' in task_adapter.per_task.qa; did you mean 'max_length'?",
        ),
        (
            lambda c: c["task_adapter"]["adapter_config"].__setitem__("reduction", 2),
            "unknown key 'reduction' in task_adapter.adapter_config",
        ),
        (
            lambda c: c["models"][0]["demo"].__setitem__("hiden_size", 8),
            "unknown key 'hiden_size' in models[0].demo; did you mean 'hidden_size'?",
        ),
        (
            lambda c: c["data"]["demo"].__setitem__("sed", 1),
            "unknown key 'sed' in data.demo; did you mean 'seed'?",
        ),
        (
            lambda c: (
                c["language_adapter"]["training"].__setitem__("warmup_steps", 10)
                or c["language_adapter"]["training"].__setitem__("warmup_ratio", 0.1)
            ),
            "sets both warmup_steps (10) and warmup_ratio (0.1)",
        ),
        (
            lambda c: c["task_adapter"]["per_task"]["ner"].__setitem__("bf16", True),
            "task_adapter.per_task.ner sets both fp16 and bf16",
        ),
        (
            lambda c: c["task_adapter"]["per_task"].__setitem__("pos", {"max_length": 8}),
            "task_adapter.per_task names 'pos', which is not a task",
        ),
        (
            lambda c: c["models"][0]["demo"].__setitem__("seq_len", 1024),
            "models[0].demo.seq_len (1024) exceeds max_position_embeddings (512)",
        ),
    ],
)
def test_bad_setting_in_any_section_is_named(edit, expected):
    assert expected in _broken(_load("demo.yaml"), edit)


def _schema() -> dict:
    return yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def _schema_defaults(definition: dict) -> dict:
    props = definition["properties"]
    return {key: spec["default"] for key, spec in props.items() if "default" in spec}


@pytest.mark.parametrize(
    ("definition", "kind", "leave_out"),
    [
        ("language_training", settings.LanguageAdapterSettings, ()),
        ("task_training", settings.TaskAdapterSettings, ("adapter_config",)),
        ("language_adapter_config", settings.LanguageAdapterConfig, ()),
        ("task_adapter_config", settings.TaskAdapterConfig, ()),
        ("demo_backbone", settings.DemoBackboneSettings, ()),
    ],
)
def test_schema_states_the_settings_keys_and_defaults(definition, kind, leave_out):
    """The schema documents what the dataclasses apply: same keys, same defaults."""
    schema = _schema()["definitions"][definition]
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == [k for k in kind.allowed_keys() if k not in leave_out]
    assert all("description" in spec for spec in schema["properties"].values())
    defaults = {k: v for k, v in kind.defaults().items() if k not in leave_out}
    stated = _schema_defaults(schema)
    assert stated == defaults
    assert {k: type(v) for k, v in stated.items()} == {k: type(v) for k, v in defaults.items()}


def test_demo_data_defaults_are_the_schemas():
    """The demo generator's own defaults are what the schema documents."""
    data_demo = _schema()["properties"]["data"]["properties"]["demo"]
    assert _schema_defaults(data_demo) == DEMO_DEFAULTS


# What rules/common.smk hands the training rules today (get_language_training,
# get_task_training, get_model_spec), for comparison with the settings' as_dict().


def _smk_language_training(config: dict, lang: str, tokens: int | None = None) -> dict:
    spec = config["language_adapter"]
    hparams = dict(spec.get("training") or {})
    hparams.update((spec.get("per_language") or {}).get(lang, {}))
    if tokens is not None:
        hparams["max_train_tokens"] = tokens
    return hparams


def _smk_task_training(config: dict, task: str) -> dict:
    spec = config["task_adapter"]
    hparams = dict(spec.get("training") or {})
    hparams.update((spec.get("per_task") or {}).get(task, {}))
    hparams["adapter_config"] = dict(spec.get("adapter_config") or {})
    return hparams


def _same(a: dict, b: dict) -> bool:
    """Equal as the training code hashes them (1 and 1.0 differ in JSON)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml", "test.yaml"])
def test_settings_give_the_training_code_what_the_rules_pass(name):
    """The config check's settings equal defaults overlaid with what a rule passes a job.

    The overlay is written out here (one level deep for ``adapter_config``), so a drift
    between ``rules/common.smk``'s merging and ``langarith.settings``' shows.
    """

    config = load_config(ROOT / "config" / name)
    config["language_adapter"]["per_language"] = {"es": {"max_steps": 21, "lr": 2.0e-3}}
    for lang in config["languages"]:
        for tokens in (None, 1000):
            today = {
                **settings.LanguageAdapterSettings.defaults(),
                **_smk_language_training(config, lang, tokens),
            }
            typed = settings.language_settings(config, lang, tokens=tokens)
            assert _same(typed.as_dict(), today)
    for task in config["tasks"]:
        given = _smk_task_training(config, task)
        defaults = settings.TaskAdapterSettings.defaults()
        today = {
            **defaults,
            **given,
            "adapter_config": {**defaults["adapter_config"], **given["adapter_config"]},
        }
        assert _same(settings.task_settings(config, task).as_dict(), today)
    for i, model in enumerate(config["models"]):
        if "demo" in model:
            demo = dict(model["demo"])
            arch, seed = demo.pop("arch"), demo.pop("seed", 0)
            typed = settings.demo_backbone_settings(model, f"models[{i}].demo")
            assert _same(typed.spec(), {**DEMO_SPEC, **demo})
            assert (typed.arch, typed.seed) == (arch, seed)
    given = config["language_adapter"]["adapter_config"]
    assert settings.language_adapter_config(config).as_dict() == {
        **settings.LanguageAdapterConfig.defaults(),
        **given,
    }


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml", "test.yaml"])
def test_training_sections_stay_as_written(name):
    """Schema defaults are not filled into training settings: overrides stay overrides."""
    raw = _load(name)
    config = load_config(ROOT / "config" / name)
    for key in ("models", "language_adapter", "task_adapter"):
        assert config[key] == raw[key]


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"max_steps": 10**12}, "max_steps is 1000000000000; it must be a whole number"),
        ({"batch_size": 16.0}, "batch_size is 16.0"),
        ({"fp16": "yes"}, "fp16 is 'yes'; it must be true or false"),
        ({"mlm_probability": 1}, "mlm_probability is 1; it must be a number in (0, 1)"),
        ({"lr": float("inf")}, "lr is .inf; it must be a number in (0, 1]"),
        ({"eval_every": -1}, "eval_every is -1"),
        ({"max_grad_norm": True}, "max_grad_norm is true"),
    ],
)
def test_language_settings_reject_bad_values(mapping, expected):
    with pytest.raises(settings.SettingsError) as err:
        settings.LanguageAdapterSettings.from_mapping(mapping, where="language_adapter.training")
    assert f"language_adapter.training.{expected}" in str(err.value)


def test_settings_keep_values_as_written():
    """An int stays an int: the checkpoint's config hash must not change."""
    typed = settings.LanguageAdapterSettings.from_mapping(
        {"max_grad_norm": 1, "weight_decay": 0}, where="x"
    )
    assert type(typed.as_dict()["max_grad_norm"]) is int
    assert typed == settings.LanguageAdapterSettings(max_grad_norm=1, weight_decay=0)
    with pytest.raises(AttributeError):
        typed.lr = 1.0  # type: ignore[misc]


def _objects(node: object, path: str):
    """(path, schema) of every object schema with listed properties, definitions too."""
    if not isinstance(node, dict):
        return
    if "properties" in node:
        yield path, node
    for key, value in (node.get("properties") or {}).items():
        yield from _objects(value, f"{path}.{key}")
    for key in ("additionalProperties", "items"):
        yield from _objects(node.get(key), f"{path}[*]")
    for key, value in (node.get("definitions") or {}).items():
        yield from _objects(value, f"#{key}")


def test_schema_lists_every_key_with_a_description():
    schema = _schema()
    definitions = schema["definitions"]
    for path, node in _objects(schema, ""):
        assert node.get("additionalProperties") is False, f"{path or 'top level'} is open"
        for key, spec in node["properties"].items():
            ref = definitions.get(spec.get("$ref", "").rsplit("/", 1)[-1], {})
            assert "description" in spec or "description" in ref, f"{path}.{key}: no description"


def test_exponent_without_a_dot_gets_the_yaml_hint(tmp_path: Path) -> None:
    """YAML 1.1 reads 3e-3 as a string; the message says how to write it as a number."""
    text = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("lr: 3.0e-3, block_size", "lr: 3e-3, block_size"))
    with pytest.raises(ConfigError, match=r"write it with a dot: 3\.0e-3"):
        load_config(bad)


# ----------------------------------------------------------------------------- issue 11

#: More bad values, each named with its value and allowed range in one line.
BAD_VALUES = [
    (("language_adapter", "training", "max_steps"), "-5", "max_steps is -5; it must be a whole"),
    (("language_adapter", "training", "max_steps"), "true", "max_steps is true; it must be"),
    (("language_adapter", "training", "max_steps"), "1.0e12", "from 1 to 1,000,000,000"),
    (("language_adapter", "training", "lr"), "2.0", "lr is 2.0; it must be a finite number in"),
    (("task_adapter", "training", "weight_decay"), ".inf", "weight_decay is .inf"),
    (("language_adapter", "adapter_config", "reduction_factor"), "0", "reduction_factor is 0"),
    (("seeds",), "[-1]", "seeds[0] is -1; it must be a whole number from 0"),
    (("threads",), "{train: 0}", "threads.train is 0"),
    (("data", "demo", "local_structure"), ".nan", "data.demo.local_structure is .nan"),
    (("lambda_grid", "start"), ".nan", "lambda_grid.start is .nan; numbers must be finite"),
    (("token_budget", "tokens"), "[10000000000000]", "token_budget.tokens[0] is 10000000000000"),
    (("token_budget", "extra_tokens"), "{fr: [0]}", "token_budget.extra_tokens.fr[0] is 0"),
    (("token_budget", "extra_tokens"), "{de: [1000]}", "extra_tokens names 'de', which is not in"),
    (("token_budget", "models"), "[xlmrr]", "token_budget.models names 'xlmrr'"),
    (("task_adapter", "per_task"), "{ner: {max_lenght: 5}}", "did you mean 'max_length'?"),
    (("data", "demo", "sed"), "1", "unknown key 'sed' in data.demo; did you mean 'seed'?"),
    (("data", "revisions"), "{wikiane: main}", "data.revisions names dataset 'wikiane'"),
]


@pytest.mark.parametrize(("path", "literal", "expected"), BAD_VALUES)
def test_every_setting_has_a_type_and_range(tmp_path, path, literal, expected):
    config_file = _config_file(tmp_path, _with(_load("test.yaml"), path, literal))
    with pytest.raises(ConfigError) as err:
        load_config(config_file, base_dir=ROOT)
    assert expected in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def _resolve(schema: dict, node: dict) -> dict:
    """A schema node with its ``$ref`` merged in (the node's own keys win)."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = schema["definitions"][ref.rsplit("/", 1)[-1]]
    return {**_resolve(schema, target), **{k: v for k, v in node.items() if k != "$ref"}}


#: Values probed at every key: types, bounds and the values just beyond them.
_PROBES = [True, False, None, "x", "", 0, 1, -1, 2, 7, 8, 16, 100, 200, 0.5, 1.0, 1.5, 2.5]
_PROBES += [10**9, 10**9 + 1, 10**12, 10**12 + 1, 2**32 - 1, 2**32, 65536, 65537, 1e6, 1e6 + 1]
_PROBES += [float("nan"), float("inf"), "bert", "xlmr", "seq_bn", {}, {"en": 2}, {"en": -1}]


@pytest.mark.parametrize(
    ("definition", "kind", "leave_out"),
    [
        ("language_training", settings.LanguageAdapterSettings, ()),
        ("task_training", settings.TaskAdapterSettings, ("adapter_config",)),
        ("language_adapter_config", settings.LanguageAdapterConfig, ()),
        ("task_adapter_config", settings.TaskAdapterConfig, ()),
        ("demo_backbone", settings.DemoBackboneSettings, ()),
    ],
)
def test_schema_and_settings_accept_the_same_values(definition, kind, leave_out):
    """One key = one schema entry + one settings field, and both draw the same line.

    Every key is probed with types, bounds and values just beyond them; a value passes
    the config check only if both the schema (plus the finite-number rule) and the
    typed settings accept it, so a disagreement would let one path (snakemake -n, or
    the CLI/Python settings) through with a value the other refuses.
    """
    from langarith.config import strict_validator

    schema = _schema()
    properties = schema["definitions"][definition]["properties"]
    disagree = []
    for f in dataclasses.fields(kind):
        if f.name in leave_out:
            continue
        node = _resolve(schema, properties[f.name])
        validator = strict_validator({**node, "definitions": schema["definitions"]})
        for value in _PROBES:
            schema_ok = validator.is_valid(value) and not (
                isinstance(value, float) and not math.isfinite(value)
            )
            settings_ok = f.metadata["check"](value) is None
            if schema_ok != settings_ok:
                disagree.append((f.name, value, schema_ok, settings_ok))
    assert disagree == []


def test_token_budgets_and_the_training_budget_accept_the_same_values():
    """A budget of ``token_budget`` (``tokens`` or ``extra_tokens``) becomes the budget
    adapter's ``max_train_tokens``: the schema takes exactly the whole numbers the typed
    settings take (1 to settings.MAX_TOKENS whitespace tokens), so no budget passes the
    config check and then fails in training."""
    from langarith.config import strict_validator

    schema = _schema()
    budget = schema["properties"]["token_budget"]["properties"]
    item = _resolve(schema, budget["tokens"])["items"]
    assert _resolve(schema, budget["extra_tokens"]["additionalProperties"])["items"] == item
    check = settings.LanguageAdapterSettings.__dataclass_fields__["max_train_tokens"]
    validator = strict_validator(item)
    disagree = []
    for value in [*_PROBES, settings.MAX_TOKENS, settings.MAX_TOKENS + 1]:
        if value is None:
            continue  # null is "no budget" for max_train_tokens, no entry of a budget list
        schema_ok = validator.is_valid(value) and not (
            isinstance(value, float) and not math.isfinite(value)
        )
        if schema_ok != (check.metadata["check"](value) is None):
            disagree.append(value)
    assert disagree == []
    for name in ("tokens", "extra_tokens"):
        assert "whitespace tokens" in budget[name]["description"]


def test_the_paper_configs_plan_the_papers_token_budgets():
    """ACL §5.2 / ECAI Figure 2: XLM-R; as, sw, fr on 10k-10M, fr also on 1B."""
    for name in ("config.yaml", "ecai.yaml"):
        config = load_config(ROOT / "config" / name)
        assert plan.budget_models(config) == ["xlmr"]
        for lang in ("as", "sw"):
            assert plan.budget_tokens(config, lang) == [10**4, 10**5, 10**6, 10**7]
        assert plan.budget_tokens(config, "fr") == [10**4, 10**5, 10**6, 10**7, 10**9]


CONFIG_FILES = [
    ("list.yaml", b"- a\n- b\n", "holds a list, not a mapping"),
    ("scalar.yaml", b"42\n", "holds a single value, not a mapping"),
    ("latin1.yaml", b"models: caf\xe9\n", "is not UTF-8 text"),
    ("broken.yaml", b"models: [\n", "is not valid YAML at line 2"),
    ("missing.yaml", None, "does not exist"),
    ("folder.yaml", "dir", "is a folder"),
]


@pytest.mark.parametrize(("name", "content", "expected"), CONFIG_FILES)
def test_config_check_gives_one_line_for_a_file_that_is_no_config(
    tmp_path, name, content, expected
):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-c", CLI, "config", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert expected in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_flag_and_variable_show_the_traceback(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n")
    for args, env in ((["--debug"], {}), ([], {"LANGARITH_DEBUG": "1"})):
        result = subprocess.run(
            [sys.executable, "-c", CLI, *args, "config", "check", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, **env},
        )
        assert result.returncode == 1
        assert "Traceback" in result.stderr and "holds a list" in result.stderr


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermissionError(13, "Permission denied", "/mnt/ro/out.tsv"), "/mnt/ro/out.tsv: perm"),
        (FileNotFoundError(2, "No such file or directory", "/nowhere/x"), "/nowhere/x: no such"),
        (IsADirectoryError(21, "Is a directory", "/tmp"), "/tmp: is a directory"),
        (OSError(30, "Read-only file system", "/mnt/ro"), "/mnt/ro: read-only file system"),
    ],
)
def test_cli_prints_expected_os_errors_as_one_line(monkeypatch, capsys, error, expected):
    from langarith import cli
    from langarith import config as config_module

    def fail(args):
        raise error

    monkeypatch.setattr(config_module, "_cli_check", fail)
    monkeypatch.delenv("LANGARITH_DEBUG", raising=False)
    assert cli.main(["config", "check", "x.yaml"]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert cli.main(["--debug", "config", "check", "x.yaml"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(monkeypatch):
    from langarith import cli
    from langarith import config as config_module

    def fail(args):
        raise KeyError("bug")

    monkeypatch.setattr(config_module, "_cli_check", fail)
    with pytest.raises(KeyError):
        cli.main(["config", "check", "x.yaml"])


def test_rule_scripts_log_user_errors_as_one_line(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from langarith.scripting import rule_step

    log = tmp_path / "logs" / "rule.log"
    job = SimpleNamespace(log=[str(log)], rule="toy", threads=1, wildcards={})
    monkeypatch.delenv("LANGARITH_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info, rule_step(job):
        raise PermissionError(13, "Permission denied", "/mnt/ro/x")
    assert str(exit_info.value) == "rule toy: /mnt/ro/x: permission denied"
    assert "Traceback" not in log.read_text()
    monkeypatch.setenv("LANGARITH_DEBUG", "1")
    with pytest.raises(SystemExit), rule_step(job):
        raise PermissionError(13, "Permission denied", "/mnt/ro/x")
    assert "Traceback" in log.read_text()


# ----------------------------------------------------------------------------- language codes
def test_iso_639_3_codes_without_a_639_1_code_are_accepted():
    cfg = _load("config.yaml")
    # the paper config's TLR targets already hold pcm and luo
    cfg["languages"] += [code for code in ("ace", "pcm") if code not in cfg["languages"]]
    cfg["evaluation_languages"] += ["ace"]
    validate_schema(cfg)
    check_config(cfg, base_dir=ROOT)


@pytest.mark.parametrize(("code", "two"), [("eng", "en"), ("aym", "ay"), ("fre", "fr")])
def test_three_letter_code_of_a_two_letter_language_names_the_code_to_write(code, two):
    message = _broken(_load("config.yaml"), lambda c: c["languages"].append(code))
    assert f"unknown language code {code!r} in languages" in message
    assert f"it has the ISO 639-1 code {two!r}; write {two!r}" in message


def test_language_code_lists_cover_iso_639():
    from langarith import languages

    assert len(languages.ISO_639_1) == 184
    assert {"ace", "pcm", "arb", "swh"} <= languages.iso639_3_only()
    assert not {"eng", "spa", "aym"} & languages.iso639_3_only()
    # the papers' low-resource targets (AmericasNLI, NusaX): q* codes outside the private
    # range qaa-qtz were once missing from the shipped list
    assert {"quy", "quz", "qxu", "bzd", "cni", "hch", "shp", "tar", "bbc", "nij"} <= (
        languages.iso639_3_only()
    )
    assert not {"qaa", "qtz"} & languages.iso639_3_only()
    assert languages.three_letter_of("ay") == "aym" and languages.two_letter_for("deu") == "de"
    assert languages.known_code("as") and not languages.known_code("xx")


# ----------------------------------------------------------------------------- warnings
def test_enhancement_target_without_an_adapter_is_warned_at_dry_run(tmp_path):
    from langarith.config import config_warnings

    cfg = _load("test.yaml")
    cfg["evaluation_languages"].append("de")
    warnings = config_warnings(cfg)
    assert warnings == [
        "scenarios.enhancement: target 'de' of task 'ner' has no language adapter (it is "
        "not in languages), so its enhancement scenario is skipped; add 'de' to languages "
        "to run it"
    ]
    assert config_warnings(_load("test.yaml")) == []
    result = subprocess.run(
        [sys.executable, "-c", CLI, "config", "check", str(_config_file(tmp_path, cfg))],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0
    assert "warning: scenarios.enhancement: target 'de' of task 'ner'" in result.stderr
    dry = _dry_run(tmp_path, cfg)
    assert dry.returncode == 0, dry.stderr
    assert "Config warning: scenarios.enhancement: target 'de'" in dry.stderr


@pytest.mark.parametrize(
    ("command", "value", "expected"),
    [
        ("language", "lr=.nan", "hparams.lr is .nan; it must be a number in (0, 1]"),
        ("language", "lr=0", "hparams.lr is 0; it must be a number in (0, 1]"),
        ("language", "lr=-1", "hparams.lr is -1"),
        ("task", "max_steps=20.5", "hparams.max_steps is 20.5; it must be a whole number"),
    ],
)
def test_training_settings_from_the_cli_get_one_line(tmp_path, capsys, command, value, expected):
    """lr <= 0 or NaN given on the command line stops before anything is loaded."""
    from langarith import cli

    inputs = ["--backbone", str(tmp_path / "b"), "--out", str(tmp_path / "o")]
    if command == "language":
        inputs += ["--init", str(tmp_path / "i"), "--data", str(tmp_path / "d")]
    else:
        inputs += ["--lang-adapter", str(tmp_path / "l"), "--task", "ner"]
        inputs += ["--data", str(tmp_path / "d")]
    assert cli.main(["train", command, *inputs, "--set", value]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["adapters", "scores", "Acl", "a/b"])
def test_a_setup_name_cannot_clash_with_results_folders(name):
    config = _load("config.yaml")
    config["setup"] = name
    with pytest.raises(ConfigError, match="setup"):
        validate_schema(config)
