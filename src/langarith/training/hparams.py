"""What part of a training run's settings decides its result.

The settings themselves (keys, defaults, types, ranges) are the typed dataclasses of
:mod:`langarith.settings`; this module only says which keys a checkpoint's config hash
leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langarith.settings import VOLATILE_KEYS

__all__ = ["VOLATILE_HPARAMS", "hash_hparams"]

#: hparam keys that only steer *how* a run is executed, not *what* it computes; they are
#: left out of the checkpoint's config hash so that, e.g., a killed run restarted without
#: the test hook ``stop_after_steps`` still resumes.
VOLATILE_HPARAMS = VOLATILE_KEYS


def hash_hparams(hparams: Mapping[str, Any]) -> dict:
    """The hparams that determine the result (``VOLATILE_HPARAMS`` removed), for the
    config hash that decides whether a checkpoint may be resumed."""
    return {k: v for k, v in hparams.items() if k not in VOLATILE_HPARAMS}
