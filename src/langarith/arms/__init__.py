"""The arms' plug-in point: the one place that names an arm, by string.

:func:`load_arms` imports each arm's registration module (:data:`ARM_MODULES`), which
adds the arm's tables and figures to ``langarith.report``'s registries and its outputs
and job counts to :mod:`langarith.arm_registry`. It sits at the top layer, beside the
command line, so no core module imports an arm: the entry points call it (the
Snakefile through ``rules/common.smk``, the report scripts, ``langarith`` commands).
"""

from __future__ import annotations

import importlib

__all__ = ["ARM_MODULES", "load_arms"]

#: The registration module of each arm.
ARM_MODULES: tuple[str, ...] = (
    "langarith.tlr.register",
    "langarith.fullft.report",
    "langarith.xmod.report",
)


def load_arms() -> None:
    """Import every arm's registration module (idempotent: Python imports once)."""
    for name in ARM_MODULES:
        importlib.import_module(name)
