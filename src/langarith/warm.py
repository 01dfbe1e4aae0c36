"""A warm process for local rule jobs: torch and transformers imported once, a fork per job.

A λ-grid job of the demo spends ~6 s starting (interpreter, torch/transformers/adapters
imports of 3.5-4 s, model load) against ~1.5 s of forward passes, so on a local run most
of the stage is start-up. With ``warm_start: true`` (``config/demo.yaml``) each rule
script first calls :func:`handoff`: it connects to a server for this interpreter,
working directory, environment and source tree, started by the first job that finds
none. The server has imported what the script imports (read from the script with
``ast``) and forks a child per job; the child takes the job's stdin/stdout/stderr
(passed over the socket), working directory, environment and ``sys.path``, runs the
same Snakemake-generated script and reports its exit status to the job's own process,
which exits with it. Results do not depend on the path taken: every job seeds itself.

Robustness, in order of the things that go wrong:

- Off (``LANGARITH_WARM`` unset or ``0``: the default config, cluster jobs, scripts run
  by hand) or no server can be reached or started: the job runs in its own process,
  as before; :func:`handoff` returns and the script carries on.
- The server is killed mid-run: jobs already forked keep running (the child, not the
  server, holds the connection and reports the status); the next job finds the socket
  dead and starts a new server.
- The job's process is killed (Snakemake cancels it): the child sees the connection
  close and exits.
- Two runs in different directories, or a changed source file: a different key, so a
  different server (a server keeps the code it imported; it exits after
  ``LANGARITH_WARM_IDLE`` seconds without a job, 300 by default).

Snakemake's benchmark files keep the true wall time of a job; their CPU and memory
columns count the job's own process only, which under a warm start is the small one
that waits for the child. The child therefore logs its own CPU seconds as the job's last
log line (``langarith.warm: job cpu_s=...``), which ``benchmarks/demo_profile.py`` reads.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import importlib
import json
import logging
import os
import resource
import runpy
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["ENV_FLAG", "handoff", "server_key", "socket_path", "warm_enabled"]

#: Set by the workflow (:func:`langarith.plan.prepare_environment`) for the jobs it runs.
ENV_FLAG = "LANGARITH_WARM"
#: Where the sockets, locks and server logs live (default: ``<tmp>/langarith-warm-<uid>``).
ENV_DIR = "LANGARITH_WARM_DIR"
#: Seconds a server waits for the next job before it exits.
ENV_IDLE = "LANGARITH_WARM_IDLE"
DEFAULT_IDLE_S = 300.0
#: How long a job waits for a server it started to listen (it binds before importing).
START_TIMEOUT_S = 60.0
#: Environment variables read when libraries are imported: a server serves one setting.
_KEYED_PREFIXES = ("HF_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "CUDA_", "PYTHON", "LANGARITH_")
_HEADER = struct.Struct("!Q")
_CHILD = False  # True in a forked child, where handoff() must let the script run


def warm_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether the workflow asked for warm starts (``LANGARITH_WARM=1``)."""
    env = os.environ if env is None else env
    return env.get(ENV_FLAG, "0") == "1"


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def _source_fingerprint() -> list[tuple[str, int, int]]:
    """Every package source file with its size and mtime: an edit means a new server."""
    root = _package_dir()
    out = []
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        out.append((str(path.relative_to(root)), st.st_size, st.st_mtime_ns))
    return out


