"""Never destroy what the workflow did not write, verify what it reads (issue 11).

The data-loss cases run on real folders of files: the tree is hashed before a refused
command and again after it, and must not have changed in any byte, name or mode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import adapters
import pytest
import torch
from safetensors.torch import load_file, save_file
from toy_setup import ToySetup, build_toy_setup
from transformers import AutoModelForMaskedLM

import langarith.io as lio
from langarith import LangarithError
from langarith.adapter_io import (
    SAFE_WEIGHTS_NAME,
    WEIGHTS_NAME,
    load_adapter_into,
    read_adapter,
    weights_sha256,
    write_adapter,
)
from langarith.backbone import build_demo_backbone
from langarith.cli import main
from langarith.data import prepare_demo_dataset, read_split, verify_manifest
from langarith.data.formats import combined_checksum
from langarith.evaluate.score_files import write_scores
from langarith.io import atomic_file, sha256_file, write_json
from langarith.merge import LanguageVectorSet, merge_adapters
from langarith.related import write_related_table
from langarith.train import train_language_adapter, train_task_adapter
from langarith.training.checkpoints import (
    CHECKPOINT_FILES,
    find_checkpoint,
    read_checkpoint_state,
    remove_checkpoint,
)
from langarith.training.inputs import read_rows
from langarith.training.loop import (
    LoopConfig,
    TrainingInterrupted,
    device_and_dtype,
    run_training_loop,
)

# ----------------------------------------------------------------------------- helpers


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``root`` (itself included) → (sha256 or "dir", mode)."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        kind = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        out[str(path.relative_to(root))] = (kind, stat.S_IMODE(path.stat().st_mode))
    return out


def user_folder(path: Path) -> Path:
    """A folder of a user's own files (and a subfolder)."""
    (path / "notes").mkdir(parents=True)
    (path / "thesis.tex").write_text("\\section{Results}\n")
    (path / "notes" / "todo.txt").write_text("rerun es\n")
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ToySetup:
    return build_toy_setup(
        tmp_path_factory.mktemp("toy"), kinds=("nli",), languages=("en", "es"), rows=8
    )


@pytest.fixture
def bank(toy: ToySetup, tmp_path: Path) -> dict[str, Path]:
    """Copies of θ_init and two language adapters inside ``tmp_path/bank``."""
    root = tmp_path / "bank"
    out = {"init": shutil.copytree(toy.init, root / "init")}
    for lang in ("en", "es"):
        out[lang] = shutil.copytree(toy.lang[lang], root / lang)
    return out


@pytest.fixture
def inside(tmp_path: Path) -> Iterator[Path]:
    """Run the test from ``tmp_path`` (for ``--out .``)."""
    before = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(before)


def merge_cli(bank: dict[str, Path], out: str | Path, *extra: str) -> int:
    return main(
        ["merge", "linear", str(bank["en"]), str(bank["es"]), "--weights", "0.5,0.5",
         "--out", str(out), *extra]
    )  # fmt: skip


def refused(capsys: pytest.CaptureFixture[str], code: int, *words: str) -> str:
    """The one stderr line of a refused command, checked for ``words``."""
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "Traceback" not in err, err
    assert "Refusing to write" in err or all(w in err for w in words), err
    for word in words:
        assert word in err, err
    return err


