"""The warm process (langarith.warm): same job result, exit status and output as a cold start.

Each test runs jobs as separate interpreters, the way Snakemake runs a rule script, with
a private socket directory and a short idle timeout; servers that a test started are
stopped by their process id at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from langarith import plan, warm

ROOT = Path(__file__).resolve().parents[1]

#: A rule script in miniature: hands off, then reports who ran it and where.
JOB = """
import os, sys, time
from langarith.warm import handoff

handoff()

import json
out = {"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(),
       "marker": os.environ.get("JOB_MARKER"), "warm": os.environ.get("LANGARITH_WARM")}
print(json.dumps(out), flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(float(os.environ.get("JOB_SLEEP", "0")))
sys.exit(int(os.environ.get("JOB_EXIT", "0")))
"""


@pytest.fixture
def job_env(tmp_path):
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT / "src"),
            warm.ENV_FLAG: "1",
            warm.ENV_DIR: str(tmp_path / "rt"),
            warm.ENV_IDLE: "20",
        }
    )
    script = tmp_path / "job.py"
    script.write_text(JOB)
    servers: set[int] = set()
    yield env, script, servers
    for pid in servers:  # only the servers this test started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _run(env, script, cwd, servers, **extra):
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout.splitlines()[0])
    if report["ppid"] != os.getpid():
        servers.add(report["ppid"])
    return result, report


def test_off_runs_the_job_in_its_own_process(job_env, tmp_path):
    env, script, servers = job_env
    result, report = _run(env, script, tmp_path, servers, **{warm.ENV_FLAG: "0"}, JOB_EXIT="3")
    assert result.returncode == 3
    assert report["ppid"] == os.getpid()  # the job is the process we started
    assert not (tmp_path / "rt").exists() or not list((tmp_path / "rt").glob("*.sock"))


def test_warm_jobs_share_one_server_and_keep_status_output_cwd_and_env(job_env, tmp_path):
    env, script, servers = job_env
    work = tmp_path / "work"
    work.mkdir()
    first, one = _run(env, script, work, servers, JOB_MARKER="a", JOB_EXIT="3")
    second, two = _run(env, script, work, servers, JOB_MARKER="b")
    assert (first.returncode, second.returncode) == (3, 0)
    assert "to stderr" in first.stderr and "to stderr" in second.stderr
    assert one["ppid"] == two["ppid"] != os.getpid()  # forked by the same server
    assert (one["marker"], two["marker"]) == ("a", "b")  # each job's own environment
    assert one["cwd"] == two["cwd"] == str(work)
    assert one["warm"] == "0"  # what the job starts runs cold


def test_a_warm_job_logs_its_own_cpu_seconds(job_env, tmp_path):
    """The benchmark file's cpu_time counts only the waiting process; the child's CPU
    seconds go to the job's log (benchmarks/demo_profile.py reads them)."""
    env, script, servers = job_env
    log_file = tmp_path / "job.log"
    script.write_text(
        JOB.replace(
            "import json\n",
            "import json, logging\n"
            f"logging.basicConfig(level=logging.INFO, filename={str(log_file)!r})\n"
            "sum(i * i for i in range(3_000_000))  # some CPU\n",
        )
    )
    result, report = _run(env, script, tmp_path, servers)
    assert result.returncode == 0 and report["ppid"] != os.getpid()
    last = log_file.read_text().strip().splitlines()[-1]
    assert last.startswith("INFO:langarith.warm:job cpu_s=")
    assert float(last.rsplit("=", 1)[1]) > 0


def test_two_directories_get_two_servers(job_env, tmp_path):
    env, script, servers = job_env
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, in_a = _run(env, script, tmp_path / "a", servers)
    _, in_b = _run(env, script, tmp_path / "b", servers)
    assert in_a["ppid"] != in_b["ppid"]
    assert warm.server_key(cwd=str(tmp_path / "a")) != warm.server_key(cwd=str(tmp_path / "b"))
    offline = {"HF_HUB_OFFLINE": "1"}
    assert warm.server_key(cwd="/x", env=offline) != warm.server_key(cwd="/x", env={})
    assert warm.server_key(cwd="/x", env={warm.ENV_FLAG: "1"}) == warm.server_key(cwd="/x", env={})


def test_a_server_killed_mid_run_leaves_its_job_finishing_and_is_replaced(job_env, tmp_path):
    env, script, servers = job_env
    slow = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**env, "JOB_SLEEP": "3", "JOB_EXIT": "5"},
        stdout=subprocess.PIPE,
        text=True,
    )
    report = json.loads(slow.stdout.readline())
    server = report["ppid"]
    servers.add(server)
    os.kill(server, signal.SIGKILL)
    assert slow.wait(timeout=120) == 5  # the child, not the server, reports the status
    slow.stdout.close()
    result, after = _run(env, script, tmp_path, servers)
    assert result.returncode == 0
    assert after["ppid"] not in (server, os.getpid())  # a new server