def server_key(cwd: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """What a server is shared by: interpreter, working directory, environment, source."""
    env = os.environ if env is None else env
    keyed = sorted(
        (k, v)
        for k, v in env.items()
        if k.startswith(_KEYED_PREFIXES) and not k.startswith(ENV_FLAG)
    )
    material = json.dumps(
        [
            sys.executable,
            os.path.realpath(cwd or os.getcwd()),
            keyed,
            str(_package_dir()),
            _source_fingerprint(),
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def _runtime_dir() -> Path:
    base = os.environ.get(ENV_DIR) or os.path.join(
        tempfile.gettempdir(), f"langarith-warm-{os.getuid()}"
    )
    path = Path(base)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def socket_path(key: str) -> Path:
    """The server's socket (short: a Unix socket path is limited to ~100 bytes)."""
    return _runtime_dir() / f"{key}.sock"


# -- framing: an 8-byte length, then JSON ------------------------------------------


def _send_json(conn: socket.socket, obj: object, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    payload = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(conn, [payload], fds)
    else:
        conn.sendall(payload)


def _recv_exact(conn: socket.socket, n: int, buf: bytes = b"") -> bytes:
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _recv_json(conn: socket.socket, with_fds: bool = False) -> tuple[object, list[int]]:
    fds: list[int] = []
    if with_fds:
        first, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        if not first:
            raise ConnectionError("connection closed")
    else:
        first = b""
    head = _recv_exact(conn, _HEADER.size, first)
    (size,) = _HEADER.unpack(head[: _HEADER.size])
    body = _recv_exact(conn, size, head[_HEADER.size :])
    return json.loads(body[:size]), fds


# -- the job's side ----------------------------------------------------------------


def handoff() -> None:
    """Run the calling rule script in the warm process, or return to run it here.

    Called first thing in a ``workflow/scripts/*.py`` file. When warm starts are on and
    a server answers, this exits the process with the job's exit status; otherwise (off,
    in the forked child itself, or no server) it returns and the script runs as usual.
    """
    if _CHILD or not warm_enabled():
        return
    script = os.path.abspath(sys.argv[0])
    try:
        conn = _connect(server_key())
    except OSError as err:
        print(f"langarith.warm: no warm process ({err}); running in this one", file=sys.stderr)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    request = {
        "script": script,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "sys_path": sys.path,
    }
    try:
        _send_json(conn, request, fds=[0, 1, 2])
        started, _ = _recv_json(conn)
    except (OSError, ValueError) as err:
        # nothing was forked for this job (the server died before answering)
        print(f"langarith.warm: warm process failed ({err}); running in this one", file=sys.stderr)
        conn.close()
        return
    sys.exit(_wait_for_child(conn, int(started["pid"])))  # type: ignore[index]


def _wait_for_child(conn: socket.socket, pid: int) -> int:
    """The child's exit status; signals to this process are passed on to the child."""

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        done, _ = _recv_json(conn)
    except (OSError, ValueError):
        print(f"langarith.warm: the job's process {pid} died without a status", file=sys.stderr)
        return 1
    return int(done["exit"])  # type: ignore[index]


def _try_connect(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        raise
    return conn


def _connect(key: str) -> socket.socket:
    """A connection to this key's server, starting one (under a lock) when none answers."""
    path = socket_path(key)
    with contextlib.suppress(OSError):
        return _try_connect(path)
    with _locked(path.with_suffix(".lock")):
        with contextlib.suppress(OSError):
            return _try_connect(path)  # another job started it while we waited
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead server's socket
        _start_server(path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                return _try_connect(path)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_server(path: Path) -> None:
    """Start a detached server (own session, so a job's signals do not reach it)."""
    env = dict(os.environ, **{ENV_FLAG: "0"})
    src = str(_package_dir().parent)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, env.get("PYTHONPATH", "").split(":"))])
    idle = env.get(ENV_IDLE, str(DEFAULT_IDLE_S))
    with open(path.with_suffix(".log"), "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "langarith.warm", str(path), idle],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


# -- the server's side -------------------------------------------------------------


def _script_imports(script: str) -> list[tuple[str, list[str]]]:
    """The imports of a script, nested ones included (a script that picks its module by
    rule imports inside the branch): (module, names imported from it)."""
    try:
        tree = ast.parse(Path(script).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _preload(script: str) -> None:
    """Import what the script imports, so that its child finds it in ``sys.modules``.

    Lazy package attributes (``from langarith.evaluate import run_job``) are read too,
    since reading them is what imports their module. A failing import is left for the
    child to meet and report in the job's log.
    """
    for module, names in _script_imports(script):
        try:
            imported = importlib.import_module(module)
        except Exception:  # noqa: BLE001 - the child reports it
            continue
        _warm_imports(imported)
        for name in names:
            with contextlib.suppress(Exception):
                value = getattr(imported, name)
                _warm_imports(sys.modules.get(getattr(value, "__module__", None) or ""))


def _warm_imports(module: Any) -> None:
    """Import the modules a module lists in ``WARM_IMPORTS``: the ones it imports only
    inside its functions (matplotlib for the figures: about 1.1 s a job otherwise)."""
    for name in getattr(module, "WARM_IMPORTS", ()):
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def serve(path: Path, idle_s: float) -> None:
    """Accept jobs on ``path`` until ``idle_s`` seconds pass without one."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    inode = path.stat().st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener.settimeout(idle_s)
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                break
            conn.settimeout(None)
            with contextlib.suppress(OSError, ValueError, ConnectionError):
                _serve_one(listener, conn)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if path.stat().st_ino == inode:  # not a newer server's socket
                path.unlink()


def _serve_one(listener: socket.socket, conn: socket.socket) -> None:
    try:
        request, fds = _recv_json(conn, with_fds=True)
        if len(fds) != 3:
            raise ValueError("a job must pass stdin, stdout and stderr")
        _preload(request["script"])  # type: ignore[index]
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn, request, fds)  # never returns
        _send_json(conn, {"pid": pid})
    finally:
        conn.close()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """Become the job: its stdio, directory, environment, ``sys.path``; run; report."""
    global _CHILD
    _CHILD = True
    code = 1
    try:
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        sys.stdout.flush()
        sys.stderr.flush()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[ENV_FLAG] = "0"  # the job, and anything it starts, runs where it is
        sys.path[:] = request["sys_path"]
        sys.argv[:] = request["argv"]
        threading.Thread(target=_exit_when_job_gone, args=(conn,), daemon=True).start()
        code = _run_script(request["script"])
    except BaseException:  # noqa: BLE001 - the child must always report
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(Exception):
            _send_json(conn, {"exit": code})
        os._exit(code)


def _run_script(script: str) -> int:
    """Run the script as ``__main__``; its exit status as a process would have it."""
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        if stop.code is None:
            return 0
        if isinstance(stop.code, int):
            return stop.code
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - printed as Python would
        traceback.print_exc()
        return 1
    finally:
        # into the job's log (the script's handlers are still open): the benchmark
        # file's cpu_time counts only the waiting process
        logging.getLogger(__name__).info("job cpu_s=%.2f", _cpu_seconds())
        logging.shutdown()
    return 0


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (reset at fork) and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _exit_when_job_gone(conn: socket.socket) -> None:
    """The job's process closed the connection (killed or cancelled): stop the job."""
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    os._exit(143)


if __name__ == "__main__":
    # Through the package module, not this ``__main__`` copy: the scripts the children
    # run import ``langarith.warm`` and must see its ``_CHILD`` flag set.
    importlib.import_module("langarith.warm").serve(Path(sys.argv[1]), float(sys.argv[2]))
