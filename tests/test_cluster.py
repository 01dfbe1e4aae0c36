"""Cluster execution: the Snakemake profiles, and the workflow on a real SLURM.

The fast tests read the profiles the way Snakemake does (dry runs; no cluster needed).
``test_workflow_on_a_real_slurm`` runs tests/cluster/run_slurm_test.sh: it installs
slurm-wlm when missing, starts a single-node SLURM, runs part of the demo through
profiles/slurm and the same part through profiles/local, and compares (docs/cluster.md).
It is skipped, with the reason, where SLURM cannot be set up (not root, no apt-get)
or when LANGARITH_SKIP_CLUSTER_TEST=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from snakemake_runs import run_snakemake

ROOT = Path(__file__).resolve().parents[1]
RUN_SLURM_TEST = ROOT / "tests" / "cluster" / "run_slurm_test.sh"
SLURM_CLUSTER = ROOT / "tests" / "cluster" / "slurm_cluster.sh"
SKIP_EXIT = 77
PROFILE_ENV = (
    "LANGARITH_SLURM_GPU_PARTITION",
    "LANGARITH_GPU_STYLE",
    "LANGARITH_GPU_MODEL",
    "LANGARITH_SLURM_PARTITION",
    "LANGARITH_SLURM_ACCOUNT",
)
TRAINING_RULES = ("train_language_adapter", "train_budget_adapter", "train_task_adapter")
GPU_RULES = (*TRAINING_RULES, "lambda_grid")


def _env(**profile_vars: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_ENV}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **profile_vars)
    return env


def _snakemake(*args: str, cwd: Path = ROOT, env=None, timeout: int = 600):
    return run_snakemake(*args, cwd=cwd, env=env or _env(), timeout=timeout)


def _dry_run(profile: str, workdir: Path, **profile_vars: str) -> str:
    result = _snakemake(
        "-n",
        "--profile",
        f"profiles/{profile}",
        "--configfile",
        "config/demo.yaml",
        "--directory",
        str(workdir),
        env=_env(**profile_vars),
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    return out


def _job_resources(out: str) -> dict[str, set[str]]:
    """Rule name -> the distinct `resources:` lines of its jobs in a dry run."""
    found: dict[str, set[str]] = {}
    for rule, resources in re.findall(
        r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.MULTILINE
    ):
        found.setdefault(rule, set()).add(resources)
    return found


def _rendered_profile(name: str, **profile_vars: str) -> dict:
    """The profile as Snakemake reads it (YTE template rendered with these variables)."""
    import yte

    saved = {k: os.environ.pop(k) for k in PROFILE_ENV if k in os.environ}
    os.environ.update(profile_vars)
    try:
        with open(ROOT / "profiles" / name / "config.yaml") as fh:
            return yte.process_yaml(fh, require_use_yte=True)
    finally:
        for key in profile_vars:
            os.environ.pop(key, None)
        os.environ.update(saved)


# --- profiles ------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profile_is_read_by_snakemake(tmp_path, profile):
    # Unknown keys or values are errors of Snakemake's argument parser, so a dry run
    # through the profile proves every entry is a valid option.
    out = _dry_run(profile, tmp_path)
    assert "train_language_adapter" in out


def test_profiles_share_rerun_triggers_without_code():
    for name in ("local", "slurm"):
        triggers = _rendered_profile(name)["rerun-triggers"]
        assert "code" not in triggers, name
        assert {"mtime", "params", "input"} <= set(triggers), name


def test_slurm_profile_asks_gpus_by_default(tmp_path):
    jobs = _job_resources(_dry_run("slurm", tmp_path))
    assert set(TRAINING_RULES) <= set(jobs)
    for rule in GPU_RULES:
        for resources in jobs.get(rule, ()):
            assert "gpu=1" in resources and "gres=" not in resources, (rule, resources)
    for rule in ("backbone", "related_languages", "prepare_dataset"):
        for resources in jobs[rule]:
            assert "gpu=" not in resources and "gres=" not in resources, (rule, resources)


def test_slurm_profile_switches_to_gres_with_one_setting(tmp_path):
    jobs = _job_resources(_dry_run("slurm", tmp_path, LANGARITH_GPU_STYLE="gres"))
    assert set(TRAINING_RULES) <= set(jobs)
    for rule in GPU_RULES:
        for resources in jobs.get(rule, ()):
            assert "gpu=0" in resources and "gres=gpu:1" in resources, (rule, resources)
    for resources in jobs["backbone"]:
        assert "gres=" not in resources


def test_slurm_profile_takes_partition_account_and_gpu_model(tmp_path):
    out = _dry_run(
        "slurm",
        tmp_path,
        LANGARITH_SLURM_PARTITION="cpu",
        LANGARITH_SLURM_GPU_PARTITION="gpu-a100",
        LANGARITH_SLURM_ACCOUNT="proj123",
        LANGARITH_GPU_STYLE="gres",
        LANGARITH_GPU_MODEL="a100",
    )
    jobs = _job_resources(out)
    for resources in jobs["backbone"]:
        assert "slurm_partition=cpu" in resources and "slurm_account=proj123" in resources
    assert set(TRAINING_RULES) <= set(jobs)
    for rule in GPU_RULES:
        for resources in jobs.get(rule, ()):
            assert "gres=gpu:a100:1" in resources, resources
            assert "slurm_partition=gpu-a100" in resources and "slurm_account=proj123" in resources
    rendered = _rendered_profile("slurm", LANGARITH_SLURM_ACCOUNT="proj123")
    assert "slurm-no-account" not in rendered


def test_slurm_profile_refuses_an_unknown_gpu_style(tmp_path):
    result = _snakemake(
        "-n",
        "--profile",
        "profiles/slurm",
        "--configfile",
        "config/demo.yaml",
        "--directory",
        str(tmp_path),
        env=_env(LANGARITH_GPU_STYLE="gpu"),
    )
    assert result.returncode != 0
    assert "LANGARITH_GPU_STYLE is 'gpu'; allowed: gpus, gres" in result.stderr + result.stdout


_RULES_PROBE = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

root, workdir, configfile = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=[root / "config" / configfile]),
        snakefile=root / "Snakefile",
        workdir=workdir,
    )._workflow

    def declared(rule, name):
        # A plain value declared in the rule (Resource objects in Snakemake 9).
        value = rule.resources.get(name)
        value = getattr(value, "value", value)
        return value if isinstance(value, (int, str)) else None

    rules = {
        rule.name: {
            "local": rule.name in wf._localrules or rule.norun,
            "gpu": declared(rule, "gpu"),
            "gres": declared(rule, "gres"),
        }
        for rule in wf.rules
    }
print("RULES_JSON=" + json.dumps(rules))
"""


