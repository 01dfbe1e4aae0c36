"""Which exceptions are the user's to fix, and the one line each is owed.

The ``langarith`` command (:mod:`langarith.cli`) and the workflow scripts
(:mod:`langarith.scripting`) print a :class:`~langarith.LangarithError` and the OS
errors a user causes (a missing or read-only path, a folder given for a file) as one
line naming the file, and show the traceback only when asked: ``--debug`` or the
environment variable ``LANGARITH_DEBUG=1``. Every other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import os

from langarith import LangarithError

__all__ = ["DEBUG_VARIABLE", "EXPECTED_OS_ERRORS", "USER_ERRORS", "debug_wanted", "error_line"]

#: Setting this environment variable to 1 shows tracebacks, as ``--debug`` does.
DEBUG_VARIABLE = "LANGARITH_DEBUG"

#: OS errors a user causes: one line naming the file, not a traceback.
EXPECTED_OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)

#: What :func:`error_line` may turn into one line (it decides case by case for OSError).
USER_ERRORS = (LangarithError, OSError, UnicodeDecodeError)


def debug_wanted(args: argparse.Namespace | None = None) -> bool:
    """Tracebacks are shown with ``--debug`` or ``LANGARITH_DEBUG=1`` (any value but 0/empty)."""
    if args is not None and getattr(args, "debug", False):
        return True
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def error_line(err: BaseException) -> str | None:
    """The one line a user is owed for ``err``, or None for a bug (which keeps its traceback).

    A :class:`LangarithError` is its message; an expected OS error names the file and
    what went wrong; bytes that are not UTF-8 say so (the file is named by the
    :class:`LangarithError` the readers raise; a bare one names the codec position).
    """
    if isinstance(err, LangarithError):
        return str(err)
    if isinstance(err, EXPECTED_OS_ERRORS):
        what = err.strerror or type(err).__name__
        where = f"{err.filename}" if err.filename is not None else ""
        if err.filename2 is not None:
            where += f" -> {err.filename2}"
        return f"{where}: {what.lower()}" if where else what
    if isinstance(err, OSError) and err.errno is not None and err.filename is not None:
        return f"{err.filename}: {(err.strerror or str(err)).lower()}"
    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
    return None
