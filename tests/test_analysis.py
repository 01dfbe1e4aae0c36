"""Tests of langarith.analysis: cosine similarity and sparsity of language vectors."""

from __future__ import annotations

import math

import adapters
import numpy as np
import pandas as pd
import pytest
import torch
import transformers
from tiny import TINY_BERT

from langarith import LangarithError
from langarith.adapter_io import read_adapter, write_adapter
from langarith.analysis import (
    average_cosine_matrices,
    average_over_seeds,
    cosine_matrix,
    language_vectors,
    log_magnitude_histogram,
    sparsity_table,
    value_histogram,
    write_analysis,
    write_cosine_csv,
    write_csv,
)

SQRT_HALF = 1 / math.sqrt(2)


def _vec(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_cosine_known_values() -> None:
    vectors = {
        "a": _vec(1, 0, 0),
        "b": _vec(1, 1, 0),  # 45° from a
        "c": _vec(-2, 0, 0),  # opposite to a
        "d": _vec(0, 0, 3),  # orthogonal to a and b
    }
    matrix = cosine_matrix(vectors)
    assert list(matrix.index) == list(matrix.columns) == ["a", "b", "c", "d"]
    for label in vectors:
        assert matrix.loc[label, label] == pytest.approx(1.0, abs=1e-12)
    assert matrix.loc["a", "b"] == pytest.approx(SQRT_HALF, abs=1e-12)
    assert matrix.loc["b", "c"] == pytest.approx(-SQRT_HALF, abs=1e-12)
    assert matrix.loc["a", "c"] == pytest.approx(-1.0, abs=1e-12)
    assert matrix.loc["a", "d"] == 0.0 and matrix.loc["d", "b"] == 0.0
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T)


def test_cosine_of_zero_vector_is_nan_and_lengths_must_match() -> None:
    matrix = cosine_matrix({"a": _vec(1, 2), "z": _vec(0, 0)})
    assert math.isnan(matrix.loc["a", "z"]) and math.isnan(matrix.loc["z", "z"])
    with pytest.raises(LangarithError, match="different lengths"):
        cosine_matrix({"a": _vec(1, 2), "b": _vec(1, 2, 3)})


def test_cosine_csv_is_tidy(tmp_path) -> None:
    path = write_cosine_csv({"en": _vec(1, 0), "es": _vec(1, 1)}, tmp_path / "cos" / "cosine.csv")
    table = pd.read_csv(path)
    assert list(table.columns) == ["lang_a", "lang_b", "cosine"]
    assert len(table) == 4
    row = table[(table.lang_a == "en") & (table.lang_b == "es")]
    assert row.cosine.item() == pytest.approx(SQRT_HALF)


def test_average_cosine_over_seeds() -> None:
    # Seed 1: en·es = 1/√2; seed 2: en ⟂ es → 0; mean 1/(2√2). The cross-seed pairs
    # (en/s1 vs es/s2) must not enter the mean.
    vectors = {
        "en/seed1": _vec(1, 0, 0),
        "es/seed1": _vec(1, 1, 0),
        "en/seed2": _vec(0, 0, 1),
        "es/seed2": _vec(0, 1, 0),
    }
    collapsed = average_over_seeds(cosine_matrix(vectors))
    assert list(collapsed.index) == ["en", "es"]
    assert collapsed.loc["en", "es"] == pytest.approx(SQRT_HALF / 2)
    assert collapsed.loc["en", "en"] == pytest.approx(1.0)
    per_seed = [
        cosine_matrix({"en": vectors[f"en/seed{s}"], "es": vectors[f"es/seed{s}"]}) for s in (1, 2)
    ]
    averaged = average_cosine_matrices(per_seed)
    assert np.allclose(averaged.to_numpy(), collapsed.to_numpy())
    with pytest.raises(LangarithError, match="same languages"):
        average_cosine_matrices([per_seed[0], cosine_matrix({"fr": _vec(1), "de": _vec(1)})])


def test_sparsity_on_constructed_vector(tmp_path) -> None:
    # |τ| = 0, 0.001, 0.01, 0.1, 1 → max 1; relative thresholds 0.005, 0.05, 0.5:
    # below 0.005: {0, 0.001} = 2/5; below 0.05: 3/5; below 0.5: 4/5. Median |τ| 0.01.
    vector = _vec(0.0, 0.001, -0.01, 0.1, -1.0)
    table = sparsity_table({"es": vector}, thresholds=(0.005, 0.05, 0.5), quantiles=(0.5, 1.0))
    row = table.iloc[0]
    assert row["label"] == "es" and row["n_params"] == 5
    assert row["max_abs"] == pytest.approx(1.0)
    assert row["frac_zero"] == pytest.approx(0.2)
    assert row["frac_below_0.005"] == pytest.approx(0.4)
    assert row["frac_below_0.05"] == pytest.approx(0.6)
    assert row["frac_below_0.5"] == pytest.approx(0.8)
    assert row["q50_abs"] == pytest.approx(0.01)
    assert row["q100_abs"] == pytest.approx(1.0)
    assert row["mean_abs"] == pytest.approx(1.111 / 5, rel=1e-5)
    # absolute thresholds on a vector with max 2: the same entries as relative on max 1
    doubled = sparsity_table({"es": vector * 2}, thresholds=(0.01,), relative=False)
    assert doubled.iloc[0]["frac_below_0.01"] == pytest.approx(0.4)
    written = pd.read_csv(write_csv(table, tmp_path / "sparsity.csv"))
    assert list(written.columns) == list(table.columns)
    with pytest.raises(LangarithError, match="positive numbers"):
        sparsity_table({"es": vector}, thresholds=(0.0,))


