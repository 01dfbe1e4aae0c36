"""Compare the outputs of two runs of the same targets (a SLURM run and a local run).

    python tests/cluster/compare_outputs.py RUN_A RUN_B TARGET [TARGET ...]

Each TARGET (a file or a directory, relative to both run directories) must hold the
same files with the same bytes. The exceptions are the records of *when* and *how
long* (``created_utc``, ``wall_time_s``, ...): ``metadata.json`` and ``manifest.json``
are compared as JSON with those keys removed. Snakemake's ``.snakemake_timestamp``
markers are ignored. Prints one line per compared file kind and exits 1 on the first
kind of difference, listing every differing file.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

IGNORED_NAMES = {".snakemake_timestamp"}
JSON_RECORDS = {"metadata.json", "manifest.json"}
# Keys that record the time of a run or how long it took, not what it made.
VOLATILE_KEY = re.compile(r"(^created|_utc$|^wall_time|_seconds$|_time_s$|^elapsed|^timestamp$)")


def _files(root: Path) -> dict[str, Path]:
    if root.is_file():
        return {"": root}
    return {
        str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in IGNORED_NAMES
    }


def _strip_volatile(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if not VOLATILE_KEY.search(k)}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same(a: Path, b: Path) -> bool:
    if a.name in JSON_RECORDS:
        return _strip_volatile(json.loads(a.read_text())) == _strip_volatile(
            json.loads(b.read_text())
        )
    return _sha256(a) == _sha256(b)


def compare(run_a: Path, run_b: Path, targets: list[str]) -> list[str]:
    """Return the differences (empty: identical outputs); prints what was compared."""
    problems: list[str] = []
    compared = 0
    for target in targets:
        a, b = run_a / target, run_b / target
        for side, path in (("first", a), ("second", b)):
            if not path.exists():
                problems.append(f"{target}: missing in the {side} run ({path})")
        if not (a.exists() and b.exists()):
            continue
        files_a, files_b = _files(a), _files(b)
        for rel in sorted(set(files_a) ^ set(files_b)):
            where = "first" if rel in files_a else "second"
            problems.append(f"{target}/{rel}: only in the {where} run")
        for rel in sorted(set(files_a) & set(files_b)):
            compared += 1
            if not _same(files_a[rel], files_b[rel]):
                problems.append(f"{Path(target, rel)}: content differs")
            else:
                print(f"same  {Path(target, rel)}  {_sha256(files_a[rel])[:16]}")
    print(f"compared {compared} files of {len(targets)} targets: {len(problems)} differences")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    problems = compare(Path(argv[0]), Path(argv[1]), argv[2:])
    for problem in problems:
        print(f"DIFFERENT {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
