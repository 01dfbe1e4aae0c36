"""Properties of language vectors: cosine similarity and sparsity (paper appendix E).

Klimaszewski et al. (2024, appendix E) contrast language vectors τ = θ − θ_init with the
task vectors of Ilharco et al. (2023): language vectors are also *sparse* (figure 9, a
density plot of one adapter's τ values, mostly near 0) but *not orthogonal* (figure
10: pairwise cosine similarity 0.19–0.31, where task vectors sit at 0.01–0.03). This
module computes both from adapter folders:

* :func:`language_vectors` flattens τ over all adapter parameters (sorted names, so
  every vector lists the same parameters in the same order);
* :func:`cosine_matrix` / :func:`write_cosine_csv` for figure 10;
* :func:`sparsity_table`, :func:`value_histogram` and :func:`log_magnitude_histogram`
  for figure 9 (a density plot is drawn from the histogram's densities);
* :func:`write_analysis`, the workflow's analysis stage (rule
  ``language_vector_analysis``): the cosine and sparsity tables of one backbone.

Seeds are the caller's choice: pass several seeds of a language as separate labels
(``"es/seed42"``) and average with :func:`average_over_seeds`, or compute one matrix per
seed and average with :func:`average_cosine_matrices`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from langarith import LangarithError
from langarith.adapter_io import check_compatible, read_adapter, same_init
from langarith.io import atomic_file
from langarith.train.task_adapter import task_adapter_init_state

__all__ = [
    "average_cosine_matrices",
    "average_over_seeds",
    "cosine_matrix",
    "cosine_table",
    "language_vectors",
    "log_magnitude_histogram",
    "sparsity_table",
    "split_seed_label",
    "task_vectors",
    "value_histogram",
    "write_cosine_csv",
    "write_analysis",
    "write_csv",
    "write_task_cosine",
]

log = logging.getLogger(__name__)

#: Default thresholds of :func:`sparsity_table`, relative to max |τ| of each vector.
DEFAULT_THRESHOLDS = (1e-3, 1e-2, 1e-1)
#: Default quantiles of |τ| in :func:`sparsity_table`.
DEFAULT_QUANTILES = (0.5, 0.9, 0.99)


def language_vectors(
    init_dir: str | PathLike[str],
    adapter_dirs: Mapping[str, str | PathLike[str]],
    *,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """τ = θ − θ_init of each adapter, flattened over all its parameters.

    Args:
        init_dir: the shared θ_init folder.
        adapter_dirs: label (e.g. ``"es"`` or ``"es/seed42"``) → adapter folder.
        dtype: dtype of the returned vectors (differences are taken in float64 first).

    All adapters are checked against θ_init (architecture, backbone, names, shapes and
    recorded init checksum). Every vector concatenates the same parameters in sorted
    name order, invertible adapter included, so positions are comparable across labels.
    """
    if not adapter_dirs:
        raise LangarithError("No adapter folders given for the language-vector analysis")
    init = read_adapter(init_dir)
    names = sorted(init.state)
    vectors: dict[str, torch.Tensor] = {}
    for label, folder in adapter_dirs.items():
        adapter = read_adapter(folder)
        check_compatible([adapter], init)
        same_init(adapter, adapter, init)
        vectors[label] = torch.cat(
            [
                (adapter.state[n].double() - init.state[n].double()).reshape(-1).to(dtype)
                for n in names
            ]
        )
    return vectors


def _check_vectors(vectors: Mapping[str, torch.Tensor]) -> None:
    if not vectors:
        raise LangarithError("No language vectors given")
    sizes = {label: v.numel() for label, v in vectors.items()}
    if len(set(sizes.values())) > 1:
        raise LangarithError(
            f"Language vectors have different lengths {sizes}; they must come from "
            "adapters of one architecture and backbone"
        )


def cosine_matrix(vectors: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Pairwise cosine similarity, labels as index and columns (in the given order).

    Computed in float64 one pair at a time, so many long vectors cost no extra
    matrix. A zero vector has no direction: its row and column are NaN (with a
    warning in the log).
    """
    _check_vectors(vectors)
    labels = list(vectors)
    norms = {}
    for label in labels:
        norms[label] = float(torch.linalg.vector_norm(vectors[label].double()))
        if norms[label] == 0:
            log.warning("language vector %r is all zeros; its cosines are NaN", label)
    values = np.full((len(labels), len(labels)), np.nan)
    for i, a in enumerate(labels):
        for j in range(i, len(labels)):
            b = labels[j]
            if norms[a] == 0 or norms[b] == 0:
                continue
            dot = float(torch.dot(vectors[a].double().reshape(-1), vectors[b].double().reshape(-1)))
            values[i, j] = values[j, i] = dot / (norms[a] * norms[b])
    frame = pd.DataFrame(values, index=labels, columns=labels)
    frame.index.name = "lang_a"
    frame.columns.name = "lang_b"
    return frame


