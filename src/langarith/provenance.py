"""What every ``metadata.json`` records about how an artifact was made.

Numbers depend on the library versions that produced them (a new torch can change the
last bits of a trained adapter), so every stage stores the same version table next to
its output, and the same UTC time stamp format.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata

from langarith import __version__

__all__ = ["LIBRARIES", "utc_now", "versions"]

#: Libraries whose versions shape the numbers.
LIBRARIES = ("torch", "transformers", "adapters", "tokenizers", "safetensors")


def versions() -> dict[str, str]:
    """Python, langarith and :data:`LIBRARIES` versions (``"not installed"`` if absent).

    Read from the installed package metadata, so recording them imports nothing heavy.
    """
    found = {"python": platform.python_version(), "langarith": __version__}
    for package in LIBRARIES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def utc_now() -> str:
    """Current UTC time in ISO format, seconds precision, for ``created_utc`` fields."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()
