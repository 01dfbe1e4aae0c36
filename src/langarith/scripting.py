"""The bridge used by ``workflow/scripts/*.py``: logging into the rule's log, clean errors.

A Snakemake script runs inside the ``snakemake`` process object; :func:`rule_step`
sends the package's logging to the rule's ``log:`` file (and stderr), and turns a
:class:`~langarith.LangarithError` or an expected OS error (a missing or read-only
path, :mod:`langarith.user_errors`) into a one-line message and exit status 1 instead
of a traceback, since those errors are about the user's input, not a bug; with
``LANGARITH_DEBUG=1`` the traceback goes to the log as well.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langarith.user_errors import USER_ERRORS, debug_wanted, error_line


def _limit_threads(threads: int) -> None:
    """Keep a job on the cores Snakemake gave it.

    torch and BLAS default to every core of the machine; on a shared node (or with two
    jobs side by side on 2 cores) their spinning threads slowed adapter training 3-6x
    in our measurements. The variables cover libraries not yet imported.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


@contextmanager
def rule_step(snakemake: Any) -> Iterator[logging.Logger]:
    """Set up logging for one rule job and report user errors without a traceback."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if snakemake.log:
        os.makedirs(os.path.dirname(str(snakemake.log[0])) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(str(snakemake.log[0]), mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    _limit_threads(int(getattr(snakemake, "threads", 1) or 1))
    logger = logging.getLogger(f"langarith.rules.{snakemake.rule}")
    logger.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        yield logger
    except USER_ERRORS as err:
        line = error_line(err)
        if line is None:
            raise
        logger.error("%s", line, exc_info=err if debug_wanted() else None)
        sys.exit(f"rule {snakemake.rule}: {line}")
