#!/usr/bin/env bash
# Run part of the demo DAG through profiles/slurm on a real single-node SLURM, run the
# same targets through profiles/local, and check that both made the same files.
#
#   tests/cluster/run_slurm_test.sh [--workdir DIR] [--keep] [--gpu-style gpus|gres]
#                                   [--configfile FILE] [TARGET ...]
#
# Steps: install slurm-wlm + munge if missing (apt-get), start munged, slurmctld and
# slurmd on 127.0.0.1 (tests/cluster/slurm_cluster.sh), copy the workflow into
# WORKDIR/slurm and WORKDIR/local, run `snakemake --profile profiles/slurm` in the one
# and `--profile profiles/local` in the other, then check
#   - every non-local job went through sbatch (a SLURM job id per job in the log, and
#     squeue lists each id as COMPLETED), GPU rules with a GPU request, others without;
#   - the outputs of both runs are the same (tests/cluster/compare_outputs.py).
# The cluster is stopped whatever happens (trap), and every SLURM call has a timeout.
# WORKDIR/summary.json records job ids, rules and timings; WORKDIR is removed after
# a success unless --keep or --workdir is given.
#
# Targets: the arguments, else $LANGARITH_SLURM_TEST_TARGETS (space separated), else
# the default below. --configfile defaults to a shortened copy of config/demo.yaml
# (fewer pre-training and training steps; the same DAG); --configfile
# config/demo.yaml runs the demo's own sizes.
#
# Exit codes: 0 passed, 77 skipped (SLURM cannot be set up here: not root, no apt-get,
# ...; the reason is printed as "SKIP: ..."), anything else failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SKIP=77
DEFAULT_TARGETS="results/related_languages.tsv resources/data/wikipedia/en results/adapters/tinybert/lang/de/seed1"
RUN_TIMEOUT=${LANGARITH_SLURM_TEST_RUN_TIMEOUT:-1800}
# What the workflow copies need; everything else in the checkout stays behind.
WORKFLOW_PARTS=(Snakefile rules workflow config envs profiles src pyproject.toml)

workdir=""
keep=0
gpu_style=gpus
configfile=""
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --workdir) workdir=$2; keep=1; shift 2 ;;
        --keep) keep=1; shift ;;
        --gpu-style) gpu_style=$2; shift 2 ;;
        --configfile) configfile=$2; shift 2 ;;
        -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    read -r -a targets <<<"${LANGARITH_SLURM_TEST_TARGETS:-$DEFAULT_TARGETS}"
fi

say() { printf '[run_slurm_test %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    # Installing the packages and running slurmd (it starts jobs as their user) need root.
    printf 'SKIP: the SLURM test needs root (apt-get install, slurmd)\n' >&2
    exit "$SKIP"
fi
if [ -n "${LANGARITH_PYTHON:-}" ]; then
    PY=$LANGARITH_PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY=$ROOT/.venv/bin/python
else
    PY=$(command -v python3)
fi
"$PY" -c 'import snakemake, snakemake_executor_plugin_slurm' 2>/dev/null ||
    fail "$PY lacks snakemake or snakemake-executor-plugin-slurm (make test installs them)"
# Jobs run `python -m snakemake` on the node with the environment of this process
# (the plugin submits with sbatch --export=ALL): the venv first on PATH, offline hub.
PATH="$(dirname "$PY"):$PATH"
export PATH HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

t_begin=$SECONDS
if [ -z "$workdir" ]; then
    workdir=$(mktemp -d "${TMPDIR:-/tmp}/langarith-slurm-test.XXXXXX")
fi
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
# The cluster lives in a short path of its own (munge's socket path must stay under
# 108 bytes, and pytest's temporary directories are long); WORKDIR/cluster links to it.
cluster=$(mktemp -d /tmp/langarith-slurm.XXXXXX)
ln -sfn "$cluster" "$workdir/cluster"
snake_pid=""
cluster_running=0
status=started

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$snake_pid" ] && kill -0 "$snake_pid" 2>/dev/null; then
        say "stopping snakemake (pid $snake_pid)"
        kill -TERM "$snake_pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$snake_pid" 2>/dev/null || break; sleep 1; done
        kill -KILL "$snake_pid" 2>/dev/null || true
    fi
    if [ "$cluster_running" -eq 1 ] || [ -e "$cluster/slurmctld.daemon.pid" ]; then
        bash "$HERE/slurm_cluster.sh" stop "$cluster" || say "stopping the cluster reported an error"
    fi
    if [ "$rc" -eq 0 ] || [ "$rc" -eq "$SKIP" ]; then
        rm -rf "$cluster"
        rm -f "$workdir/cluster"
        [ "$keep" -eq 1 ] || rm -rf "$workdir"
    else
        say "failed ($status); logs kept in $workdir (cluster: $cluster)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run a command in the background and wait for it, so that a signal to this script
# reaches the trap at once (bash defers traps while a foreground child runs).
run_bg() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    snake_pid=$!
    local rc=0
    wait "$snake_pid" || rc=$?
    snake_pid=""
    return "$rc"
}