def test_histograms_cover_every_entry() -> None:
    vectors = {"a": _vec(0.0, 1e-9, 1e-3, -1e-3, 0.5, 20.0), "b": _vec(1, 2, 3, 4, 5, 6)}
    logs = log_magnitude_histogram(vectors, low=-4, high=1, bins_per_decade=1)
    a = logs[logs.label == "a"]
    assert len(a) == 5 and a["fraction"].sum() == pytest.approx(1.0)
    # 0 and 1e-9 clip into the first bin [-4, -3); ±1e-3 fall in [-3, -2); 0.5 in
    # [-1, 0); 20 clips into the last bin [0, 1].
    assert a["count"].tolist() == [2, 2, 0, 1, 1]
    values = value_histogram(vectors, bins=10)
    assert values.groupby("label")["count"].sum().tolist() == [6, 6]
    widths = values.bin_hi - values.bin_lo
    assert (values.density * widths).groupby(values.label).sum().tolist() == pytest.approx([1, 1])


@pytest.fixture(scope="module")
def adapter_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("analysis")
    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig(**TINY_BERT))
    adapters.init(model)
    model.add_adapter(
        "init", config=adapters.SeqBnInvConfig(reduction_factor=2, non_linearity="gelu_new")
    )
    model.save_adapter(str(root / "init"), "init")
    init = read_adapter(root / "init")
    taus = {}
    for seed, lang in enumerate(["en", "es"], start=1):
        gen = torch.Generator().manual_seed(seed)
        taus[lang] = {k: torch.randn(v.shape, generator=gen) * 0.01 for k, v in init.state.items()}
        state = {k: init.state[k] + taus[lang][k] for k in init.state}
        write_adapter(init, state, root / lang, name=lang)
    return {"root": root, "init": init, "taus": taus}


def test_language_vectors_from_folders(adapter_dirs) -> None:
    root, init, taus = adapter_dirs["root"], adapter_dirs["init"], adapter_dirs["taus"]
    vectors = language_vectors(root / "init", {"en": root / "en", "es": root / "es"})
    names = sorted(init.state)
    assert any(n.startswith("invertible_adapters.") for n in names)
    for lang, vector in vectors.items():
        assert vector.ndim == 1 and vector.numel() == sum(t.numel() for t in init.state.values())
        adapter = read_adapter(root / lang)
        expected = torch.cat([(adapter.state[n] - init.state[n]).reshape(-1) for n in names])
        torch.testing.assert_close(vector, expected, rtol=0, atol=1e-7)
        direct = torch.cat([taus[lang][n].reshape(-1) for n in names])
        torch.testing.assert_close(vector, direct, rtol=1e-3, atol=1e-7)
    matrix = cosine_matrix(vectors)
    assert abs(matrix.loc["en", "es"]) < 0.2  # independent noise: nearly orthogonal
    with pytest.raises(LangarithError, match="does not exist"):
        language_vectors(root / "init", {"fr": root / "fr"})


def test_write_analysis_tables(adapter_dirs, tmp_path) -> None:
    """The analysis stage: per-seed cosines averaged, sparsity per adapter and seed."""
    root = adapter_dirs["root"]
    dirs = {f"{lang}/seed{s}": root / lang for s in (1, 2) for lang in ("en", "es")}
    cosine_csv, sparsity_csv = write_analysis(
        root / "init", dirs, tmp_path / "a" / "cosine.csv", tmp_path / "a" / "sparsity.csv"
    )
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["cosine.csv", "sparsity.csv"]
    table = pd.read_csv(cosine_csv)
    assert list(table.columns) == ["lang_a", "lang_b", "cosine"] and len(table) == 4
    matrix = table.pivot(index="lang_a", columns="lang_b", values="cosine")
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    vectors = language_vectors(root / "init", {"en": root / "en", "es": root / "es"})
    assert matrix.loc["en", "es"] == pytest.approx(cosine_matrix(vectors).loc["en", "es"])
    rows = pd.read_csv(sparsity_csv)
    assert rows.label.tolist() == list(dirs)
    assert rows.language.tolist() == ["en", "es", "en", "es"]
    assert rows.seed.tolist() == [1, 1, 2, 2]
    assert {"n_params", "frac_zero"} <= set(rows.columns)


