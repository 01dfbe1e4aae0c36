"""The one registry of merge methods: ``MERGE_METHODS[name]`` and :func:`get_method`.

Registration is explicit (a literal list below), so the set of methods is visible in
one place and the config schema's list can be tested against it.
"""

from __future__ import annotations

from langarith.merge import dare, linear, magnitude, task_arithmetic, ties
from langarith.merge.base import MergeMethod
from langarith.registry import lookup

__all__ = ["MERGE_METHODS", "get_method"]

MERGE_METHODS: dict[str, MergeMethod] = {
    method.name: method
    for method in (
        linear.METHOD,
        task_arithmetic.METHOD,
        ties.METHOD,
        dare.METHOD,
        dare.DARE_TIES_METHOD,
        magnitude.TOP_K_METHOD,
        magnitude.BOTTOM_K_METHOD,
    )
}


def get_method(name: str) -> MergeMethod:
    """The registered method called ``name``; unknown names list the valid ones."""
    return lookup(MERGE_METHODS, name, "merge method")