def flip_bytes(path: Path, count: int = 200) -> None:
    """Change ``count`` bytes near the end of a file (inside the tensor data)."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) - count, len(data)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


# ----------------------------------------------------------------------------- data loss: merge


@pytest.mark.parametrize("where", ["user_folder", "input", "parent_of_inputs", "init"])
def test_merge_never_replaces_user_files_or_inputs(bank, tmp_path, capsys, where) -> None:
    user_folder(tmp_path / "mine")
    out = {
        "user_folder": tmp_path / "mine",
        "input": bank["es"],
        "parent_of_inputs": bank["en"].parent,
        "init": bank["init"],
    }[where]
    before = snapshot(tmp_path)
    extra = ["--init", str(bank["init"])] if where == "init" else []
    err = refused(capsys, merge_cli(bank, out, *extra), str(out))
    assert snapshot(tmp_path) == before
    why = {
        "user_folder": "not an earlier merged adapter",
        "input": "it is an input of this command",
        "parent_of_inputs": "it contains an input of this command",
        "init": "it is an input of this command",
    }[where]
    assert why in err


@pytest.mark.parametrize("spelling", [".", "$PWD"])
def test_merge_out_current_folder_is_refused_cleanly(bank, inside, capsys, spelling) -> None:
    (inside / "keep.txt").write_text("mine")
    before = snapshot(inside)
    out = str(inside) if spelling == "$PWD" else "."
    refused(capsys, merge_cli(bank, out), "it is the current folder")
    assert snapshot(inside) == before


def test_merge_replaces_only_a_clean_earlier_merge(bank, tmp_path, capsys) -> None:
    out = tmp_path / "merged"
    assert merge_cli(bank, out) == 0
    first = weights_sha256(out)
    assert main(
        ["merge", "linear", str(bank["en"]), str(bank["es"]), "--weights", "0.2,0.8",
         "--out", str(out)]
    ) == 0  # fmt: skip
    assert weights_sha256(out) != first  # an earlier merge of the same kind: replaced
    (out / ".snakemake_timestamp").touch()  # what Snakemake adds to directory() outputs
    assert merge_cli(bank, out) == 0  # still an earlier merge
    (out / "my_notes.txt").write_text("do not lose me")
    before = snapshot(tmp_path)
    capsys.readouterr()
    err = refused(capsys, merge_cli(bank, out), str(out))
    assert "did not write (my_notes.txt)" in err
    assert snapshot(tmp_path) == before
    # a language adapter is not a merged adapter: never replaced by a merge
    other = shutil.copytree(bank["en"], tmp_path / "copy_of_en")
    before = snapshot(tmp_path)
    err = refused(capsys, merge_cli(bank, other), "not an earlier merged adapter")
    assert "'language_adapter'" in err or "'toy_language_adapter'" in err
    assert snapshot(tmp_path) == before


def test_out_on_unwritable_or_impossible_parent_is_one_line(
    bank, tmp_path, capsys, monkeypatch
) -> None:
    (tmp_path / "a_file").write_text("x")
    refused(capsys, merge_cli(bank, tmp_path / "a_file" / "merged"), "is a file, not a folder")
    real_access = os.access
    readonly = tmp_path / "ro"
    readonly.mkdir()

    def access(path, mode, *args, **kwargs):  # a read-only mount (root ignores chmod)
        if Path(path) == readonly and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(lio.os, "access", access)
    refused(capsys, merge_cli(bank, readonly / "merged"), "not writable")
    code = main(["related", "--targets", "es", "--pool", "it", "--out", str(readonly / "r.tsv")])
    refused(capsys, code, "not writable")
    assert list(readonly.iterdir()) == []


def test_symlinked_output_is_refused(bank, tmp_path, capsys) -> None:
    target = user_folder(tmp_path / "target")
    (tmp_path / "link").symlink_to(target)
    before = snapshot(tmp_path)
    refused(capsys, merge_cli(bank, tmp_path / "link"), "symbolic link")
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- data loss: others


def test_related_out_never_replaces_a_folder_or_a_foreign_file(tmp_path, capsys) -> None:
    folder = user_folder(tmp_path / "results")
    for i in range(40):
        (folder / f"f{i}.csv").write_text(str(i))
    (tmp_path / "paper.tsv").write_text("my\town\ttable\n")
    before = snapshot(tmp_path)
    for out in (folder, tmp_path / "paper.tsv"):
        code = main(["related", "--targets", "es", "--pool", "it", "--out", str(out)])
        refused(capsys, code, str(out))
    assert snapshot(tmp_path) == before
    table = tmp_path / "related.tsv"
    write_related_table([], table)
    write_related_table([], table)  # an earlier table: replaced
    assert table.read_text().startswith("target\trelated")


def test_score_csv_is_not_written_over_a_foreign_file(tmp_path) -> None:
    foreign = tmp_path / "scores.csv"
    foreign.write_text("name,grade\nana,1\n")
    with pytest.raises(LangarithError, match="not an earlier score table"):
        write_scores([], foreign)
    assert foreign.read_text() == "name,grade\nana,1\n"
    write_scores([], tmp_path / "s.csv")
    write_scores([], tmp_path / "s.csv")  # its own earlier output: fine


def test_atomic_file_never_deletes_a_folder(tmp_path) -> None:
    folder = user_folder(tmp_path / "x.json")
    before = snapshot(tmp_path)
    with pytest.raises(LangarithError, match="it is a folder, and this output is a file"):
        write_json(folder, {"a": 1})
    assert snapshot(tmp_path) == before


def test_data_and_backbone_outputs_follow_the_rule(tmp_path, capsys) -> None:
    mine = user_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    with pytest.raises(LangarithError, match="not an earlier dataset folder"):
        prepare_demo_dataset("xnli", "es", mine, options={"task_train_rows": 2})
    with pytest.raises(LangarithError, match="not an earlier backbone folder"):
        build_demo_backbone([tmp_path / "corpus"], mine, arch="bert")
    with pytest.raises(LangarithError, match="contains an input"):
        build_demo_backbone([mine / "notes"], mine, arch="bert")
    code = main(["data", "prepare", "--dataset", "xnli", "--lang", "es", "--demo",
                 "--out", str(mine)])  # fmt: skip
    refused(capsys, code, str(mine), "not an earlier dataset folder")
    assert snapshot(tmp_path) == before
    data = tmp_path / "xnli" / "es"
    options = {"task_train_rows": 2, "task_validation_rows": 2, "task_test_rows": 2}
    prepare_demo_dataset("xnli", "es", data, options=options)
    prepare_demo_dataset("xnli", "es", data, options=options)  # an earlier dataset: replaced
    (data / "extra.txt").write_text("x")
    with pytest.raises(LangarithError, match=r"did not write \(extra.txt\)"):
        prepare_demo_dataset("xnli", "es", data, options=options)


# ----------------------------------------------------------------------------- checkpoints


def test_training_refuses_a_checkpoint_dir_or_out_holding_other_files(
    toy, tmp_path, capsys
) -> None:
    ckpt = user_folder(tmp_path / "ckpt")
    mine = user_folder(tmp_path / "mine")
    data = toy.data[("nli", "es")]
    before = snapshot(tmp_path)
    with pytest.raises(LangarithError, match=r"ckpt: it is not an earlier training checkpoint"):
        train_language_adapter(
            toy.backbone, toy.init, data, tmp_path / "out", seed=1, checkpoint_dir=ckpt
        )
    with pytest.raises(LangarithError, match=r"mine: it is not an earlier language adapter"):
        train_language_adapter(toy.backbone, toy.init, data, mine, seed=1)
    code = main(
        ["train", "language", "--backbone", str(toy.backbone), "--init", str(toy.init),
         "--data", str(data), "--out", str(tmp_path / "o"), "--checkpoint-dir", str(ckpt)]
    )  # fmt: skip
    refused(capsys, code, str(ckpt), "not an earlier training checkpoint")
    with pytest.raises(LangarithError, match="it is an input of this command"):
        train_task_adapter(toy.backbone, toy.lang["en"], data, "nli", toy.lang["en"], seed=1)
    with pytest.raises(LangarithError, match="contains an input of this command"):
        train_task_adapter(
            toy.backbone, toy.lang["en"], data, "nli", tmp_path / "o", seed=1,
            checkpoint_dir=tmp_path,
        )  # fmt: skip
    assert snapshot(tmp_path) == before


def _tiny_run(ckpt: Path, config_hash: str, *, every: int, stop: int | None = None):
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 1)
    params = dict(layer.named_parameters())
    x = torch.ones(4, 3)

    def loss(k: int) -> tuple[torch.Tensor, int]:
        return ((layer(x) - 1.0) ** 2).mean(), 4

    def evaluate() -> dict[str, float]:
        return {"loss": float(((layer(x) - 1.0) ** 2).mean())}

    cfg = LoopConfig(seed=0, max_steps=4, checkpoint_every=every, stop_after_steps=stop)
    return run_training_loop(
        layer, params, loss, evaluate, cfg, setup=device_and_dtype(),
        checkpoint_dir=ckpt, config_hash=config_hash,
    )  # fmt: skip


def test_checkpoint_of_other_settings_is_kept_until_replaced(tmp_path) -> None:
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted):
        _tiny_run(ckpt, "lr=1e-4", every=1, stop=1)
    old = snapshot(ckpt)
    assert read_checkpoint_state(ckpt)["config_hash"] == "lr=1e-4"
    # another lr, no checkpoint of its own: the old valid one is not deleted
    _tiny_run(ckpt, "lr=5e-4", every=0)
    remove_checkpoint(ckpt, "lr=5e-4")
    assert snapshot(ckpt) == old
    # another lr that writes its first checkpoint: that one replaces the old one
    with pytest.raises(TrainingInterrupted):
        _tiny_run(ckpt, "lr=5e-4", every=1, stop=2)
    assert read_checkpoint_state(ckpt)["config_hash"] == "lr=5e-4"
    remove_checkpoint(ckpt, "lr=5e-4")
    assert not ckpt.exists() and find_checkpoint(ckpt) is None


def test_remove_checkpoint_deletes_only_checkpoint_files(tmp_path) -> None:
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted):
        _tiny_run(ckpt, "h", every=1, stop=1)
    assert {p.name for p in ckpt.iterdir()} <= CHECKPOINT_FILES
    (ckpt / "mine.txt").write_text("added later by a user")
    remove_checkpoint(ckpt, "h")
    assert [p.name for p in ckpt.iterdir()] == ["mine.txt"]


# ----------------------------------------------------------------------------- integrity


def test_flipped_bytes_are_refused_wherever_weights_are_read(toy, bank, tmp_path) -> None:
    weights = bank["es"] / SAFE_WEIGHTS_NAME
    meta = json.loads((bank["es"] / "metadata.json").read_text())
    assert meta["weights_sha256"] == sha256_file(weights)
    flip_bytes(weights)
    read_back = load_file(weights)  # still a readable file: only the checksum can tell
    assert read_back
    match = rf"{weights} do not match the sha256 recorded"
    with pytest.raises(LangarithError, match=match):
        merge_adapters("linear", [bank["en"], bank["es"]], [0.5, 0.5], out_dir=tmp_path / "m")
    with pytest.raises(LangarithError, match=match):
        LanguageVectorSet.from_dirs(bank["init"], {"en": bank["en"], "es": bank["es"]})
    model = AutoModelForMaskedLM.from_pretrained(toy.backbone)
    adapters.init(model)
    with pytest.raises(LangarithError, match=match):  # as training a task adapter loads it
        load_adapter_into(model, bank["es"], load_as="lang", with_head=False)
    assert not (tmp_path / "m").exists()


def test_a_damaged_bin_twin_is_named(bank) -> None:
    twin = bank["en"] / WEIGHTS_NAME
    flip_bytes(twin, 50)
    with pytest.raises(LangarithError, match=rf"{twin} do not match the sha256 recorded"):
        read_adapter(bank["en"])


def test_task_adapter_on_a_damaged_language_adapter_is_refused(toy, tmp_path) -> None:
    lang = shutil.copytree(toy.lang["en"], tmp_path / "en")
    flip_bytes(lang / SAFE_WEIGHTS_NAME)
    with pytest.raises(LangarithError, match="do not match the sha256 recorded"):
        train_task_adapter(
            toy.backbone, lang, toy.data[("nli", "es")], "nli", tmp_path / "task", seed=1,
            hparams={"max_steps": 1},
        )  # fmt: skip
    assert not (tmp_path / "task").exists()


def test_config_that_does_not_fit_the_weights_is_refused(bank, tmp_path) -> None:
    for folder in (bank["en"], bank["es"], bank["init"]):  # every config says rf 16
        path = folder / "adapter_config.json"
        config = json.loads(path.read_text())
        config["config"]["reduction_factor"] = 16
        path.write_text(json.dumps(config))
    with pytest.raises(LangarithError, match=r"do not fit its adapter_config.json.*\(16, 32\)"):
        merge_adapters("linear", [bank["en"], bank["es"]], [0.5, 0.5], out_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def _without_metadata(folder: Path) -> Path:
    (folder / "metadata.json").unlink()
    return folder


def test_ties_refuses_inputs_without_init_record_linear_says_unchecked(
    bank, tmp_path, caplog
) -> None:
    _without_metadata(bank["es"])
    with pytest.raises(LangarithError, match=r"es records no init_sha256.*subtracts θ_init"):
        merge_adapters(
            "ties", [bank["en"], bank["es"]], [0.5, 0.5], init_dir=bank["init"],
            out_dir=tmp_path / "t", lam=1.0, top_k=20,
        )  # fmt: skip
    assert not (tmp_path / "t").exists()
    with caplog.at_level(logging.WARNING, logger="langarith.merge.states"):
        out = merge_adapters(
            "linear", [bank["en"], bank["es"]], [0.5, 0.5], init_dir=bank["init"],
            out_dir=tmp_path / "l",
        )  # fmt: skip
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["init_verified"] is False
    assert "shared θ_init NOT verified" in caplog.text and "record no init_sha256" in caplog.text


def test_lambda_engine_set_refuses_ties_over_inputs_without_init_record(bank) -> None:
    """The λ engine's in-place TIES refuses what merge_adapters refuses; linear still fills."""
    _without_metadata(bank["es"])
    held = LanguageVectorSet.from_dirs(bank["init"], {"en": bank["en"], "es": bank["es"]})
    out = {name: torch.zeros_like(t) for name, t in held.thetas[0].items()}
    with pytest.raises(LangarithError, match=r"'ties' subtracts θ_init.*es records no init_sha256"):
        held.fill("ties", [0.5, 0.5], out=out, lam=1.0, top_k=20)
    held.fill("linear", [0.5, 0.5], out=out)
    name = held.names[0]
    expected = 0.5 * held.thetas[0][name] + 0.5 * held.thetas[1][name]
    assert torch.allclose(out[name], expected)


