"""Cosine similarity and sparsity of a backbone's language vectors, as two CSV tables.

The analysis of ACL appendix E (figures 9 and 10) over every language adapter of one
backbone and every seed, with :mod:`langarith.analysis`:

* ``cosine.csv``: ``lang_a, lang_b, cosine``, the cosine of τ_a and τ_b (τ = θ − θ_init)
  computed per seed and averaged over seeds (only same-seed pairs are compared);
* ``sparsity.csv``: one row per adapter and seed (``label`` ``es/seed42``, plus
  ``language`` and ``seed``) with the magnitude statistics of
  :func:`langarith.analysis.sparsity_table`.

One seed's vectors are held in memory at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

from langarith import LangarithError

__all__ = ["write_vector_analysis"]

log = logging.getLogger(__name__)


def write_vector_analysis(
    init_dir: str | PathLike[str],
    adapter_dirs: Mapping[str, str | PathLike[str]],
    cosine_csv: str | PathLike[str],
    sparsity_csv: str | PathLike[str],
) -> tuple[Path, Path]:
    """Write the cosine and sparsity tables of the adapters ``lang/seed<s>`` → folder."""
    import pandas as pd

    from langarith.analysis import (
        average_cosine_matrices,
        cosine_matrix,
        language_vectors,
        sparsity_table,
        split_seed_label,
        write_cosine_csv,
        write_csv,
    )

    if not adapter_dirs:
        raise LangarithError("No language adapters given for the language-vector analysis")
    by_seed: dict[str, dict[str, str | PathLike[str]]] = {}
    for label, folder in adapter_dirs.items():
        lang, seed = split_seed_label(label)
        by_seed.setdefault(seed, {})[lang] = folder
    languages = list(dict.fromkeys(split_seed_label(label)[0] for label in adapter_dirs))
    matrices, tables = [], []
    for seed, folders in by_seed.items():
        if sorted(folders) != sorted(languages):
            raise LangarithError(
                f"Seed {seed!r} has adapters for {sorted(folders)}, other seeds for "
                f"{sorted(languages)}; give every language for every seed"
            )
        vectors = language_vectors(init_dir, {lang: folders[lang] for lang in languages})
        matrices.append(cosine_matrix(vectors))
        table = sparsity_table(vectors)
        table.insert(1, "language", table["label"])
        table.insert(2, "seed", seed.removeprefix("seed"))
        table["label"] = [f"{lang}/{seed}" if seed else lang for lang in table["label"]]
        tables.append(table)
        log.info(
            "seed %s: %d language vectors of %d values",
            seed,
            len(vectors),
            next(iter(vectors.values())).numel(),
        )
    cosine = write_cosine_csv(average_cosine_matrices(matrices), cosine_csv)
    sparsity = write_csv(pd.concat(tables, ignore_index=True), sparsity_csv)
    return cosine, sparsity
