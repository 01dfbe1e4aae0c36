"""Look-up in the workflow's registries (scenarios, merge methods, tables, figures).

Every registry is a plain ``dict`` of name → entry, so that the names a config may use
are visible in one place and tests can compare them with the schema; this is the one
way of reading an entry, so an unknown name always gets the same sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from langarith import LangarithError

__all__ = ["lookup"]

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
    """``registry[name]``, or ``Unknown <what> 'name'. Must be one of [...]``."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise LangarithError(f"Unknown {what} {name!r}. Must be one of {list(registry)}") from None
