#!/usr/bin/env bash
# A throw-away single-node SLURM on this machine, for tests/cluster/run_slurm_test.sh
# and for trying profiles/slurm by hand (docs/cluster.md).
#
#   slurm_cluster.sh install        install slurm-wlm + munge with apt-get (if missing)
#   slurm_cluster.sh start DIR      write DIR/slurm.conf, start munged, slurmctld, slurmd
#   slurm_cluster.sh stop DIR       cancel every job, stop the daemons started in DIR
#   slurm_cluster.sh env DIR        print the exports clients need: eval "$(slurm_cluster.sh env DIR)"
#
# Everything lives in DIR (config, munge key and socket, state, logs, pid files); the
# machine's own /etc/slurm and munged are neither read nor touched. Controller and node
# are 127.0.0.1; the node has the machine's real CPUs and memory and one GPU GRES
# without a device behind it (File=/dev/null), so that --gpus and --gres requests are
# scheduled as on a GPU cluster. No accounting (no slurmdbd): sacct does not work, job
# states come from squeue. Needs root (slurmd runs jobs as their user).
#
# Exit codes: 0 ok, 77 cannot run here (not root, no apt-get, ...), other: failure.
# Every SLURM client call is wrapped in `timeout`: a misconfigured cluster hangs.
set -euo pipefail

