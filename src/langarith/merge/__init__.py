"""Merging language adapters: one registry of methods (mergekit style).

* :data:`MERGE_METHODS` / :func:`get_method`: the registered methods ``linear``,
  ``task-arithmetic``, ``ties``, ``dare`` and ``dare_ties``, each a pure per-tensor
  function with its paper.
* :func:`merge_states` / :func:`merge_adapters`: whole adapters, in memory or folders.
* :class:`LanguageVectorSet` / :func:`live_adapter_parameters`: in-place merging into a
  loaded model for the λ grid.
* :func:`register_cli`: the ``langarith merge`` command.
"""

from langarith.merge.base import WEIGHT_SUM_TOLERANCE, MergeMethod, ParamSpec
from langarith.merge.cli import register_cli
from langarith.merge.in_place import LanguageVectorSet, live_adapter_parameters
from langarith.merge.registry import MERGE_METHODS, get_method
from langarith.merge.states import merge_adapters, merge_states

__all__ = [
    "MERGE_METHODS",
    "WEIGHT_SUM_TOLERANCE",
    "LanguageVectorSet",
    "MergeMethod",
    "ParamSpec",
    "get_method",
    "live_adapter_parameters",
    "merge_adapters",
    "merge_states",
    "register_cli",
]
