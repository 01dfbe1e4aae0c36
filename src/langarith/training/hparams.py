"""Training settings given as plain mappings: defaults, overrides and validation.

Every stage keeps a dict of defaults; a config or the command line overrides some keys.
A misspelt key must never fall back to a default silently, so unknown keys are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langarith import LangarithError

__all__ = ["VOLATILE_HPARAMS", "hash_hparams", "require_positive_int", "resolve_hparams"]

#: hparam keys that only steer *how* a run is executed, not *what* it computes; they are
#: left out of the checkpoint's config hash so that, e.g., a killed run restarted without
#: the test hook ``stop_after_steps`` still resumes.
VOLATILE_HPARAMS = frozenset({"stop_after_steps", "checkpoint_every", "eval_batch_size"})


def resolve_hparams(
    defaults: Mapping[str, Any], given: Mapping[str, Any] | None, what: str
) -> dict:
    """Defaults overlaid with ``given``; unknown keys are an error (typos must not pass).

    Nested mappings (e.g. ``adapter_config``) are overlaid one level deep, so overriding
    one field keeps the other defaults.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise LangarithError(
            f"Unknown {what} hparam(s) {unknown}; allowed keys are {sorted(defaults)}."
        )
    resolved = dict(defaults)
    for key, value in given.items():
        if isinstance(defaults[key], Mapping) and isinstance(value, Mapping):
            resolved[key] = {**defaults[key], **value}
        else:
            resolved[key] = value
    return resolved


def require_positive_int(hparams: Mapping[str, Any], key: str, *, allow_zero: bool = False) -> int:
    """Validate an integer hparam so a bad config fails before a long run starts."""
    value = hparams[key]
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LangarithError(f"hparam {key}={value!r} must be an integer >= {low}.")
    return value


def hash_hparams(hparams: Mapping[str, Any]) -> dict:
    """The hparams that determine the result (``VOLATILE_HPARAMS`` removed), for the
    config hash that decides whether a checkpoint may be resumed."""
    return {k: v for k, v in hparams.items() if k not in VOLATILE_HPARAMS}