SKIP=77
SLURMCTLD_PORT=${LANGARITH_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${LANGARITH_SLURMD_PORT:-16818}
PARTITION=${LANGARITH_TEST_PARTITION:-langarith}
START_TIMEOUT=${LANGARITH_SLURM_START_TIMEOUT:-90}
APT_TIMEOUT=${LANGARITH_APT_TIMEOUT:-900}

say() { printf '[slurm_cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
skip() {
    printf 'SKIP: %s\n' "$*" >&2
    exit "$SKIP"
}
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

have_slurm() {
    local tool
    for tool in munged mungekey slurmctld slurmd sbatch squeue sinfo scontrol scancel srun; do
        command -v "$tool" >/dev/null 2>&1 || return 1
    done
}

cmd_install() {
    if have_slurm; then
        say "slurm-wlm and munge are installed: $(slurmctld -V 2>/dev/null || true)"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || skip "slurm-wlm/munge are not installed and installing needs root"
    command -v apt-get >/dev/null 2>&1 || skip "slurm-wlm/munge are not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    local pkgs=(slurm-wlm munge)
    say "installing ${pkgs[*]} with apt-get"
    # Lists may be missing or stale on a fresh machine: update only when needed.
    # Wait for a dpkg lock held by another apt run instead of failing at once.
    local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
    if ! timeout "$APT_TIMEOUT" "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}"; then
        timeout "$APT_TIMEOUT" "${apt[@]}" update || skip "apt-get update failed (no network?)"
        timeout "$APT_TIMEOUT" "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}" ||
            skip "apt-get install ${pkgs[*]} failed"
    fi
    have_slurm || die "slurm-wlm installed, but its programs are not on PATH"
    say "installed: $(slurmctld -V)"
}

# slurmd -C prints the node line SLURM itself detects (CPUs, sockets, cores, memory).
node_hardware() {
    local line
    line=$(timeout 30 slurmd -C | head -n 1) || die "slurmd -C failed"
    # Drop NodeName=<hostname>; keep CPUs=.. Boards=.. ... RealMemory=..
    printf '%s\n' "${line#NodeName=* }"
}

write_config() {
    local dir=$1 hardware
    hardware=$(node_hardware)
    mkdir -p "$dir"/{munge,state,spool,log}
    chmod 700 "$dir"
    chmod 711 "$dir/munge"
    cat >"$dir/slurm.conf" <<EOF
# Written by tests/cluster/slurm_cluster.sh: single node on 127.0.0.1, no accounting.
ClusterName=langarith-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# squeue must still know a finished job when Snakemake asks (at least 3x the plugin's
# first status delay), and when run_slurm_test.sh checks the states after the runs.
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 $hardware Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    # Client shims: SLURM_CONF set, then the real program. Jobs need them: Snakemake
    # runs each job on the node as `srun ... python -m snakemake`, and the jobstep
    # plugin (snakemake-executor-plugin-slurm-jobstep 0.6.1) removes every SLURM_*
    # variable but the job ids from srun's environment, SLURM_CONF included; srun
    # then looks for /etc/slurm/slurm.conf, which this private cluster leaves alone.
    # PATH survives, so a shim first on PATH points srun at this cluster.
    mkdir -p "$dir/bin"
    local tool
    for tool in srun sbatch squeue scancel sinfo scontrol sacct; do
        command -v "$tool" >/dev/null 2>&1 || continue
        printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$dir/slurm.conf" "$(command -v "$tool")" >"$dir/bin/$tool"
        chmod 755 "$dir/bin/$tool"
    done
    cat >"$dir/gres.conf" <<EOF
# A GPU slot without a device: jobs are scheduled as GPU jobs, run on the CPU.
AutoDetect=off
NodeName=localhost Name=gpu File=/dev/null
EOF
}

# Start a daemon in the foreground of a background subshell, remember its pid.
start_daemon() {
    local dir=$1 name=$2
    shift 2
    "$@" >>"$dir/log/$name.out" 2>&1 &
    echo $! >"$dir/$name.daemon.pid"
}

wait_until() {
    local seconds=$1 what=$2
    shift 2
    local end=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 1
    done
    say "$what"
}

node_idle() {
    local state
    state=$(timeout 10 sinfo -h -N -n localhost -o '%t')
    [ "$state" = idle ]
}

cmd_start() {
    local dir=$1
    [ "$(id -u)" -eq 0 ] || skip "a test SLURM needs root (slurmd runs the jobs)"
    have_slurm || skip "slurm-wlm/munge are not installed (run: $0 install)"
    if [ -e "$dir/slurmctld.daemon.pid" ]; then
        die "$dir already holds a cluster; stop it first: $0 stop $dir"
    fi
    local port
    for port in "$SLURMCTLD_PORT" "$SLURMD_PORT"; do
        if timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            die "port $port is in use (another test cluster?); stop it or set LANGARITH_SLURMCTLD_PORT / LANGARITH_SLURMD_PORT"
        fi
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    write_config "$dir"
    export SLURM_CONF=$dir/slurm.conf

    say "munged (socket $dir/munge/munge.socket.2)"
    timeout 30 mungekey --create --keyfile="$dir/munge/munge.key" --force
    chmod 600 "$dir/munge/munge.key"
    start_daemon "$dir" munged munged --foreground --force \
        --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
        --log-file="$dir/log/munged.log"
    wait_until 20 "munged is up" test -S "$dir/munge/munge.socket.2" ||
        die "munged did not start: $(tail -n 5 "$dir/log/munged.log" "$dir/log/munged.out" 2>&1)"

    say "slurmctld (port $SLURMCTLD_PORT), slurmd (port $SLURMD_PORT)"
    start_daemon "$dir" slurmctld slurmctld -D -c -f "$SLURM_CONF"
    wait_until 30 "slurmctld answers" timeout 5 scontrol ping ||
        die "slurmctld did not start: $(tail -n 20 "$dir/log/slurmctld.log" 2>&1)"
    start_daemon "$dir" slurmd slurmd -D -N localhost -f "$SLURM_CONF"
    if ! wait_until "$START_TIMEOUT" "node localhost is idle" node_idle; then
        timeout 10 sinfo -N -l >&2 || true
        die "the node did not become idle in ${START_TIMEOUT}s: $(tail -n 20 "$dir/log/slurmd.log" 2>&1)"
    fi
    # One trivial job through sbatch before anything else depends on the cluster.
    local out
    out=$(timeout 60 sbatch --parsable --wait --output="$dir/log/smoke-%j.out" \
        --wrap 'echo smoke-ok') || die "a trivial sbatch job failed: $out"
    grep -q smoke-ok "$dir"/log/smoke-*.out || die "the trivial sbatch job wrote no output"
    say "cluster is up: SLURM_CONF=$SLURM_CONF (partition $PARTITION, smoke job $out)"
}

kill_pidfile() {
    local file=$1 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

cmd_stop() {
    local dir=$1 pids pid
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    export SLURM_CONF=$dir/slurm.conf
    if [ -s "$dir/slurmctld.daemon.pid" ] && kill -0 "$(cat "$dir/slurmctld.daemon.pid")" 2>/dev/null; then
        say "cancelling jobs"
        timeout 20 scancel --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 1 20); do
            if [ -z "$(timeout 10 squeue -h -t R,CG,PD -o %i 2>/dev/null || true)" ]; then
                break
            fi
            sleep 1
        done
        # With proctrack/linuxproc, processes of a job can outlive slurmd: end them
        # by id (scontrol lists the pids of every step on this node).
        if [ -s "$dir/slurmd.daemon.pid" ] && kill -0 "$(cat "$dir/slurmd.daemon.pid")" 2>/dev/null; then
            pids=$(timeout 10 scontrol listpids 2>/dev/null |
                awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}' || true)
            for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
        fi
    fi
    say "stopping slurmd, slurmctld, munged"
    kill_pidfile "$dir/slurmd.daemon.pid"
    kill_pidfile "$dir/slurmctld.daemon.pid"
    kill_pidfile "$dir/munged.daemon.pid"
}

main() {
    local cmd=${1:-}
    case "$cmd" in
        install) cmd_install ;;
        start) [ $# -eq 2 ] || die "usage: $0 start DIR"; cmd_start "$2" ;;
        stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
        env)
            [ $# -eq 2 ] || die "usage: $0 env DIR"
            local d
            d=$(cd "$2" && pwd)
            echo "export SLURM_CONF=$d/slurm.conf PATH=$d/bin:\$PATH"
            ;;
        *) die "usage: $0 install | start DIR | stop DIR | env DIR" ;;
    esac
}

main "$@"
