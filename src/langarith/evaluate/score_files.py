"""The tidy score table of one evaluation job, written as CSV.

One file per (scenario, model, task, target, seed),
``results/scores/<scenario>/<model>/<task>/<target>/seed<seed>.csv``, one row per
evaluated point, split and metric (docs/interfaces.md):

=========  ===================================================================
column     meaning
=========  ===================================================================
scenario   ``zero_shot``, ``enhancement``, ``low_resource``, ``romance``, ``ties``
model      backbone key of the config (``xlmr``, ``tinybert``)
task       task key of the config (``ner``, ``nli``, ``qa``, ``nli_as``)
target     language evaluated on
seed       seed of the language and task adapters
method     the papers' name: ``pEA``, ``pRA``, ``LA``, ``T``, ``LA(T,en)``,
           ``LA(T,REL)``, ``MIX``, ``LA(T,l2)``, ``TIES``
adapters   the adapters merged, comma-separated, λ weighting the first
           (``en,it`` is θ_init + λτ_en + (1−λ)τ_it); budget adapters are written
           ``pt/budget10000``
lambda     λ of the point; empty for a single adapter
top_k      TIES' top-k percentage; empty for other methods
split      ``validation`` (the whole evaluated curve) or ``test`` (the chosen λ
           and the single-adapter baselines only)
metric     ``f1``, ``accuracy`` or ``exact_match``
score      0-100
=========  ===================================================================
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from langarith import LangarithError
from langarith.io import OutputKind, atomic_file

__all__ = [
    "SCORE_COLUMNS",
    "ScoreRow",
    "format_number",
    "read_scores",
    "score_file_kind",
    "write_scores",
]

#: Column order of every score CSV.
SCORE_COLUMNS: tuple[str, ...] = (
    "scenario",
    "model",
    "task",
    "target",
    "seed",
    "method",
    "adapters",
    "lambda",
    "top_k",
    "split",
    "metric",
    "score",
)


@dataclass(frozen=True)
class ScoreRow:
    """One row of a score CSV (see the module docstring for the columns)."""

    scenario: str
    model: str
    task: str
    target: str
    seed: int
    method: str
    adapters: str
    lam: float | None
    top_k: float | None
    split: str
    metric: str
    score: float

    def as_record(self) -> dict[str, str]:
        return {
            "scenario": self.scenario,
            "model": self.model,
            "task": self.task,
            "target": self.target,
            "seed": str(self.seed),
            "method": self.method,
            "adapters": self.adapters,
            "lambda": format_number(self.lam),
            "top_k": format_number(self.top_k),
            "split": self.split,
            "metric": self.metric,
            "score": format_number(self.score),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> ScoreRow:
        def number(text: str) -> float | None:
            return float(text) if text not in ("", None) else None

        return cls(
            scenario=record["scenario"],
            model=record["model"],
            task=record["task"],
            target=record["target"],
            seed=int(record["seed"]),
            method=record["method"],
            adapters=record["adapters"],
            lam=number(record["lambda"]),
            top_k=number(record["top_k"]),
            split=record["split"],
            metric=record["metric"],
            score=float(record["score"]),
        )


def format_number(value: float | None) -> str:
    """Shortest text that reads back as the same float; ``""`` for ``None``.

    λ values come from :func:`langarith.config.grid` (rounded to 10 decimals), so they
    print as ``0.35``, not ``0.35000000000000003``; integral values print without a
    fractional part (``20`` for top-k 20).
    """
    if value is None:
        return ""
    value = float(value)
    if not math.isfinite(value):
        raise LangarithError(f"Score table value {value!r} is not a finite number")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def score_file_kind() -> OutputKind:
    """A score CSV as an output: an earlier one is recognised by its header line."""
    return OutputKind("score table", is_dir=False, header=",".join(SCORE_COLUMNS))


def write_scores(rows: Iterable[ScoreRow], path: str | PathLike[str]) -> Path:
    """Write rows as CSV (header :data:`SCORE_COLUMNS`) atomically: temp file, then rename.

    ``path`` may replace only a missing path or an earlier score CSV.
    """
    path = Path(path)
    with atomic_file(path, "w", score_file_kind()) as handle:
        writer = csv.DictWriter(handle, fieldnames=SCORE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_record())
    return path


def read_scores(path: str | PathLike[str]) -> list[ScoreRow]:
    """Read a score CSV back; a file with other columns is refused, naming them."""
    path = Path(path)
    if not path.is_file():
        raise LangarithError(f"Score file {path} does not exist; run its evaluation job first")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header: Sequence[str] = reader.fieldnames or []
        if tuple(header) != SCORE_COLUMNS:
            raise LangarithError(
                f"Score file {path} has columns {list(header)}; expected {list(SCORE_COLUMNS)}"
            )
        return [ScoreRow.from_record(record) for record in reader]
