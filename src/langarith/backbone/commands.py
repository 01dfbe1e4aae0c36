"""Handlers of ``langarith backbone demo|fetch`` (imported only when the command runs)."""

from __future__ import annotations

import argparse

from langarith.backbone.demo import build_demo_backbone
from langarith.backbone.hub import fetch_hub_backbone
from langarith.cli_options import load_settings

__all__ = ["demo", "fetch"]


def demo(args: argparse.Namespace) -> int:
    """``langarith backbone demo``: build the demo backbone from the given corpora."""
    spec = load_settings(args.spec, args.set)
    build_demo_backbone(args.corpus, args.out, arch=args.arch, spec=spec, seed=args.seed)
    return 0


def fetch(args: argparse.Namespace) -> int:
    """``langarith backbone fetch``: save a hub (or local) backbone."""
    fetch_hub_backbone(args.hub_name, args.out, revision=args.revision, path=args.path)
    return 0
