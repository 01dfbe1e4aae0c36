"""Shared test set-up: offline hub and deterministic tokenizers, before any test imports.

Setting the environment here, before any test module is imported, is what lets the
test modules import ``transformers`` and ``langarith`` at the top like any module
(without it a missing model hangs on the network for tens of seconds). Tiny model
shapes shared by the tests are in ``tests/tiny.py``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The URIEL cache (langarith.related) of a test run is the run's own, not ~/.cache's.
if "LANGARITH_CACHE_DIR" not in os.environ:
    os.environ["LANGARITH_CACHE_DIR"] = tempfile.mkdtemp(prefix="langarith-test-cache-")
    atexit.register(shutil.rmtree, os.environ["LANGARITH_CACHE_DIR"], ignore_errors=True)
