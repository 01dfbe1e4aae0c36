"""Package attributes imported on first use, so planning code and ``--help`` stay quick.

A package ``__init__`` lists which module defines each public name; the module (often
one that imports torch or transformers) is imported only when the name is first read.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, defined_in: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``defined_in[name]`` and returns its ``name``.

    The value is cached in the package's namespace, so the look-up runs once per name.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = defined_in.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