# --- cluster --------------------------------------------------------------------
status="installing SLURM"
t0=$SECONDS
bash "$HERE/slurm_cluster.sh" install
t_install=$((SECONDS - t0))

status="starting SLURM"
t0=$SECONDS
cluster_running=1
bash "$HERE/slurm_cluster.sh" start "$cluster"
t_start=$((SECONDS - t0))
daemon_pids=$(cat "$cluster"/*.daemon.pid | paste -sd, -)
# SLURM_CONF for this script and Snakemake; $cluster/bin (shims that set it) first on
# PATH for the jobs' srun (see slurm_cluster.sh).
eval "$(bash "$HERE/slurm_cluster.sh" env "$cluster")"
slurm_version=$(timeout 10 sinfo -V)

# --- two copies of the workflow ---------------------------------------------------
status="preparing the runs"
for run in slurm local; do
    mkdir -p "$workdir/$run"
    for part in "${WORKFLOW_PARTS[@]}"; do
        [ -e "$ROOT/$part" ] && cp -r "$ROOT/$part" "$workdir/$run/"
    done
    rm -rf "$workdir/$run/src/"*.egg-info
done
if [ -z "$configfile" ]; then
    # The demo's DAG with fewer steps: the test is about where jobs run, not how well.
    configfile=test-config.yaml
    "$PY" - "$ROOT/config/demo.yaml" "$workdir/slurm/$configfile" <<'EOF'
import sys
import yaml

config = yaml.safe_load(open(sys.argv[1]))
for model in config.get("models", []):
    if isinstance(model.get("demo"), dict) and "pretrain_steps" in model["demo"]:
        model["demo"]["pretrain_steps"] = min(model["demo"]["pretrain_steps"], 40)
training = (config.get("language_adapter") or {}).get("training") or {}
if "max_steps" in training:
    training["max_steps"] = min(training["max_steps"], 20)
    for key in ("eval_every", "checkpoint_every"):
        if key in training:
            training[key] = min(training[key], 10)
task_training = (config.get("task_adapter") or {}).get("training") or {}
if "epochs" in task_training:
    task_training["epochs"] = 1
yaml.safe_dump(config, open(sys.argv[2], "w"), sort_keys=False)
EOF
    cp "$workdir/slurm/$configfile" "$workdir/local/$configfile"
else
    case "$configfile" in /*) ;; *) configfile=$ROOT/$configfile ;; esac
fi
say "targets: ${targets[*]}"
say "config: $configfile; GPU style: $gpu_style; work directory: $workdir"

# --- the SLURM run ------------------------------------------------------------------
status="running the workflow through profiles/slurm"
t0=$SECONDS
cd "$workdir/slurm"
# The profile as a user runs it, plus: quick first status check (the plugin's default
# waits 40 s), SLURM logs kept for the checks below. MinJobAge in slurm.conf is well
# above 3x that first wait, so the plugin keeps to squeue.
# The test cluster's partition is the default one, and it has no accounts or GPU types:
# site settings from the caller's environment would not fit it.
if ! run_bg "$workdir/slurm.log" env -u LANGARITH_SLURM_PARTITION -u LANGARITH_SLURM_ACCOUNT \
    -u LANGARITH_SLURM_GPU_PARTITION -u LANGARITH_GPU_MODEL LANGARITH_GPU_STYLE="$gpu_style" \
    timeout --kill-after=60 "$RUN_TIMEOUT" "$PY" -m snakemake "${targets[@]}" \
    --profile profiles/slurm --configfile "$configfile" \
    --slurm-init-seconds-before-status-checks 5 --slurm-keep-successful-logs; then
    tail -n 60 "$workdir/slurm.log" >&2
    fail "the SLURM run failed (log: $workdir/slurm.log)"
fi
t_slurm=$((SECONDS - t0))
say "SLURM run finished in ${t_slurm}s"

# --- the local run ------------------------------------------------------------------
status="running the workflow through profiles/local"
t0=$SECONDS
cd "$workdir/local"
if ! run_bg "$workdir/local.log" timeout --kill-after=60 "$RUN_TIMEOUT" \
    "$PY" -m snakemake "${targets[@]}" --profile profiles/local --configfile "$configfile"; then
    tail -n 60 "$workdir/local.log" >&2
    fail "the local run failed (log: $workdir/local.log)"
fi
t_local=$((SECONDS - t0))
say "local run finished in ${t_local}s"
cd "$workdir"

# --- evidence that the jobs went through sbatch ---------------------------------------
status="checking the SLURM evidence"
"$PY" - "$workdir" "$gpu_style" <<'EOF' || fail "the SLURM evidence does not hold (see above)"
import json
import re
import subprocess
import sys
from pathlib import Path

workdir, gpu_style = Path(sys.argv[1]), sys.argv[2]
log = (workdir / "slurm.log").read_text()
# "rule X:" heads a job Snakemake hands to the executor, "localrule X:" one it runs itself.
remote_jobs = re.findall(r"^rule (\w+):$", log, flags=re.MULTILINE)
local_jobs = re.findall(r"^localrule (\w+):$", log, flags=re.MULTILINE)
submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
problems = []
if len(remote_jobs) < 2:
    problems.append(f"only {len(remote_jobs)} jobs were meant for the cluster; pick targets with more")
if len(submitted) != len(remote_jobs):
    problems.append(f"{len(remote_jobs)} cluster jobs, but {len(submitted)} sbatch submissions")

def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout

states = dict(
    line.split("|", 1) for line in run("squeue", "--states=all", "-h", "-o", "%i|%T").split()
)
# The GPU rules are the ones the profile rewrites in the gres style.
import os
import yte

os.environ["LANGARITH_GPU_STYLE"] = "gres"
with open(workdir / "slurm" / "profiles" / "slurm" / "config.yaml") as fh:
    gpu_rules = set(yte.process_yaml(fh, require_use_yte=True)["set-resources"])
jobs = []
for snakemake_id, slurm_id in submitted:
    info = run("scontrol", "show", "job", "-o", slurm_id)
    comment = re.search(r"Comment=rule_(\w+?)(?:_wildcards_\S*)?(?:\s|$)", info)
    rule = comment.group(1) if comment else "?"
    gpu = re.search(r"gres[/:]gpu[:=](\d+)", info)
    jobs.append(
        {
            "slurm_job_id": int(slurm_id),
            "snakemake_job_id": int(snakemake_id),
            "rule": rule,
            "state": states.get(slurm_id, "unknown to squeue"),
            "gpus": int(gpu.group(1)) if gpu else 0,
            "request": "TresPerJob" if "TresPerJob=gres:gpu" in info else
                       "TresPerNode" if "TresPerNode=gres:gpu" in info else None,
        }
    )
for job in jobs:
    if job["state"] != "COMPLETED":
        problems.append(f"SLURM job {job['slurm_job_id']} ({job['rule']}) is {job['state']}")
    wants_gpu = job["rule"] in gpu_rules
    if wants_gpu and job["gpus"] != 1:
        problems.append(f"SLURM job {job['slurm_job_id']} ({job['rule']}) had no GPU request")
    if not wants_gpu and job["gpus"]:
        problems.append(f"SLURM job {job['slurm_job_id']} ({job['rule']}) asked for a GPU")
    # --gpus=1 is a per-job TRES, --gres=gpu:1 a per-node one.
    if wants_gpu and job["request"] != {"gpus": "TresPerJob", "gres": "TresPerNode"}[gpu_style]:
        problems.append(f"SLURM job {job['slurm_job_id']} ({job['rule']}): GPU asked as {job['request']}")
summary = {"sbatch_jobs": jobs, "local_jobs": local_jobs, "gpu_style": gpu_style}
(workdir / "evidence.json").write_text(json.dumps(summary, indent=2))
for job in jobs:
    print(f"sbatch job {job['slurm_job_id']:>4}  {job['state']:<10} gpus={job['gpus']}  {job['rule']}")
print(f"{len(jobs)} jobs through sbatch, {len(local_jobs)} local jobs on the head")
for problem in problems:
    print(f"PROBLEM {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

# --- same outputs ---------------------------------------------------------------------
status="comparing the outputs"
"$PY" "$HERE/compare_outputs.py" "$workdir/slurm" "$workdir/local" "${targets[@]}" \
    >"$workdir/compare.log" 2>&1 || {
    cat "$workdir/compare.log" >&2
    # Where the runs first part: every file both runs made, inputs of the targets too.
    "$PY" "$HERE/compare_outputs.py" "$workdir/slurm" "$workdir/local" resources results \
        2>&1 | grep -E '^(DIFFERENT|compared)' >&2 || true
    fail "the SLURM run and the local run made different outputs"
}
tail -n 1 "$workdir/compare.log"

# --- stop the cluster now, so its time counts -------------------------------------------
status="stopping SLURM"
t0=$SECONDS
bash "$HERE/slurm_cluster.sh" stop "$cluster"
cluster_running=0
t_stop=$((SECONDS - t0))
t_total=$((SECONDS - t_begin))

"$PY" - "$workdir" <<EOF
import json, sys
from pathlib import Path
workdir = Path(sys.argv[1])
summary = json.loads((workdir / "evidence.json").read_text())
summary.update(
    passed=True,
    slurm_version="$slurm_version",
    daemon_pids=[$daemon_pids],
    targets="${targets[*]}".split(),
    configfile="$configfile",
    seconds={"install": $t_install, "cluster_start": $t_start, "slurm_run": $t_slurm,
             "local_run": $t_local, "cluster_stop": $t_stop, "total": $t_total},
)
(workdir / "summary.json").write_text(json.dumps(summary, indent=2))
print("TIMINGS " + json.dumps(summary["seconds"]))
EOF
status=passed
say "PASSED: same outputs from SLURM and local runs; total ${t_total}s"