def test_write_analysis_needs_every_language_for_every_seed(adapter_dirs, tmp_path) -> None:
    root = adapter_dirs["root"]
    dirs = {"en/seed1": root / "en", "es/seed1": root / "es", "en/seed2": root / "en"}
    with pytest.raises(LangarithError, match="give every language for every seed"):
        write_analysis(root / "init", dirs, tmp_path / "c.csv", tmp_path / "s.csv")
    assert not (tmp_path / "c.csv").exists()
    with pytest.raises(LangarithError, match="No language adapters"):
        write_analysis(root / "init", {}, tmp_path / "c.csv", tmp_path / "s.csv")


def test_task_vectors_redraw_each_adapters_init_from_its_seed(tmp_path) -> None:
    """τ of a task adapter is θ − the θ_init its seed draws, so known τ come back."""
    import json

    from toy_setup import build_toy_setup

    from langarith.analysis import task_vectors, write_task_cosine
    from langarith.modeling import load_adapter_model
    from langarith.train.task_adapter import add_task_adapter

    setup = build_toy_setup(tmp_path / "toy")
    config = {"architecture": "seq_bn", "reduction_factor": 16}
    gen = torch.Generator().manual_seed(0)
    shared = None
    taus: dict[str, torch.Tensor] = {}
    dirs = {}
    for seed in (3, 4):
        for task in ("ner", "nli"):
            model = load_adapter_model(setup.backbone)
            add_task_adapter(model, task, config, seed)
            params = sorted((n, p) for n, p in model.named_parameters() if f".{task}." in n)
            if shared is None:
                shared = [torch.randn(p.shape, generator=gen) for _, p in params]
            with torch.no_grad():  # τ = a shared direction (seed 3 only) + a task's own
                own = [torch.randn(p.shape, generator=gen) for _, p in params]
                for (_, param), s, o in zip(params, shared, own, strict=True):
                    param.add_(o + (s if seed == 3 else 0))
            taus[f"{task}/seed{seed}"] = torch.cat(
                [
                    (o + (s if seed == 3 else 0)).reshape(-1)
                    for s, o in zip(shared, own, strict=True)
                ]
            )
            out = tmp_path / f"{task}{seed}"
            model.save_adapter(str(out), task, with_head=False, use_safetensors=True)
            meta = {"seed": seed, "hparams": {"adapter_config": config}}
            (out / "metadata.json").write_text(json.dumps(meta))
            dirs[f"{task}/seed{seed}"] = out
    vectors = task_vectors(setup.backbone, dirs)
    for label, tau in taus.items():
        # parameter order: sorted normalised names equal sorted parameter names here
        assert torch.allclose(vectors[label], tau, atol=1e-5), label
    csv = write_task_cosine(setup.backbone, dirs, tmp_path / "task_cosine.csv")
    table = pd.read_csv(csv)
    pair = table[(table["lang_a"] == "ner") & (table["lang_b"] == "nli")]["cosine"].iloc[0]
    expected = np.mean(
        [
            float(
                torch.nn.functional.cosine_similarity(
                    taus[f"ner/seed{s}"], taus[f"nli/seed{s}"], dim=0
                )
            )
            for s in (3, 4)
        ]
    )
    assert pair == pytest.approx(expected, abs=1e-5)
    assert 0.2 < pair < 0.45  # seed 3 shares a direction (~0.5), seed 4 does not (~0)
    bad = tmp_path / "ner3" / "metadata.json"
    bad.write_text("{}")
    with pytest.raises(LangarithError, match="cannot be rebuilt"):
        task_vectors(setup.backbone, {"ner/seed3": tmp_path / "ner3"})


def test_a_task_adapters_init_does_not_depend_on_the_language_adapter_below(tmp_path) -> None:
    """Training draws θ_init with a language adapter loaded; the analysis without one."""
    from toy_setup import build_toy_setup

    from langarith.modeling import LANG_ADAPTER_NAME, load_adapter_model, load_language_adapter
    from langarith.train.task_adapter import add_task_adapter

    setup = build_toy_setup(tmp_path / "toy")
    config = {"architecture": "seq_bn", "reduction_factor": 16}
    states = []
    for with_lang in (True, False):
        model = load_adapter_model(setup.backbone)
        if with_lang:
            load_language_adapter(model, setup.lang["en"], name=LANG_ADAPTER_NAME)
        add_task_adapter(model, "ner", config, 5)
        states.append({k: v for k, v in model.state_dict().items() if ".ner." in k})
    assert sorted(states[0]) == sorted(states[1]) and states[0]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