def _rules_of(configfile: str, workdir: Path) -> dict[str, dict]:
    """Every rule the workflow defines under ``configfile``: local or not, declared GPUs."""
    result = subprocess.run(
        [sys.executable, "-c", _RULES_PROBE, str(ROOT), str(workdir), configfile],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    match = re.search(r"^RULES_JSON=(.*)$", result.stdout, flags=re.MULTILINE)
    assert match, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def workflow_rules(tmp_path_factory) -> dict[str, dict]:
    """Every rule of the demo's workflow: local or not, and its declared GPUs."""
    return _rules_of("demo.yaml", tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="module")
def paper_rules(tmp_path_factory) -> dict[str, dict]:
    """Every rule of the paper config's workflow (the arms' per-task and optional rules
    differ from the demo's)."""
    return _rules_of("config.yaml", tmp_path_factory.mktemp("probe_paper"))


def test_gpu_rules_run_on_the_cluster_and_downloads_on_the_head(workflow_rules):
    gpu_rules = {name for name, rule in workflow_rules.items() if rule["gpu"]}
    assert set(GPU_RULES) <= gpu_rules
    for name in sorted(gpu_rules):
        assert not workflow_rules[name]["local"], f"GPU rule {name} must not be a localrule"
    # Compute nodes may have no internet: data preparation (the downloads) stays local.
    assert workflow_rules["prepare_dataset"]["local"]


def test_slurm_profile_knows_every_gpu_rule(workflow_rules, paper_rules):
    # The gres style rewrites the GPU request of exactly the rules that declare gpu=N,
    # in the demo's workflow and in the paper config's.
    demo_gpu = {name for name, rule in workflow_rules.items() if rule["gpu"]}
    paper_gpu = {name for name, rule in paper_rules.items() if rule["gpu"]}
    rendered = _rendered_profile("slurm", LANGARITH_GPU_STYLE="gres")
    listed = set(rendered["set-resources"])
    assert demo_gpu | paper_gpu <= listed, (
        "profiles/slurm/config.yaml: gpu_rules must list the rules with resources gpu=N: "
        f"missing {sorted((demo_gpu | paper_gpu) - listed)}"
    )
    # and nothing else: a listed rule is a GPU rule of one of the two workflows, or of a
    # setting neither config turns on (tlr.language_adapters: paper)
    optional = {"tlr_paper_language_adapter"}
    assert listed <= demo_gpu | paper_gpu | optional, sorted(listed - demo_gpu - paper_gpu)
    for rules in (workflow_rules, paper_rules):
        for name, rule in rules.items():
            assert rule["gpu"] in (None, 0, 1), f"{name}: the gres style asks for gpu:1"
            assert not rule["gres"], f"{name}: declare gpu=N in the rule, the profile maps it"


def test_local_profile_serialises_gpu_jobs():
    assert _rendered_profile("local")["resources"]["gpu"] == 1


WORKFLOW_PARTS = ("Snakefile", "rules", "workflow", "config", "envs", "profiles", "src")


def test_cosmetic_script_edit_does_not_rerun_with_the_profile_triggers(tmp_path):
    for part in WORKFLOW_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("*.egg-info"))
        else:
            shutil.copy2(source, tmp_path / part)
    target = "results/related_languages.tsv"
    args = ["--profile", "profiles/local", "--configfile", "config/demo.yaml", "--cores", "1"]
    made = _snakemake(target, *args, cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    time.sleep(1.1)  # a later mtime than the output's, on coarse file systems too
    script = tmp_path / "workflow" / "scripts" / "related.py"
    script.write_text(script.read_text() + "\n# a comment: a cosmetic edit\n")

    with_profile = _snakemake(target, "-n", *args, cwd=tmp_path)
    assert with_profile.returncode == 0, with_profile.stderr[-3000:]
    assert "Nothing to be done" in with_profile.stdout + with_profile.stderr

    # Snakemake's default triggers include `code`: the same edit re-runs the job.
    default = _snakemake(target, "-n", *args, "--rerun-triggers", *_ALL_TRIGGERS, cwd=tmp_path)
    out = default.stdout + default.stderr
    assert default.returncode == 0, out[-3000:]
    assert re.search(r"^rule related_languages:", out, flags=re.MULTILINE), out[-3000:]
    assert "Code has changed since last execution" in out, out[-3000:]


_ALL_TRIGGERS = ("mtime", "params", "input", "software-env", "code")


# --- a real SLURM --------------------------------------------------------------------


def _stop_cluster(cluster_dir: Path) -> None:
    if (cluster_dir / "slurm.conf").exists():
        subprocess.run(
            ["bash", str(SLURM_CLUSTER), "stop", str(cluster_dir)], timeout=180, check=False
        )


@pytest.mark.slow
@pytest.mark.cluster
def test_workflow_on_a_real_slurm(tmp_path):
    if os.environ.get("LANGARITH_SKIP_CLUSTER_TEST") == "1":
        pytest.skip("LANGARITH_SKIP_CLUSTER_TEST=1")
    if sys.platform != "linux":
        pytest.skip("the test SLURM runs on Linux only")
    if not shutil.which("bash"):
        pytest.skip("the SLURM test script needs bash")
    workdir = tmp_path / "run"
    env = dict(_env(), LANGARITH_PYTHON=sys.executable)
    proc = subprocess.Popen(
        ["bash", str(RUN_SLURM_TEST), "--workdir", str(workdir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=3600)
    except subprocess.TimeoutExpired:
        # The script's trap stops the cluster on SIGTERM; the group kill is the backstop.
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        _stop_cluster(workdir / "cluster")
        pytest.fail("the SLURM test did not finish in an hour:\n" + output[-5000:])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode == SKIP_EXIT:
        reasons = re.findall(r"^SKIP: (.*)$", output, flags=re.MULTILINE)
        pytest.skip(reasons[-1] if reasons else "SLURM cannot be set up here")
    assert proc.returncode == 0, output[-8000:]

    summary = json.loads((workdir / "summary.json").read_text())
    # munged, slurmctld and slurmd were stopped again.
    assert len(summary["daemon_pids"]) == 3
    for pid in summary["daemon_pids"]:
        cmdline = Path(f"/proc/{pid}/cmdline")
        alive = cmdline.exists() and re.search(rb"slurm|munge", cmdline.read_bytes())
        assert not alive, f"SLURM daemon {pid} is still running"
    jobs = summary["sbatch_jobs"]
    assert summary["passed"] and len(jobs) >= 2
    assert all(job["state"] == "COMPLETED" and job["slurm_job_id"] > 0 for job in jobs)
    gpu_rules = set(_rendered_profile("slurm", LANGARITH_GPU_STYLE="gres")["set-resources"])
    gpu_jobs = [job for job in jobs if job["rule"] in gpu_rules]
    assert all(job["gpus"] == 1 for job in gpu_jobs), jobs
    assert all(job["gpus"] == 0 for job in jobs if job["rule"] not in gpu_rules), jobs
    if not os.environ.get("LANGARITH_SLURM_TEST_TARGETS"):
        # The default targets hold a training job and data preparation on the head.
        assert [job["rule"] for job in gpu_jobs] == ["train_language_adapter"], jobs
        assert "prepare_dataset" in summary["local_jobs"]
    # The log of the SLURM run shows each submission with its SLURM job id.
    log = (workdir / "slurm.log").read_text()
    for job in jobs:
        assert f"has been submitted with SLURM jobid {job['slurm_job_id']} " in log
    assert "compared" in output and " 0 differences" in output
    print("SLURM test timings (s):", json.dumps(summary["seconds"]))
