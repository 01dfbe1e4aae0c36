"""The arms of the study, imported here so that their registry entries exist.

An arm (full-model task arithmetic, X-MOD, TLR) registers its tables and figures in the
core's report registries when its report module is imported; the core never imports an
arm. The entry points that need every entry import this module: ``rules/*.smk`` (the
report rules are generated from the registries), the report scripts and the command
line (``langarith plan``).
"""

from __future__ import annotations

from langarith.fullft import report as fullft_report

__all__ = ["ARMS"]

#: Each arm's registering module.
ARMS = {"fullft": fullft_report}
