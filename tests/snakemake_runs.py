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
        # the workflow profile's 10 s timespan (profiles/default) would keep each short
        # test run alive up to 10 s after its last job; the default 1 s costs a short
        # run nothing
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