def cosine_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """A cosine matrix as a tidy table: ``lang_a, lang_b, cosine`` (every ordered pair)."""
    rows = [
        {"lang_a": a, "lang_b": b, "cosine": float(matrix.loc[a, b])}
        for a in matrix.index
        for b in matrix.columns
    ]
    return pd.DataFrame(rows, columns=["lang_a", "lang_b", "cosine"])


def write_csv(frame: pd.DataFrame, path: str | PathLike[str]) -> Path:
    """Write a table as CSV atomically (no index column), returns the path."""
    with atomic_file(path, "w") as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")
    return Path(path)


def write_cosine_csv(
    vectors_or_matrix: Mapping[str, torch.Tensor] | pd.DataFrame, path: str | PathLike[str]
) -> Path:
    """Write the tidy cosine table (``lang_a, lang_b, cosine``) of vectors or a matrix."""
    matrix = (
        vectors_or_matrix
        if isinstance(vectors_or_matrix, pd.DataFrame)
        else cosine_matrix(vectors_or_matrix)
    )
    return write_csv(cosine_table(matrix), path)


def average_cosine_matrices(matrices: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Element-wise mean of cosine matrices with the same labels (e.g. one per seed)."""
    if not matrices:
        raise LangarithError("No cosine matrices to average")
    labels = list(matrices[0].index)
    for i, matrix in enumerate(matrices[1:], start=1):
        if list(matrix.index) != labels or list(matrix.columns) != labels:
            raise LangarithError(
                f"Cosine matrix {i} has labels {list(matrix.index)}, matrix 0 has {labels}; "
                "average only matrices over the same languages"
            )
    mean = sum(m.to_numpy() for m in matrices) / len(matrices)
    frame = pd.DataFrame(mean, index=labels, columns=labels)
    frame.index.name, frame.columns.name = "lang_a", "lang_b"
    return frame


def split_seed_label(label: str) -> tuple[str, str]:
    """``"es/seed42"`` → ``("es", "seed42")``; a label without ``/`` is one seed ``""``."""
    lang, _, seed = label.partition("/")
    return lang, seed


def average_over_seeds(
    matrix: pd.DataFrame,
    key: Callable[[str], tuple[str, str]] = split_seed_label,
) -> pd.DataFrame:
    """Collapse a matrix over ``lang/seed`` labels into a language × language mean.

    Only pairs from the *same* seed are averaged (the seed-s vector of A against the
    seed-s vector of B), as if one matrix were computed per seed and then averaged;
    cross-seed pairs would mix seed noise into the comparison, and the diagonal stays 1.
    Languages missing for a seed are averaged over the seeds that have them.
    """
    groups = [key(str(label)) for label in matrix.index]
    langs = list(dict.fromkeys(lang for lang, _ in groups))
    sums = pd.DataFrame(0.0, index=langs, columns=langs)
    counts = pd.DataFrame(0, index=langs, columns=langs)
    for i, (lang_a, seed_a) in enumerate(groups):
        for j, (lang_b, seed_b) in enumerate(groups):
            value = matrix.iat[i, j]
            if seed_a == seed_b and not math.isnan(value):
                sums.loc[lang_a, lang_b] += value
                counts.loc[lang_a, lang_b] += 1
    frame = sums / counts.where(counts > 0)
    frame.index.name, frame.columns.name = "lang_a", "lang_b"
    return frame


def sparsity_table(
    vectors: Mapping[str, torch.Tensor],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    relative: bool = True,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> pd.DataFrame:
    """How concentrated near zero each language vector is: one row per label.

    Columns: ``label, n_params, max_abs, mean_abs, std, frac_zero``, then
    ``frac_below_<t>`` for each threshold t, the fraction of entries with |τ| < t·max|τ|
    (``relative=True``) or |τ| < t (``relative=False``), then ``q<p>_abs``, the quantiles
    of |τ|. A sparse vector has most of its mass in few entries: high ``frac_below`` at a
    small relative threshold and a median far below the maximum.
    """
    _check_vectors(vectors)
    if any(not (t > 0 and math.isfinite(t)) for t in thresholds):
        raise LangarithError(f"Sparsity thresholds must be positive numbers, got {thresholds}")
    if any(not 0 <= q <= 1 for q in quantiles):
        raise LangarithError(f"Quantiles must be in [0, 1], got {quantiles}")
    rows = []
    for label, vector in vectors.items():
        values = vector.detach().double().reshape(-1).cpu().numpy()
        magnitude = np.abs(values)
        top = float(magnitude.max()) if magnitude.size else 0.0
        row: dict[str, float | str | int] = {
            "label": label,
            "n_params": int(magnitude.size),
            "max_abs": top,
            "mean_abs": float(magnitude.mean()),
            "std": float(values.std()),
            "frac_zero": float((magnitude == 0).mean()),
        }
        for t in thresholds:
            limit = t * top if relative else t
            row[f"frac_below_{t:g}"] = float((magnitude < limit).mean())
        for q, value in zip(quantiles, np.quantile(magnitude, list(quantiles)), strict=True):
            row[f"q{q * 100:g}_abs"] = float(value)
        rows.append(row)
    return pd.DataFrame(rows)


def value_histogram(
    vectors: Mapping[str, torch.Tensor],
    bins: int = 200,
    value_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Histogram of τ values per label, tidy: ``label, bin_lo, bin_hi, count, density``.

    All labels share the bins (``value_range`` defaults to ±max|τ| over all vectors),
    so the densities can be drawn on one axis as in figure 9.
    """
    _check_vectors(vectors)
    if bins < 1:
        raise LangarithError(f"bins must be a positive integer, got {bins}")
    if value_range is None:
        top = max(float(v.detach().abs().max()) for v in vectors.values()) or 1.0
        value_range = (-top, top)
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    rows = []
    for label, vector in vectors.items():
        values = vector.detach().double().reshape(-1).cpu().numpy()
        counts, _ = np.histogram(values, bins=edges)
        density, _ = np.histogram(values, bins=edges, density=True)
        for k in range(bins):
            rows.append(
                {
                    "label": label,
                    "bin_lo": float(edges[k]),
                    "bin_hi": float(edges[k + 1]),
                    "count": int(counts[k]),
                    "density": float(density[k]),
                }
            )
    return pd.DataFrame(rows, columns=["label", "bin_lo", "bin_hi", "count", "density"])


def log_magnitude_histogram(
    vectors: Mapping[str, torch.Tensor],
    low: float = -8.0,
    high: float = 1.0,
    bins_per_decade: int = 4,
) -> pd.DataFrame:
    """Histogram of log10|τ| per label, tidy: ``label, log10_lo, log10_hi, count, fraction``.

    Bins span 10**low to 10**high. Entries below 10**low, exact zeros included, are
    counted in the first bin and entries above 10**high in the last, so ``fraction``
    sums to 1 per label.
    """
    _check_vectors(vectors)
    if not high > low or bins_per_decade < 1:
        raise LangarithError(
            f"Need high > low and bins_per_decade >= 1; got low={low}, high={high}, "
            f"bins_per_decade={bins_per_decade}"
        )
    n_bins = max(1, round((high - low) * bins_per_decade))
    edges = np.linspace(low, high, n_bins + 1)
    rows = []
    for label, vector in vectors.items():
        magnitude = np.abs(vector.detach().double().reshape(-1).cpu().numpy())
        with np.errstate(divide="ignore"):
            logs = np.log10(magnitude)
        logs = np.clip(logs, low, high)  # -inf (zeros) goes to the first bin
        counts, _ = np.histogram(logs, bins=edges)
        total = max(1, magnitude.size)
        for k in range(n_bins):
            rows.append(
                {
                    "label": label,
                    "log10_lo": float(edges[k]),
                    "log10_hi": float(edges[k + 1]),
                    "count": int(counts[k]),
                    "fraction": counts[k] / total,
                }
            )
    return pd.DataFrame(rows, columns=["label", "log10_lo", "log10_hi", "count", "fraction"])


def _seed_folders(
    adapter_dirs: Mapping[str, str | PathLike[str]],
) -> tuple[list[str], dict[str, dict[str, str | PathLike[str]]]]:
    """Languages (first-seen order) and seed → language → folder of ``lang/seed`` labels.

    Every seed must have every language, so that per-seed matrices can be averaged.
    """
    if not adapter_dirs:
        raise LangarithError("No language adapters given for the language-vector analysis")
    by_seed: dict[str, dict[str, str | PathLike[str]]] = {}
    for label, folder in adapter_dirs.items():
        lang, seed = split_seed_label(label)
        by_seed.setdefault(seed, {})[lang] = folder
    languages = list(dict.fromkeys(split_seed_label(label)[0] for label in adapter_dirs))
    for seed, folders in by_seed.items():
        if sorted(folders) != sorted(languages):
            raise LangarithError(
                f"Seed {seed!r} has adapters for {sorted(folders)}, other seeds for "
                f"{sorted(languages)}; give every language for every seed"
            )
    return languages, by_seed


def _seed_sparsity(vectors: Mapping[str, torch.Tensor], seed: str) -> pd.DataFrame:
    """:func:`sparsity_table` of one seed, with ``language`` and ``seed`` columns."""
    table = sparsity_table(vectors)
    table.insert(1, "language", table["label"])
    table.insert(2, "seed", seed.removeprefix("seed"))
    table["label"] = [f"{lang}/{seed}" if seed else lang for lang in table["label"]]
    return table


def write_analysis(
    init_dir: str | PathLike[str],
    adapter_dirs: Mapping[str, str | PathLike[str]],
    cosine_csv: str | PathLike[str],
    sparsity_csv: str | PathLike[str],
) -> tuple[Path, Path]:
    """The analysis stage: cosine and sparsity tables of a backbone's language vectors.

    ``adapter_dirs`` maps ``lang/seed<s>`` labels to folders (every language for every
    seed). Writes, atomically:

    * ``cosine_csv``: ``lang_a, lang_b, cosine``, the cosine of τ_a and τ_b computed per
      seed and averaged over seeds (only same-seed pairs are compared);
    * ``sparsity_csv``: one row per adapter and seed (``label`` ``es/seed42``, plus
      ``language`` and ``seed``) with the statistics of :func:`sparsity_table`.

    One seed's vectors are held in memory at a time.
    """
    languages, by_seed = _seed_folders(adapter_dirs)
    matrices, tables = [], []
    for seed, folders in by_seed.items():
        vectors = language_vectors(init_dir, {lang: folders[lang] for lang in languages})
        matrices.append(cosine_matrix(vectors))
        tables.append(_seed_sparsity(vectors, seed))
        log.info(
            "seed %s: %d language vectors of %d values",
            seed,
            len(vectors),
            next(iter(vectors.values())).numel(),
        )
    cosine = write_cosine_csv(average_cosine_matrices(matrices), cosine_csv)
    sparsity = write_csv(pd.concat(tables, ignore_index=True), sparsity_csv)
    return cosine, sparsity


def task_vectors(
    backbone_dir: str | PathLike[str],
    task_dirs: Mapping[str, str | PathLike[str]],
    *,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """τ = θ − θ_init of each task adapter, flattened over its parameters (sorted names).

    Task adapters start from random weights drawn from their seed, not from a shared
    saved θ_init, so each one's θ_init is drawn again
    (:func:`langarith.train.task_adapter.task_adapter_init_state`). The heads are left
    out: they have no adapter counterpart in the language vectors.
    """
    if not task_dirs:
        raise LangarithError("No task adapter folders given for the task-vector analysis")
    vectors: dict[str, torch.Tensor] = {}
    for label, folder in task_dirs.items():
        adapter = read_adapter(folder)
        init = task_adapter_init_state(backbone_dir, folder)
        vectors[label] = torch.cat(
            [
                (adapter.state[n].double() - init[n].double()).reshape(-1).to(dtype)
                for n in sorted(init)
            ]
        )
    return vectors


def write_task_cosine(
    backbone_dir: str | PathLike[str],
    task_dirs: Mapping[str, str | PathLike[str]],
    cosine_csv: str | PathLike[str],
) -> Path:
    """The cosine of task vectors (ACL Appendix E's contrast), as :func:`write_analysis`.

    ``task_dirs`` maps ``task/seed<s>`` labels to task adapter folders (every task for
    every seed); writes ``lang_a, lang_b, cosine`` (here: tasks), computed per seed and
    averaged over seeds. Ilharco et al. find task vectors nearly orthogonal (0.01-0.03);
    the papers find language vectors at 0.19-0.31.
    """
    tasks, by_seed = _seed_folders(task_dirs)
    if len(tasks) < 2:
        raise LangarithError(
            f"The task-vector analysis needs at least two tasks with adapters; got {tasks}"
        )
    matrices = []
    for seed, folders in by_seed.items():
        vectors = task_vectors(backbone_dir, {task: folders[task] for task in tasks})
        matrices.append(cosine_matrix(vectors))
        log.info("seed %s: %d task vectors", seed, len(vectors))
    return write_cosine_csv(average_cosine_matrices(matrices), cosine_csv)
