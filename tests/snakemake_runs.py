"""Running Snakemake from tests: its command line, and a run with the output captured."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake_command(
    *args: str,
    configfile: str | PathLike[str] | None = None,
    directory: str | PathLike[str] | None = None,
) -> list[str]:
    """``python -m snakemake ARGS [--configfile F] [--directory D]``.

    ``args`` (targets included) come first: ``--configfile`` takes every word after it
    up to the next option, so a target placed behind it would be read as a config file.
    """
    command = [sys.executable, "-m", "snakemake", *args]
    if "--max-jobs-per-timespan" not in args:
        # the workflow's onsuccess/onerror hooks release the rate limiter's timers when
        # a run ends; a run that ends without them (--no-hooks, interrupted) would wait
        # out the profile's 10 s timespan (profiles/default), the default 1 s no longer
        command += ["--max-jobs-per-timespan", "100/1s"]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    if directory is not None:
        command += ["--directory", str(directory)]
    return command


def run_snakemake(
    *args: str,
    configfile: str | PathLike[str] | None = None,
    directory: str | PathLike[str] | None = None,
    cwd: str | PathLike[str] = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """Run :func:`snakemake_command` to the end; ``.output`` is stdout + stderr."""
    result = subprocess.run(
        snakemake_command(*args, configfile=configfile, directory=directory),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result.output = result.stdout + result.stderr
    return result
