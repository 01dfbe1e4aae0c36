"""The tidy score table of one evaluation job, written as CSV.

One file per (scenario, model, task, target, seed),
``results/scores/<scenario>/<model>/<task>/<target>/seed<seed>.csv``, one row per
evaluated point, split and metric (docs/interfaces.md):

=========  ===================================================================
column     meaning
=========  ===================================================================
scenario   ``zero_shot``, ``enhancement``, ``low_resource``, ``romance``, ``ties``,
           ``zero_shot_nway``
model      backbone key of the config (``xlmr``, ``tinybert``)
task       task key of the config (``ner``, ``nli``, ``qa``, ``nli_as``)
target     language evaluated on
seed       seed of the language and task adapters
method     the papers' name: ``pEA``, ``pRA``, ``LA``, ``T``, ``LA(T,en)``,
           ``LA(T,REL)``, ``MIX``, ``LA(T,l2)``, ``TIES``, ``LA-k`` (N-way)
adapters   the adapters merged, comma-separated, λ weighting the first
           (``en,it`` is θ_init + λτ_en + (1−λ)τ_it); budget adapters are written
           ``pt/budget10000``; an N-way point (``LA-k``) writes each adapter with
           its weight, ``en=0.5,es=0.3,pt=0.2`` (:func:`format_weights`)
lambda     λ of the point; empty for a single adapter
top_k      TIES' top-k percentage; empty for other methods
split      ``validation`` (the whole evaluated curve) or ``test`` (the chosen λ
           and the single-adapter baselines only)
metric     ``f1``, ``accuracy`` or ``exact_match``
score      0-100 (:data:`SCORE_RANGE`; a value outside is refused on reading)
=========  ===================================================================

Reading checks that a file is whole before any value is used
(:func:`read_score_records`): UTF-8 text, a final newline (a file cut mid-row would
otherwise read its last value short, ``12.5`` as ``1``) and as many values on every
row as the header has; each refusal names the file and the line.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from langarith import LangarithError
from langarith.io import OutputKind, write_csv_records

__all__ = [
    "SCORE_COLUMNS",
    "SCORE_RANGE",
    "ScoreRow",
    "format_number",
    "format_weights",
    "parse_weights",
    "read_score_records",
    "read_scores",
    "read_whole_csv",
    "score_file_kind",
    "score_problem",
    "write_scores",
]

#: Every metric is a percentage (F1, accuracy, exact match, all x 100).
SCORE_RANGE = (0.0, 100.0)

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


def score_problem(value: float) -> str | None:
    """Why ``value`` cannot be a score (outside :data:`SCORE_RANGE`), or None."""
    low, high = SCORE_RANGE
    if not math.isnan(value) and not low <= value <= high:
        return f"score {value:g} is outside {low:g}-{high:g} (metrics are percentages)"
    return None


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
    records = (row.as_record() for row in rows)
    return write_csv_records(path, SCORE_COLUMNS, records, score_file_kind())


def read_score_records(path: str | PathLike[str]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every row (with its line number) of a score CSV that is whole."""
    return read_whole_csv(path, "score file", "rerun the evaluation that writes it")


def read_whole_csv(
    path: str | PathLike[str], what: str, rerun: str
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every row (with its line number) of a workflow CSV that is whole.

    Refused with one line naming the file (``what``, and the line) and what to do
    (``rerun``): a missing file or a folder, bytes that are not UTF-8, an empty file, a
    file that does not end with a newline (cut short mid-row) and a row with another
    number of values than the header. Blank lines are skipped. Shared by every reader of
    the workflow's own CSVs, so a damaged file gets the same sentence wherever it is read.
    """
    path = Path(path)
    if not path.exists():
        raise LangarithError(f"{what} {path} does not exist; {rerun}")
    if path.is_dir():
        raise LangarithError(f"{what} {path} is a folder, not a CSV file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise LangarithError(
            f"{what} {path} line {line} is not UTF-8 text (byte {err.start}); "
            f"the file is damaged: {rerun}"
        ) from None
    if not text.strip():
        raise LangarithError(f"{what} {path} is empty; {rerun}")
    if not text.endswith("\n"):
        last = text.count("\n") + 1
        raise LangarithError(
            f"{what} {path} ends in the middle of line {last} (no final newline): "
            f"it was cut short; {rerun}"
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as err:
        raise LangarithError(
            f"{what} {path} line {reader.line_num} is not valid CSV ({err}); {rerun}"
        ) from None
    for line, row in rows:
        if len(row) != len(header):
            raise LangarithError(
                f"{what} {path} line {line} has {len(row)} values where the header has "
                f"{len(header)}; the file is damaged: {rerun}"
            )
    return header, rows


def read_scores(path: str | PathLike[str]) -> list[ScoreRow]:
    """Read a score CSV back; a file with other columns, or a bad score, is refused."""
    path = Path(path)
    header, rows = read_score_records(path)
    if tuple(header) != SCORE_COLUMNS:
        raise LangarithError(
            f"Score file {path} has columns {list(header)}; expected {list(SCORE_COLUMNS)}"
        )
    out = []
    for line, values in rows:
        try:
            row = ScoreRow.from_record(dict(zip(header, values, strict=True)))
        except ValueError as err:
            raise LangarithError(f"score file {path} line {line}: {err}") from None
        problem = score_problem(row.score)
        if problem:
            raise LangarithError(f"score file {path} line {line}: {problem}")
        out.append(row)
    return out


def format_weights(labels: Sequence[str], weights: Sequence[float]) -> str:
    """The score file's ``adapters`` cell of an N-way point: ``en=0.5,es=0.3,pt=0.2``."""
    return ",".join(
        f"{label}={format_number(round(float(w), 10))}"
        for label, w in zip(labels, weights, strict=True)
    )


def parse_weights(cell: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Labels and weights of a :func:`format_weights` cell; other cells are refused."""
    labels, weights = [], []
    for part in str(cell).split(","):
        label, sep, value = part.strip().partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not label or not math.isfinite(weight):
            raise LangarithError(
                f"adapters cell {cell!r} is not a list of label=weight (e.g. en=0.5,es=0.5)"
            )
        labels.append(label)
        weights.append(weight)
    return tuple(labels), tuple(weights)