def test_a_cancelled_job_stops_its_child(job_env, tmp_path):
    env, script, servers = job_env
    job = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**env, "JOB_SLEEP": "60"},
        stdout=subprocess.PIPE,
        text=True,
    )
    report = json.loads(job.stdout.readline())
    servers.add(report["ppid"])
    job.kill()  # no chance to pass the signal on: the child must notice by itself
    job.wait(timeout=30)
    job.stdout.close()
    deadline = time.monotonic() + 30
    while _alive(report["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(report["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone as far as the job is concerned
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.parametrize(
    ("config", "remote", "flag"),
    [
        ({"warm_start": True}, False, "1"),
        ({"warm_start": True}, True, "0"),  # a cluster job never
        ({"warm_start": False}, False, "0"),
        ({}, False, "0"),  # the default config
    ],
)
def test_the_workflow_turns_warm_starts_on_only_for_local_jobs(
    monkeypatch, tmp_path, config, remote, flag
):
    monkeypatch.setenv(warm.ENV_FLAG, "1")  # inherited from a submitting process
    monkeypatch.setenv("PYTHONPATH", "")
    plan.prepare_environment(config, tmp_path, remote=remote)
    assert os.environ[warm.ENV_FLAG] == flag


def test_the_demo_has_it_on_and_the_paper_config_off():
    from langarith.config import load_config

    assert load_config(ROOT / "config" / "demo.yaml")["warm_start"] is True
    assert load_config(ROOT / "config" / "config.yaml")["warm_start"] is False


def test_every_rule_script_hands_off_before_its_imports():
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        lines = [line for line in script.read_text().splitlines() if line.strip()]
        assert lines[:2] == ["from langarith.warm import handoff", lines[1]], script.name
        assert lines[1].startswith("handoff()"), script.name


def test_preload_imports_what_a_module_lists_in_warm_imports(tmp_path, monkeypatch):
    """A module's WARM_IMPORTS are imported with it, also when the script takes a name
    that a package re-exports from a submodule (``from langarith.report import
    write_figure``), so that forked figure jobs do not import matplotlib each."""
    pkg = tmp_path / "warmpkg_t"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from warmpkg_t.inner import draw\n")
    (pkg / "inner.py").write_text("WARM_IMPORTS = ('warmextra_t',)\n\ndef draw():\n    pass\n")
    (tmp_path / "warmextra_t.py").write_text("")
    (tmp_path / "warmdirect_t.py").write_text("WARM_IMPORTS = ('warmextra2_t', 'no_such_t')\n")
    (tmp_path / "warmextra2_t.py").write_text("")
    script = tmp_path / "script.py"
    script.write_text("from warmpkg_t import draw\nimport warmdirect_t\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["warmpkg_t", "warmpkg_t.inner", "warmextra_t", "warmdirect_t", "warmextra2_t"]
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)

    warm._preload(str(script))

    assert all(name in sys.modules for name in names)
    assert "no_such_t" not in sys.modules  # a missing one is left for the child to meet
    for name in names:
        sys.modules.pop(name, None)


def test_figures_list_matplotlib_for_the_warm_server():
    from langarith.report import figures

    assert "matplotlib.figure" in figures.WARM_IMPORTS