def test_init_verified_only_when_every_input_records_it(bank, tmp_path) -> None:
    out = merge_adapters(
        "ties", [bank["en"], bank["es"]], [0.5, 0.5], init_dir=bank["init"],
        out_dir=tmp_path / "t", lam=1.0, top_k=20,
    )  # fmt: skip
    assert json.loads((out / "metadata.json").read_text())["init_verified"] is True


# ----------------------------------------------------------------------------- data checks


def _refresh_manifest(folder: Path, split: str) -> None:
    """Make the manifest record the file as it is now (a manifest that was rewritten)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    path = folder / f"{split}.jsonl"
    rows = len(path.read_bytes().splitlines())
    manifest["splits"][split].update(rows=rows, sha256=sha256_file(path))
    manifest["checksum"] = combined_checksum(
        {s: e["sha256"] for s, e in manifest["splits"].items()}
    )
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "wikipedia" / "es"
    prepare_demo_dataset(
        "wikipedia", "es", folder, options={"wikipedia_train_docs": 20, "validation_docs": 5}
    )
    return folder


def test_data_edited_after_its_manifest_is_refused(corpus) -> None:
    path = corpus / "train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + json.dumps({"id": "x", "text": "new"}) + "\n")
    with pytest.raises(LangarithError, match=r"train.jsonl does not match its manifest"):
        read_rows(corpus, "train")
    with pytest.raises(LangarithError, match=r"train.jsonl does not match its manifest"):
        verify_manifest(corpus)
    read_rows(corpus, "validation")  # the untouched split still reads


@pytest.mark.parametrize(
    ("bad", "problem"),
    [({"id": "x"}, "differ from the wikipedia fields"), ({"id": "x", "text": 7}, "'text' must")],
)
def test_malformed_rows_are_refused_with_their_line(corpus, bad, problem) -> None:
    path = corpus / "train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, json.dumps(bad) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    _refresh_manifest(corpus, "train")
    with pytest.raises(LangarithError, match=rf"train.jsonl line 3: .*{problem}"):
        read_rows(corpus, "train")


def test_task_rows_without_their_fields_are_refused(toy, tmp_path) -> None:
    folder = shutil.copytree(toy.data[("nli", "es")], tmp_path / "xnli")
    path = folder / "validation.jsonl"
    rows = read_split(folder, "validation")
    del rows[1]["premise"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _refresh_manifest(folder, "validation")
    with pytest.raises(LangarithError, match=r"validation.jsonl line 2: row fields"):
        read_rows(folder, "validation")


def test_non_utf8_corpus_is_one_line(corpus) -> None:
    path = corpus / "train.jsonl"
    data = path.read_bytes().splitlines(keepends=True)
    data[1] = data[1].replace(b'"text": "', b'"text": "\xff\xfe', 1)
    path.write_bytes(b"".join(data))
    _refresh_manifest(corpus, "train")
    with pytest.raises(LangarithError, match=r"train.jsonl line 2 is not UTF-8") as caught:
        read_rows(corpus, "train")
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------------------------- loadable


def test_default_load_adapter_on_language_init_and_merged_folders(toy, bank, tmp_path) -> None:
    merged = merge_adapters(
        "linear", [bank["en"], bank["es"]], [0.5, 0.5], out_dir=tmp_path / "m", name="mix"
    )
    for folder in (toy.init, toy.lang["en"], merged):
        model = AutoModelForMaskedLM.from_pretrained(toy.backbone)
        adapters.init(model)
        name = model.load_adapter(str(folder))  # default arguments: reads the .bin twin
        live = {n: p for n, p in model.named_parameters() if f".{name}." in n}
        expected = load_file(folder / SAFE_WEIGHTS_NAME)
        assert len(live) == len(expected) > 0
        for key, tensor in expected.items():
            assert torch.equal(live[key], tensor), (folder, key)
        twin = torch.load(folder / WEIGHTS_NAME, weights_only=True)  # plain tensors only
        assert sorted(twin) == sorted(expected)


def test_default_load_adapter_on_a_task_folder_with_its_head(toy) -> None:
    model = adapters.AutoAdapterModel.from_pretrained(toy.backbone)
    assert model.load_adapter(str(toy.task["nli"])) == "nli"
    assert "nli" in model.heads
    head = load_file(toy.task["nli"] / "model_head.safetensors")
    live = dict(model.named_parameters())
    for key, tensor in head.items():
        assert torch.equal(live[key], tensor)


def test_pickle_in_place_of_weights_is_refused_as_pickle(bank) -> None:
    for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME):
        folder = bank["en"]
        (folder / "metadata.json").unlink(missing_ok=True)
        if name == WEIGHTS_NAME:
            (folder / SAFE_WEIGHTS_NAME).unlink()
        torch.save({"payload": Path("/")}, folder / name)
        with pytest.raises(LangarithError) as caught:
            read_adapter(folder)
        text = str(caught.value)
        assert "pickle files are not loaded; convert to safetensors" in text
        assert "truncated" not in text and "weights_only" not in text


# ----------------------------------------------------------------------------- file modes


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_outputs_get_the_umask_default_mode(bank, tmp_path, umask_022) -> None:
    out = merge_adapters("linear", [bank["en"], bank["es"]], [0.5, 0.5], out_dir=tmp_path / "m")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    save_file({"x": torch.zeros(2)}, str(tmp_path / "raw.safetensors"))
    assert stat.S_IMODE((tmp_path / "raw.safetensors").stat().st_mode) == 0o600  # the cause
    with atomic_file(tmp_path / "t.txt") as handle:
        handle.write("x")
    assert stat.S_IMODE((tmp_path / "t.txt").stat().st_mode) == 0o644
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted):
        _tiny_run(ckpt, "h", every=1, stop=1)
    assert {stat.S_IMODE(p.stat().st_mode) for p in ckpt.iterdir()} == {0o644}


def test_write_adapter_records_which_file_the_checksum_covers(bank, tmp_path) -> None:
    template = read_adapter(bank["en"])
    out = write_adapter(template, template.state, tmp_path / "w", metadata={"kind": "x"})
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["weights_sha256"] == sha256_file(out / SAFE_WEIGHTS_NAME)
    assert meta["weights_files"] == {
        SAFE_WEIGHTS_NAME: sha256_file(out / SAFE_WEIGHTS_NAME),
        WEIGHTS_NAME: sha256_file(out / WEIGHTS_NAME),
    }
