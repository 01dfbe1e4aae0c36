"""Tests of langarith.adapter_io: reading, checking and writing AdapterHub folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import adapters
import pytest
import torch
import transformers
from tiny import TINY_BERT

from langarith import LangarithError
from langarith.adapter_io import (
    PLACEHOLDER,
    SAFE_WEIGHTS_NAME,
    WEIGHTS_NAME,
    adapter_checksum,
    check_compatible,
    denormalise_name,
    find_adapter_files,
    load_adapter_into,
    normalise_name,
    read_adapter,
    same_init,
    weights_sha256,
    write_adapter,
)


def _model(hidden: int = 32, cls_name: str = "BertModel") -> torch.nn.Module:
    torch.manual_seed(0)
    model = getattr(transformers, cls_name)(
        transformers.BertConfig(**{**TINY_BERT, "hidden_size": hidden})
    )
    adapters.init(model)
    return model


def _save(model, root: Path, name: str, safetensors: bool = False, **config) -> Path:
    options = {"reduction_factor": 2, "non_linearity": "gelu_new", **config}
    model.add_adapter(name, config=adapters.SeqBnInvConfig(**options))
    model.save_adapter(str(root / name), name, use_safetensors=safetensors)
    return root / name


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("io")
    model = _model()
    paths = {
        "en": _save(model, root, "en"),
        "es": _save(model, root, "es", safetensors=True),
        "rf4": _save(model, root, "rf4", reduction_factor=4),
        "relu": _save(model, root, "relu", non_linearity="relu"),
        "big": _save(_model(hidden=64), root, "big"),
        "mlm": _save(_model(cls_name="BertForMaskedLM"), root, "mlm"),
    }
    return paths


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- names -------------------------------------------------------------------------------


def test_normalise_replaces_only_the_adapter_component() -> None:
    key = "encoder.init.adapters.init.adapter_down.0.weight"
    assert (
        normalise_name(key, "init") == f"encoder.init.adapters.{PLACEHOLDER}.adapter_down.0.weight"
    )
    assert (
        normalise_name("invertible_adapters.en.F.0.bias", "en")
        == f"invertible_adapters.{PLACEHOLDER}.F.0.bias"
    )
    assert normalise_name("encoder.layer.0.output.adapters.es.x", "en") is None
    assert denormalise_name(f"a.adapters.{PLACEHOLDER}.b", "fr") == "a.adapters.fr.b"


def test_read_both_formats_with_normalised_names(folders) -> None:
    en, es = read_adapter(folders["en"]), read_adapter(folders["es"])
    assert en.files.fmt == "bin" and es.files.fmt == "safetensors"
    assert en.name == "en" and es.name == "es"
    assert list(en.state) == sorted(en.state) == list(es.state)
    assert all(PLACEHOLDER in n for n in en.state)
    assert any(n.startswith(f"invertible_adapters.{PLACEHOLDER}.") for n in en.state)
    assert en.config["config"]["reduction_factor"] == 2 and en.metadata is None
    assert en.sha256 == weights_sha256(folders["en"]) and len(en.sha256) == 64
    assert read_adapter(en) is en


# --- errors --------------------------------------------------------------------------


def test_missing_folder_and_files(folders, tmp_path) -> None:
    with pytest.raises(LangarithError, match=r"Adapter folder .*nope does not exist"):
        read_adapter(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(LangarithError, match="is a file; expected an AdapterHub folder"):
        read_adapter(tmp_path / "file")
    no_config = _copy(folders["en"], tmp_path / "no_config")
    (no_config / "adapter_config.json").unlink()
    with pytest.raises(LangarithError, match="adapter_config.json is missing"):
        read_adapter(no_config)
    no_weights = _copy(folders["en"], tmp_path / "no_weights")
    (no_weights / WEIGHTS_NAME).unlink()
    with pytest.raises(LangarithError, match=r"has no weights file: expected adapter\.safetensors"):
        read_adapter(no_weights)
    bad_config = _copy(folders["en"], tmp_path / "bad_config")
    (bad_config / "adapter_config.json").write_text('{"name": "en", ')
    with pytest.raises(LangarithError, match="Adapter config .* is corrupt or truncated"):
        read_adapter(bad_config)


@pytest.mark.parametrize(
    ("source", "file_name", "damage"),
    [
        ("es", SAFE_WEIGHTS_NAME, lambda b: b[: len(b) // 2]),  # truncated safetensors
        ("es", SAFE_WEIGHTS_NAME, lambda b: b"\xff" * 16),  # garbage header
        ("en", WEIGHTS_NAME, lambda b: b[: len(b) // 2]),  # truncated zip pickle
        ("en", WEIGHTS_NAME, lambda b: b"not a torch file"),
    ],
)
def test_corrupt_weights_are_named(folders, tmp_path, source, file_name, damage) -> None:
    folder = _copy(folders[source], tmp_path / "broken")
    weights = folder / file_name
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(
        LangarithError,
        match=rf"Cannot read adapter weights .*{file_name}: the file is truncated or corrupt",
    ):
        read_adapter(folder)


def test_weights_that_torch_would_unpickle_unsafely_are_refused(folders, tmp_path) -> None:
    folder = _copy(folders["en"], tmp_path / "pickle")
    torch.save({"x": Path("/")}, folder / WEIGHTS_NAME)  # not loadable with weights_only
    with pytest.raises(
        LangarithError, match="pickle files are not loaded; convert to safetensors"
    ) as caught:
        read_adapter(folder)
    assert "truncated" not in str(caught.value) and "weights_only" not in str(caught.value)


def test_foreign_tensors_are_refused(folders, tmp_path) -> None:
    folder = _copy(folders["en"], tmp_path / "foreign")
    state = torch.load(folder / WEIGHTS_NAME, weights_only=True)
    state["heads.ner.weight"] = torch.zeros(2)
    torch.save(state, folder / WEIGHTS_NAME)
    with pytest.raises(LangarithError, match=r"do not belong to adapter 'en'.*heads\.ner\.weight"):
        read_adapter(folder)


# --- compatibility ------------------------------------------------------------------------


def test_compatible_adapters_pass(folders) -> None:
    check_compatible([read_adapter(folders["en"]), read_adapter(folders["es"])])


def test_different_config_lists_keys_and_values(folders) -> None:
    with pytest.raises(LangarithError) as err:
        check_compatible([read_adapter(folders["en"]), read_adapter(folders["relu"])])
    assert "different adapter config (non_linearity: 'gelu_new' vs 'relu')" in str(err.value)
    with pytest.raises(LangarithError) as err:
        check_compatible([read_adapter(folders["rf4"])], init=read_adapter(folders["en"]))
    message = str(err.value)
    assert "differs from the init" in message
    assert "reduction_factor: 2 vs 4" in message
    assert (
        f"encoder.layer.0.output.adapters.{PLACEHOLDER}.adapter_down.0.weight: (16, 32) vs (8, 32)"
        in message
    )


def test_different_backbone_and_class(folders) -> None:
    with pytest.raises(LangarithError) as err:
        check_compatible([read_adapter(folders["en"]), read_adapter(folders["big"])])
    assert "different backbone (hidden_size: 32 vs 64)" in str(err.value)
    with pytest.raises(LangarithError) as err:
        check_compatible([read_adapter(folders["en"]), read_adapter(folders["mlm"])])
    message = str(err.value)
    assert "model_class: 'BertModel' vs 'BertForMaskedLM'" in message
    assert "16 parameter(s) missing" in message and "16 extra parameter(s)" in message


def test_missing_and_extra_parameters_are_listed(folders) -> None:
    en = read_adapter(folders["en"])
    partial = read_adapter(folders["es"])
    dropped = sorted(n for n in partial.state if n.startswith("invertible"))
    for name in dropped:
        del partial.state[name]
    partial.state["extra.adapters.{adapter}.w"] = torch.zeros(1)
    with pytest.raises(LangarithError) as err:
        check_compatible([en, partial])
    message = str(err.value)
    assert "8 parameter(s) missing: " + ", ".join(dropped[:5]) + " and 3 more" in message
    assert "1 extra parameter(s): extra.adapters.{adapter}.w" in message


# --- same init ------------------------------------------------------------------------


def test_same_init_from_metadata(folders, tmp_path) -> None:
    init = folders["en"]  # any folder can play θ_init
    init_sha = weights_sha256(init)
    a = _copy(folders["es"], tmp_path / "a")
    b = _copy(folders["es"], tmp_path / "b")
    assert same_init(a, b) is False  # nothing recorded: not verifiable, not refused
    (a / "metadata.json").write_text(json.dumps({"init_sha256": init_sha}))
    assert same_init(a, b) is False
    (b / "metadata.json").write_text(json.dumps({"init_sha256": init_sha}))
    assert same_init(a, b) is True
    assert same_init(a, b, init) is True
    with pytest.raises(LangarithError, match="has weights sha256"):
        same_init(a, b, folders["es"])
    (b / "metadata.json").write_text(json.dumps({"init_sha256": "0" * 64}))
    with pytest.raises(LangarithError, match="trained from different θ_init"):
        same_init(a, b)


# --- writing ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_write_round_trip_and_library_load(folders, tmp_path, fmt) -> None:
    template = read_adapter(folders["en"])
    state = {k: v * 2 + 1 for k, v in template.state.items()}
    out = write_adapter(
        folders["en"], state, tmp_path / "out", name="merged", metadata={"k": 1}, weights_format=fmt
    )
    files = find_adapter_files(out)
    assert files.fmt == fmt and files.metadata is not None
    back = read_adapter(out)
    assert back.name == "merged" and back.metadata is not None and back.metadata["k"] == 1
    assert back.metadata["weights_sha256"] == weights_sha256(out)
    assert {k: v for k, v in back.config.items() if k != "name"} == {
        k: v for k, v in template.config.items() if k != "name"
    }
    assert adapter_checksum(back.state) == adapter_checksum(state)
    model = _model(cls_name="BertForMaskedLM")
    assert load_adapter_into(model, out, load_as="x") == "x"
    live = {n: p for n, p in model.named_parameters() if ".x." in n}
    assert len(live) == len(state)
    for name, tensor in state.items():
        assert torch.equal(live["bert." + denormalise_name(name, "x")].detach(), tensor)


def test_write_refuses_bad_state_and_leaves_nothing(folders, tmp_path) -> None:
    template = read_adapter(folders["en"])
    state = dict(template.state)
    first = next(iter(state))
    with pytest.raises(LangarithError, match="1 parameter\\(s\\) missing"):
        write_adapter(template, {k: v for k, v in state.items() if k != first}, tmp_path / "o")
    with pytest.raises(LangarithError, match="NaN or infinite"):
        write_adapter(template, {**state, first: state[first] * float("nan")}, tmp_path / "o")
    with pytest.raises(LangarithError, match=r"Adapter name 'a\.b' is not allowed"):
        write_adapter(template, state, tmp_path / "o", name="a.b")
    with pytest.raises(LangarithError, match=r"Unknown weights format 'npz'. Must be one of"):
        write_adapter(template, state, tmp_path / "o", weights_format="npz")
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_write_replaces_an_earlier_adapter_and_casts_dtype(folders, tmp_path) -> None:
    out = tmp_path / "o"
    template = read_adapter(folders["es"])
    write_adapter(template, {k: v * 2 for k, v in template.state.items()}, out)
    state = {k: v.double() for k, v in template.state.items()}
    write_adapter(template, state, out)  # an earlier adapter folder: replaced
    back = read_adapter(out)
    assert back.name == "es"
    assert all(back.state[k].dtype == torch.float32 for k in back.state)
    assert all(torch.equal(back.state[k], template.state[k]) for k in back.state)


def test_backbone_fingerprint_in_metadata_must_agree(folders, tmp_path) -> None:
    a = _copy(folders["es"], tmp_path / "a")
    b = _copy(folders["es"], tmp_path / "b")
    (a / "metadata.json").write_text(json.dumps({"backbone": {"config_sha256": "a" * 64}}))
    check_compatible([read_adapter(a), read_adapter(b)])  # recorded by one only: fine
    (b / "metadata.json").write_text(json.dumps({"backbone": {"config_sha256": "b" * 64}}))
    with pytest.raises(
        LangarithError, match="metadata backbone.config_sha256: aaaaaaaaaaaa… vs bbbb"
    ):
        check_compatible([read_adapter(a), read_adapter(b)])
