"""Faults a long (cluster) run meets (issue 7, "Faults").

* A language-adapter training job killed part-way (SIGTERM, SIGKILL) resumes from its
  checkpoint when the workflow is started again, loses no finished artifact and ends
  with exactly the adapter of an uninterrupted run.
* A job that crashes leaves nothing a later run would trust; ``--retries`` re-runs it,
  and a job killed from outside (as the OOM killer or a time limit does) comes back
  and resumes.
* A second workflow on the same directory is refused by Snakemake's lock; the first
  one finishes untouched.
* A full disk while an adapter is saved fails with a clear message and keeps the
  previous artifact bit for bit.

The Snakemake tests run a cut-down config/test.yaml (3 languages, one tiny backbone)
on one core and train only ``results/adapters/tinybert/lang/es/seed1``. The shared
upstream (data, backbone, θ_init) is made once and copied for each scenario.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import adapters.loading
import pytest
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from snakemake_runs import run_snakemake, snakemake_command
from tiny import demo_spec

import langarith.adapter_io
import langarith.training.checkpoints as checkpoints
from langarith import LangarithError
from langarith.adapter_io import read_adapter, write_adapter
from langarith.backbone import build_demo_backbone
from langarith.data import prepare_demo_dataset
from langarith.io import OutputKind, atomic_dir, write_json
from langarith.train import init_language_adapter, train_language_adapter
from langarith.training.loop import (
    DeviceSetup,
    LoopConfig,
    LoopResult,
    TrainingInterrupted,
    run_training_loop,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "test.yaml"
TARGET = "results/adapters/tinybert/lang/es/seed1"
CHECKPOINT = ".checkpoints/adapters/tinybert/lang/es/seed1"
TRAIN_LOG = "logs/adapters/tinybert/lang/es/seed1.log"
MAX_STEPS = 400  # a few seconds of training: long enough to be killed part-way
CHECKPOINT_EVERY = 10
LOCKED = "Directory cannot be locked"
#: What safetensors raises on a full file system (seen on a 64 KiB tmpfs); no errno.
SAFETENSORS_ENOSPC = "Error while serializing: I/O error: No space left on device (os error 28)"


# ----------------------------------------------------------------------------- helpers


def _fault_config() -> dict:
    """config/test.yaml cut to what one language adapter needs, and a longer training."""
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["languages"] = ["en", "es", "pt"]
    cfg["evaluation_languages"] = ["es"]
    cfg["related"]["pool"] = ["es", "pt"]
    cfg["models"][0]["demo"]["pretrain_steps"] = 5
    cfg["data"]["demo"]["wikipedia_train_docs"] = 100
    cfg["tasks"] = {"nli": cfg["tasks"]["nli"]}
    # per_task may only name configured tasks (a misspelt task name is refused)
    per_task = cfg["task_adapter"].get("per_task") or {}
    cfg["task_adapter"]["per_task"] = {k: v for k, v in per_task.items() if k in cfg["tasks"]}
    cfg["scenarios"] = {"zero_shot": {"tasks": ["nli"]}}
    cfg.pop("token_budget", None)
    cfg["language_adapter"]["training"].update(
        max_steps=MAX_STEPS, checkpoint_every=CHECKPOINT_EVERY, eval_every=40
    )
    return cfg


def _write_config(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _command(workdir: Path, config: Path, *args: str) -> list[str]:
    return snakemake_command("--cores", "1", *args, configfile=config, directory=workdir)


def _snakemake(workdir: Path, config: Path, *args: str, timeout: int = 600):
    return run_snakemake(
        "--cores", "1", *args, configfile=config, directory=workdir, env=_env(), timeout=timeout
    )


def _start(workdir: Path, config: Path, log: Path, *args: str) -> subprocess.Popen:
    """Snakemake in the background, in its own process group (so it can be killed whole)."""
    with open(log, "w", encoding="utf-8") as handle:
        return subprocess.Popen(
            _command(workdir, config, *args),
            cwd=ROOT,
            env=_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(
                f"snakemake ended ({proc.returncode}) too early:\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def _wait_group_gone(pgid: int, timeout: float = 60) -> None:
    """Wait until no process of the group is left (the job itself, not only Snakemake)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail(f"processes of group {pgid} survived the kill")


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def _snapshot(workdir: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every finished artifact file (data, backbone, adapters)."""
    out = {}
    for top in ("resources", "results"):
        for path in sorted((workdir / top).rglob("*")):
            if path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[str(path.relative_to(workdir))] = (digest, path.stat().st_mtime_ns)
    return out


def _leftovers(workdir: Path) -> list[str]:
    """Temporary files or folders of atomic writes and checkpoint saves."""
    return sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*") if ".tmp-" in p.name)


def _executed_rules(output: str) -> list[str]:
    return re.findall(r"^\s*(?:local)?rule (\w+):\s*$", output, re.MULTILINE)


def _assert_same_adapter(folder: Path, reference: dict) -> dict:
    """Bit-identical weights and the same training history as the uninterrupted run."""
    state = load_file(folder / "adapter.safetensors")
    assert state.keys() == reference["state"].keys()
    for name, tensor in reference["state"].items():
        assert torch.equal(state[name], tensor), name
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["weights_sha256"] == reference["meta"]["weights_sha256"]
    assert meta["eval_history"] == reference["meta"]["eval_history"]
    assert meta["steps"] == MAX_STEPS
    return meta


def _assert_nothing_to_do(workdir: Path, config: Path) -> None:
    dry = _snakemake(workdir, config, TARGET, "-n")
    assert dry.returncode == 0, dry.output[-3000:]
    assert "Nothing to be done" in dry.output, dry.output[-3000:]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> dict:
    """A workdir holding data, backbone, θ_init and the token files, made once through
    Snakemake."""
    root = tmp_path_factory.mktemp("faults")
    config = _write_config(_fault_config(), root / "faults.yaml")
    workdir = root / "upstream"
    made = _snakemake(
        workdir, config, "results/adapters/tinybert/lang/init", "results/tokens/tinybert/es"
    )
    assert made.returncode == 0, made.output[-5000:]
    assert (workdir / "resources/data/wikipedia/es/manifest.json").exists()
    return {"workdir": workdir, "config": config}


@pytest.fixture(scope="module")
def reference(upstream, tmp_path_factory) -> dict:
    """The uninterrupted run: the rule's own hparams, seed 1, one thread on the CPU."""

    work = upstream["workdir"]
    out = tmp_path_factory.mktemp("reference") / "seed1"
    hparams = _fault_config()["language_adapter"]["training"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the rule's job (threads.train: 1)
    try:
        train_language_adapter(
            work / "resources/backbones/tinybert",
            work / "results/adapters/tinybert/lang/init",
            work / "resources/data/wikipedia/es",
            out,
            seed=1,
            hparams=hparams,
            checkpoint_dir=out.parent / ".checkpoints" / "seed1",
        )
    finally:
        torch.set_num_threads(before)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["resumed_from_step"] is None and meta["steps"] == MAX_STEPS
    return {"state": load_file(out / "adapter.safetensors"), "meta": meta}


@pytest.fixture
def workdir(upstream, tmp_path) -> Path:
    """A private copy of the upstream workdir (copytree keeps the mtimes)."""
    work = tmp_path / "work"
    shutil.copytree(upstream["workdir"], work, symlinks=True)
    return work


# ----------------------------------------------------------------------------- 1. kill


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_training_resumes_to_the_uninterrupted_adapter(
    upstream, reference, workdir, tmp_path, sig
):
    config = upstream["config"]
    finished = _snapshot(workdir)
    state_file = workdir / CHECKPOINT / "state.json"

    log = tmp_path / "killed.log"
    proc = _start(workdir, config, log, TARGET)
    _wait_for(state_file.exists, proc, log)
    os.killpg(proc.pid, sig)  # Snakemake and the training job
    proc.wait(timeout=120)
    _wait_group_gone(proc.pid)
    assert proc.returncode != 0

    # Nothing that looks finished, the checkpoint kept, every finished artifact intact.
    # (the ``.old`` twin only if the kill fell between the two renames of a checkpoint swap)
    twin = state_file.parent.with_name(".seed1.old")
    saved = [c / "state.json" for c in (state_file.parent, twin)]
    killed_at = json.loads(next(f for f in saved if f.exists()).read_text())["step"]
    assert 0 < killed_at < MAX_STEPS and killed_at % CHECKPOINT_EVERY == 0
    assert not (workdir / TARGET).exists()
    assert [p for p in _leftovers(workdir) if not p.startswith(".checkpoints")] == []
    assert _snapshot(workdir) == finished

    locks = list((workdir / ".snakemake/locks").glob("*"))
    incomplete = list((workdir / ".snakemake/incomplete").iterdir())
    if sig == signal.SIGKILL:
        # A killed Snakemake cannot remove its lock: the next start is refused until
        # `snakemake --unlock` (Snakemake's own message says so). Its "incomplete" mark
        # of the output stays too, but needs no --rerun-incomplete: the output folder
        # does not exist (it is renamed into place only when complete).
        assert locks and incomplete
        refused = _snakemake(workdir, config, TARGET)
        assert refused.returncode != 0 and LOCKED in refused.output
        assert "--unlock" in refused.output
        unlocked = _snakemake(workdir, config, "--unlock")
        assert unlocked.returncode == 0, unlocked.output[-3000:]
    else:
        # SIGTERM: Snakemake shuts down, releases its lock and drops the mark
        assert locks == [] and incomplete == []

    rerun = _snakemake(workdir, config, TARGET)
    assert rerun.returncode == 0, rerun.output[-5000:]
    assert _executed_rules(rerun.output) == ["train_language_adapter"]
    assert f"from checkpoint at step {killed_at}" in (workdir / TRAIN_LOG).read_text()

    meta = _assert_same_adapter(workdir / TARGET, reference)
    assert meta["resumed_from_step"] == killed_at
    after = _snapshot(workdir)
    assert {k: v for k, v in after.items() if not k.startswith(TARGET)} == finished
    assert not (workdir / CHECKPOINT).exists()
    assert _leftovers(workdir) == []
    assert list((workdir / ".snakemake/incomplete").iterdir()) == []
    _assert_nothing_to_do(workdir, config)


# ----------------------------------------------------------------------------- 2. crash


@pytest.mark.slow
def test_crashed_job_leaves_nothing_trusted_and_is_retried(upstream, reference, workdir):
    """``stop_after_steps`` raises inside training after step 30 (a crash after a
    checkpoint); with ``--retries 1`` the job runs twice, the retry resumes from the
    checkpoint and crashes again (the hook is still set). Nothing is left that looks
    finished, and a later run without the hook resumes and ends with the reference."""
    crashing = _fault_config()
    crashing["language_adapter"]["per_language"] = {"es": {"stop_after_steps": 30}}
    crash_config = _write_config(crashing, workdir.parent / "crash.yaml")
    finished = _snapshot(workdir)

    crashed = _snakemake(workdir, crash_config, TARGET, "--retries", "1")
    assert crashed.returncode != 0
    assert crashed.output.count("Trying to restart job") == 1, crashed.output[-5000:]
    assert "TrainingInterrupted: stop_after_steps=30 reached" in crashed.output
    # the retry (whose log replaced the first attempt's) resumed from the checkpoint
    assert "from checkpoint at step 30" in (workdir / TRAIN_LOG).read_text()

    assert not (workdir / TARGET).exists()
    assert _leftovers(workdir) == []
    assert list((workdir / ".snakemake/incomplete").iterdir()) == []
    assert _snapshot(workdir) == finished
    assert json.loads((workdir / CHECKPOINT / "state.json").read_text())["step"] == 30

    later = _snakemake(workdir, upstream["config"], TARGET)
    assert later.returncode == 0, later.output[-5000:]
    assert _executed_rules(later.output) == ["train_language_adapter"]
    meta = _assert_same_adapter(workdir / TARGET, reference)
    assert meta["resumed_from_step"] == 30
    assert _leftovers(workdir) == [] and not (workdir / CHECKPOINT).exists()


@pytest.mark.slow
def test_job_killed_from_outside_is_retried_and_resumes(upstream, reference, workdir, tmp_path):
    """The OOM killer or a scheduler's time limit kills the job, not Snakemake: with the
    local profile and ``--retries 1`` the same Snakemake run starts the job again, and
    the retry resumes from the checkpoint."""
    log = tmp_path / "retried.log"
    proc = _start(
        workdir, upstream["config"], log, TARGET, "--profile", "profiles/local", "--retries", "1"
    )
    state_file = workdir / CHECKPOINT / "state.json"
    _wait_for(state_file.exists, proc, log)
    jobs = [pid for pid, cmd in _children(proc.pid) if "train_language_adapter" in cmd]
    assert len(jobs) == 1, _children(proc.pid)
    os.kill(jobs[0], signal.SIGKILL)

    assert proc.wait(timeout=600) == 0, log.read_text()[-5000:]
    output = log.read_text()
    assert output.count("Trying to restart job") == 1
    assert _executed_rules(output) == ["train_language_adapter"] * 2
    meta = _assert_same_adapter(workdir / TARGET, reference)
    assert meta["resumed_from_step"] and meta["resumed_from_step"] % CHECKPOINT_EVERY == 0
    assert "Resuming lang es seed 1 from checkpoint" in (workdir / TRAIN_LOG).read_text()
    assert _leftovers(workdir) == [] and not (workdir / CHECKPOINT).exists()


# ----------------------------------------------------------------------------- 3. lock


@pytest.mark.slow
def test_second_workflow_on_the_same_directory_is_refused(upstream, reference, workdir, tmp_path):
    config = upstream["config"]
    finished = _snapshot(workdir)
    log = tmp_path / "first.log"
    first = _start(workdir, config, log, TARGET)
    _wait_for(lambda: any((workdir / ".snakemake/locks").glob("*.lock")), first, log)

    # Pause the first run (Snakemake and its job) while the second one starts: a few
    # hundred training steps may otherwise end before a loaded machine has started the
    # second Snakemake, and the test would depend on timing.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = _snakemake(workdir, config, TARGET, timeout=300)
        first_still_running = first.poll() is None
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert second.returncode != 0
    assert LOCKED in second.output, second.output[-3000:]
    assert os.path.realpath(workdir) in second.output  # the message names the directory
    assert first_still_running  # refused because of the first run, not after it

    assert first.wait(timeout=600) == 0, log.read_text()[-5000:]
    _assert_same_adapter(workdir / TARGET, reference)
    after = _snapshot(workdir)
    assert {k: v for k, v in after.items() if not k.startswith(TARGET)} == finished
    assert list((workdir / ".snakemake/locks").glob("*")) == []
    assert _leftovers(workdir) == []
    _assert_nothing_to_do(workdir, config)


# ----------------------------------------------------------------------------- 4. disk full


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Data, a tiny backbone and θ_init, in process (seconds, no Snakemake)."""

    root = tmp_path_factory.mktemp("tiny")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    data = prepare_demo_dataset(
        "wikipedia", "es", root / "es", options={"wikipedia_train_docs": 40, "validation_docs": 8}
    )
    spec = demo_spec(num_layers=1, pretrain_steps=2, seq_len=32)
    backbone = build_demo_backbone([data], root / "backbone", arch="bert", spec=spec, seed=0)
    init = init_language_adapter(backbone, root / "init", seed=0)
    yield {"data": data, "backbone": backbone, "init": init}
    torch.set_num_threads(before)


TINY_HP = {
    "max_steps": 6,
    "batch_size": 4,
    "block_size": 32,
    "eval_every": 2,
    "checkpoint_every": 2,
    "max_eval_blocks": 4,
}


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


#: An output kind the atomic-writer tests replace: a folder marked by its metadata.json.
_EARLIER = OutputKind("test output", record="metadata.json")


@pytest.mark.parametrize(
    ("error", "headline"),
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "No space left on device"),
        (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), "Disk quota exceeded"),
    ],
    ids=["ENOSPC", "EDQUOT"],
)
def test_atomic_dir_disk_full_keeps_the_previous_folder(tmp_path, error, headline):
    """The folder is an earlier output (:data:`_EARLIER`), so it may be replaced."""

    final = tmp_path / "adapter"
    final.mkdir()
    (final / "weights.bin").write_bytes(b"old weights")
    (final / "metadata.json").write_text('{"old": true}')
    old = _folder_bytes(final)

    with pytest.raises(LangarithError) as caught, atomic_dir(final, _EARLIER) as tmp:
        (tmp / "weights.bin").write_bytes(b"half of the new")
        raise error
    message = str(caught.value)
    assert headline in message and str(final) in message
    assert "still holds the previous version" in message
    assert caught.value.__cause__ is error
    assert _folder_bytes(final) == old
    assert _siblings(final) == ["adapter"]

    fresh = tmp_path / "fresh"
    with pytest.raises(LangarithError, match="was not created"), atomic_dir(fresh) as tmp:
        raise error
    assert not fresh.exists() and _siblings(final) == ["adapter"]

    with pytest.raises(OSError) as other, atomic_dir(final, _EARLIER):  # other errors as they are
        raise PermissionError(errno.EACCES, "denied")
    assert not isinstance(other.value, LangarithError)


def test_atomic_file_disk_full_at_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    """Delayed allocation and NFS report a full disk only at flush/fsync."""

    path = write_json(tmp_path / "metadata.json", {"version": "old"})
    old = path.read_bytes()

    def full(_fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(LangarithError, match="No space left on device") as caught:
        write_json(path, {"version": "new"})
    assert str(path) in str(caught.value)
    assert path.read_bytes() == old
    assert _siblings(path) == ["metadata.json"]


def _half_then_full(error: BaseException):
    """A ``save_file`` that writes half of the real bytes, then fails as a full disk does."""

    def save_file(tensors, filename, metadata=None):
        data = save(tensors, metadata=metadata)
        Path(filename).write_bytes(data[: len(data) // 2])
        raise error

    return save_file


@pytest.mark.parametrize(
    "error",
    [SafetensorError(SAFETENSORS_ENOSPC), OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))],
    ids=["SafetensorError", "OSError"],
)
def test_write_adapter_disk_full_keeps_the_previous_adapter(tiny, tmp_path, monkeypatch, error):

    init = read_adapter(tiny["init"])
    out = tmp_path / "merged"
    write_adapter(init, init.state, out, metadata={"lam": 0.5})
    old = _folder_bytes(out)

    doubled = {k: v * 2 for k, v in init.state.items()}
    monkeypatch.setattr(langarith.adapter_io, "save_file", _half_then_full(error))
    with pytest.raises(LangarithError) as caught:
        write_adapter(init, doubled, out, metadata={"lam": 0.7})
    message = str(caught.value)
    assert "No space left on device" in message and str(out) in message
    assert _folder_bytes(out) == old
    assert _siblings(out) == ["merged"]
    monkeypatch.undo()
    reread = read_adapter(out)
    assert all(torch.equal(reread.state[k], v) for k, v in init.state.items())


def test_language_adapter_disk_full_at_save_keeps_old_adapter_and_checkpoint(
    tiny, tmp_path, monkeypatch
):
    """The trained adapter cannot be written: the old one stays, and so does the
    checkpoint, so the run after freeing space resumes instead of starting over."""

    args = (tiny["backbone"], tiny["init"], tiny["data"])
    out, checkpoint = tmp_path / "seed1", tmp_path / ".checkpoints" / "seed1"
    train_language_adapter(*args, out, seed=1, hparams=TINY_HP)
    old = _folder_bytes(out)

    monkeypatch.setattr(
        adapters.loading, "save_file", _half_then_full(SafetensorError(SAFETENSORS_ENOSPC))
    )
    with pytest.raises(LangarithError) as caught:
        train_language_adapter(*args, out, seed=2, hparams=TINY_HP, checkpoint_dir=checkpoint)
    assert "No space left on device" in str(caught.value) and str(out) in str(caught.value)
    assert _folder_bytes(out) == old
    assert _siblings(out) == [".checkpoints", "seed1"]
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 4

    monkeypatch.undo()
    train_language_adapter(*args, out, seed=2, hparams=TINY_HP, checkpoint_dir=checkpoint)
    straight = train_language_adapter(*args, tmp_path / "straight", seed=2, hparams=TINY_HP)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["resumed_from_step"] == 4
    assert (out / "adapter.safetensors").read_bytes() == (
        straight / "adapter.safetensors"
    ).read_bytes()
    assert not checkpoint.exists()


TORCH_SAVE_FULL = (
    "[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
    "data/0: file write failed"
)


@pytest.mark.parametrize("free", [0, 1 << 40], ids=["disk-full", "space-left"])
def test_torch_save_failure_is_called_a_full_disk_only_when_it_is(
    tiny, tmp_path, monkeypatch, free
):
    """torch.save says only "file write failed"; with the disk (almost) full the user
    gets the full-disk message and the old adapter, otherwise the original error."""

    init = read_adapter(tiny["init"])
    out = tmp_path / "merged"
    write_adapter(init, init.state, out, weights_format="bin")
    old = _folder_bytes(out)

    def failing_save(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise RuntimeError(TORCH_SAVE_FULL)

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(torch, "save", failing_save)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=free))
    expected = LangarithError if free == 0 else RuntimeError
    with pytest.raises(expected) as caught:
        write_adapter(init, init.state, out, weights_format="bin")
    if free == 0:
        assert "No space left on device" in str(caught.value) and str(out) in str(caught.value)
    else:
        assert not isinstance(caught.value, LangarithError)
    assert _folder_bytes(out) == old and _siblings(out) == ["merged"]


def test_checkpoint_disk_full_is_a_clear_error_and_keeps_the_last_checkpoint(
    tiny, tmp_path, monkeypatch
):

    args = (tiny["backbone"], tiny["init"], tiny["data"])
    checkpoint = tmp_path / ".checkpoints" / "seed1"
    calls = {"n": 0}
    real_save_file = checkpoints.save_file

    def full_on_second_checkpoint(tensors, filename, *a, **k):
        if Path(filename).parent.name.startswith(".seed1.tmp-"):
            calls["n"] += 1
            if calls["n"] > 2:  # weights + best of the first checkpoint succeed
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save_file(tensors, filename, *a, **k)

    monkeypatch.setattr(checkpoints, "save_file", full_on_second_checkpoint)
    with pytest.raises(LangarithError, match="No space left on device") as caught:
        train_language_adapter(
            *args, tmp_path / "out", seed=1, hparams=TINY_HP, checkpoint_dir=checkpoint
        )
    assert str(checkpoint) in str(caught.value)
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 2
    assert _siblings(checkpoint) == ["seed1"]
    assert not (tmp_path / "out").exists()


def test_atomic_dir_puts_the_old_folder_back_when_the_swap_fails(tmp_path, monkeypatch):

    final = tmp_path / "adapter"
    final.mkdir()
    (final / "weights.bin").write_bytes(b"old")
    (final / "metadata.json").write_text("{}")  # an earlier output (_EARLIER)
    real_rename = Path.rename

    def rename(self, target):
        if self.name.startswith(".adapter.tmp-"):
            raise OSError(errno.EIO, "I/O error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="I/O error"), atomic_dir(final, _EARLIER) as tmp:
        (tmp / "weights.bin").write_bytes(b"new")
        (tmp / "metadata.json").write_text("{}")
    assert (final / "weights.bin").read_bytes() == b"old"
    assert _siblings(final) == ["adapter"]
    monkeypatch.undo()
    with atomic_dir(final, _EARLIER) as tmp:
        (tmp / "weights.bin").write_bytes(b"new")
    assert (final / "weights.bin").read_bytes() == b"new" and _siblings(final) == ["adapter"]


_KILLED_IN_CHECKPOINT_SAVE = """
import os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
import langarith.training.checkpoints as checkpoints
from langarith.train import train_language_adapter

def die(path, obj):  # state.json is the last file of a checkpoint: die before it
    os.kill(os.getpid(), signal.SIGKILL)

checkpoints.write_json = die
backbone, init, data, out, checkpoint = sys.argv[1:6]
train_language_adapter(backbone, init, data, out, seed=1,
                       hparams={hparams!r}, checkpoint_dir=checkpoint)
"""


def test_checkpoint_half_written_by_a_killed_process_is_cleaned_up(tiny, tmp_path):
    """Regression: a process SIGKILLed inside ``save_checkpoint`` leaves a
    ``.<name>.tmp-*`` folder; it used to stay in ``.checkpoints`` forever."""

    out, checkpoint = tmp_path / "seed1", tmp_path / ".checkpoints" / "seed1"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_IN_CHECKPOINT_SAVE.format(hparams=TINY_HP),
            *(str(p) for p in (tiny["backbone"], tiny["init"], tiny["data"], out, checkpoint)),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    partial = [p.name for p in checkpoint.parent.iterdir()]
    assert len(partial) == 1 and partial[0].startswith(".seed1.tmp-"), partial
    assert not out.exists()

    train_language_adapter(
        tiny["backbone"],
        tiny["init"],
        tiny["data"],
        out,
        seed=1,
        hparams=TINY_HP,
        checkpoint_dir=checkpoint,
    )
    assert json.loads((out / "metadata.json").read_text())["resumed_from_step"] is None
    assert list(checkpoint.parent.iterdir()) == []


# ----------------------------------------------------------------------------- non-finite losses
# The shared loop on a toy regression, CPU only: bf16 autocast on the CPU stands for the
# GPU's mixed precision (the policy depends on the autocast dtype, not on the device), and
# a toy loss function injects NaN at chosen steps.


def _toy_run(
    tmp_path: Path,
    *,
    nan_steps: set[int],
    setup: DeviceSetup,
    max_steps: int = 10,
    limit: int = 100,
    stop_after: int | None = None,
    name: str = "run",
    seen: dict[int, torch.Tensor] | None = None,
    inf_grad_steps: frozenset[int] = frozenset(),
) -> LoopResult:
    """Train a 4→1 linear map; the loss of step ``s`` (1-based) is NaN when ``s`` is in
    ``nan_steps``. ``seen`` collects the weights each step starts from."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    params = dict(model.named_parameters())
    target = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def loss_of(k: int) -> tuple[torch.Tensor, int]:
        if seen is not None:
            seen[k + 1] = model.weight.detach().clone()
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(k))
        out = model(x).float()
        if k + 1 in inf_grad_steps:
            out = _InfiniteGradient.apply(out)
        loss = ((out - x @ target) ** 2).mean()
        return (loss * float("nan") if k + 1 in nan_steps else loss), 8

    def evaluate() -> dict[str, float]:
        x = torch.randn(16, 4, generator=torch.Generator().manual_seed(10**6))
        return {"loss": float(((model(x).float() - x @ target) ** 2).mean())}

    cfg = LoopConfig(
        seed=0,
        max_steps=max_steps,
        lr=0.05,
        eval_every=2,
        checkpoint_every=2,
        stop_after_steps=stop_after,
        max_nonfinite_in_row=limit,
    )
    return run_training_loop(
        model,
        params,
        loss_of,
        evaluate,
        cfg,
        setup=setup,
        checkpoint_dir=tmp_path / name,
        config_hash="toy",
    )


class _InfiniteGradient(torch.autograd.Function):
    """The identity forward; an infinite gradient backward (a finite loss that still
    overflows, as fp16 activations can)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


BF16_CPU = DeviceSetup(torch.device("cpu"), torch.bfloat16, False)
FP16_SCALED_CPU = DeviceSetup(torch.device("cpu"), torch.bfloat16, True)
FP32_CPU = DeviceSetup(torch.device("cpu"), None, False)


def test_nonfinite_loss_under_mixed_precision_skips_the_step_and_counts_it(tmp_path):
    seen: dict[int, torch.Tensor] = {}
    result = _toy_run(tmp_path, nan_steps={3, 7, 8}, setup=BF16_CPU, seen=seen)
    assert result.steps == 10
    assert result.nonfinite_steps == 3 and result.skipped_steps == [3, 7, 8]
    # a skipped step changes no weight: step 4 starts where step 3 started
    assert torch.equal(seen[4], seen[3]) and torch.equal(seen[9], seen[7])
    assert not torch.equal(seen[3], seen[2])  # the other steps do train
    assert [h["nonfinite_steps"] for h in result.history] == [0, 1, 1, 3, 3]
    assert all(math.isfinite(h["loss"]) for h in result.history)
    assert result.units_processed == 7 * 8  # skipped steps train on nothing
    clean = _toy_run(tmp_path, nan_steps=set(), setup=BF16_CPU, name="clean")
    assert clean.nonfinite_steps == 0 and clean.units_processed == 10 * 8


def test_nonfinite_gradient_without_a_scaler_skips_the_step(tmp_path):
    """bf16 has no GradScaler to catch an overflow in the backward pass; the loop's
    gradient-norm check does."""
    seen: dict[int, torch.Tensor] = {}
    result = _toy_run(
        tmp_path, nan_steps=set(), setup=BF16_CPU, seen=seen, inf_grad_steps=frozenset({5})
    )
    assert result.skipped_steps == [5] and torch.equal(seen[6], seen[5])
    assert all(torch.isfinite(t).all() for t in result.best_state.values())


def test_nonfinite_steps_in_a_row_stop_the_run_only_at_the_limit(tmp_path):
    # four in a row, a good step, four more: never five in a row
    gaps = _toy_run(tmp_path, nan_steps={2, 3, 4, 5, 7, 8, 9, 10}, setup=BF16_CPU, limit=5)
    assert gaps.nonfinite_steps == 8
    with pytest.raises(LangarithError, match=r"5 non-finite losses in a row \(steps 4-8, "):
        _toy_run(tmp_path, nan_steps={4, 5, 6, 7, 8}, setup=BF16_CPU, limit=5, name="dies")
    with pytest.raises(LangarithError, match="max_nonfinite_in_row=5"):
        _toy_run(tmp_path, nan_steps={4, 5, 6, 7, 8}, setup=BF16_CPU, limit=5, name="dies2")


def test_nonfinite_loss_in_fp32_stops_at_once(tmp_path):
    with pytest.raises(LangarithError, match="loss became nan at step 3"):
        _toy_run(tmp_path, nan_steps={3}, setup=FP32_CPU)


def test_skipped_step_backs_off_the_gradient_scale(tmp_path):
    """With a GradScaler (fp16 on CUDA; here the CPU's), a skipped step halves the scale
    as the scaler does on non-finite gradients."""
    scale = {}
    for name, nan_steps in (("skipped", {4}), ("clean", set())):
        with pytest.raises(TrainingInterrupted):  # checkpoint at step 4, then stop
            _toy_run(tmp_path, nan_steps=nan_steps, setup=FP16_SCALED_CPU, stop_after=4, name=name)
        optim = torch.load(tmp_path / name / "optim.pt", weights_only=True)
        scale[name] = float(optim["scaler"]["scale"])
    assert scale["skipped"] == scale["clean"] / 2


def test_resume_after_skipped_steps_is_exact(tmp_path):
    """Counters travel in the checkpoint: a run killed between skipped steps ends with the
    weights and counts of an uninterrupted one, and a streak keeps counting."""
    whole = _toy_run(tmp_path, nan_steps={3, 4, 9}, setup=BF16_CPU, name="whole")
    with pytest.raises(TrainingInterrupted):
        _toy_run(tmp_path, nan_steps={3, 4, 9}, setup=BF16_CPU, stop_after=4, name="cut")
    resumed = _toy_run(tmp_path, nan_steps={3, 4, 9}, setup=BF16_CPU, name="cut")
    assert resumed.resumed_from_step == 4
    assert resumed.nonfinite_steps == whole.nonfinite_steps == 3
    assert resumed.skipped_steps == whole.skipped_steps == [3, 4, 9]
    assert resumed.history == whole.history
    for name, tensor in whole.best_state.items():
        assert torch.equal(resumed.best_state[name], tensor)
    # killed inside a streak (steps 3, 4 skipped, checkpoint at 4): the third in a row
    # after the resume reaches the limit 3
    with pytest.raises(TrainingInterrupted):
        _toy_run(tmp_path, nan_steps={3, 4, 5}, setup=BF16_CPU, limit=3, stop_after=4, name="s")
    with pytest.raises(LangarithError, match="3 non-finite losses in a row"):
        _toy_run(tmp_path, nan_steps={3, 4, 5}, setup=BF16_CPU, limit=3, name="s")
