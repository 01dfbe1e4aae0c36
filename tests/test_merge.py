"""Tests of langarith.merge: every merged tensor checked against a sum worked out by hand.

The fixture is a tiny random BERT (hidden 32, 2 layers) with a MAD-X language adapter
(bottleneck + invertible adapter, reduction factor 2, gelu_new) saved as θ_init, and
three "trained" adapters made by perturbing every init parameter (invertible ones
included) with different noise and saving them under different names and formats.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import adapters
import pytest
import torch
import transformers
from tiny import TINY_BERT

from langarith import LangarithError
from langarith.adapter_io import (
    PLACEHOLDER,
    load_adapter_into,
    read_adapter,
    weights_sha256,
    write_adapter,
)
from langarith.merge import (
    MERGE_METHODS,
    LanguageVectorSet,
    get_method,
    live_adapter_parameters,
    merge_adapters,
    merge_states,
    register_cli,
)
from langarith.merge.base import MergeMethod
from langarith.merge.dare import dare, dare_mask
from langarith.merge.ties import keep_count


def _adapter_config() -> object:
    return adapters.SeqBnInvConfig(reduction_factor=2, non_linearity="gelu_new")


def _bare_model(cls_name: str = "BertModel") -> torch.nn.Module:
    torch.manual_seed(0)
    model = getattr(transformers, cls_name)(transformers.BertConfig(**TINY_BERT))
    adapters.init(model)
    return model


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """θ_init (.bin) and adapters en (.bin), es (safetensors), fr (.bin, no metadata)."""
    root = tmp_path_factory.mktemp("adapters")
    model = _bare_model()
    model.add_adapter("init", config=_adapter_config())
    model.save_adapter(str(root / "init"), "init")
    init_sha = weights_sha256(root / "init")
    init_params = {
        n.replace(".init.", f".{PLACEHOLDER}."): p.detach().clone()
        for n, p in model.named_parameters()
        if ".init." in n
    }
    paths = {"init": root / "init"}
    for seed, name in enumerate(["en", "es", "fr"], start=1):
        model.add_adapter(name, config=_adapter_config())
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for full, param in model.named_parameters():
                if f".{name}." in full:
                    base = init_params[full.replace(f".{name}.", f".{PLACEHOLDER}.")]
                    param.copy_(base + 0.05 * torch.randn(base.shape, generator=gen))
        model.save_adapter(str(root / name), name, use_safetensors=name == "es")
        if name != "fr":
            (root / name / "metadata.json").write_text(json.dumps({"init_sha256": init_sha}))
        paths[name] = root / name
    return paths


def _states(bank: dict[str, Path], *names: str) -> list[dict[str, torch.Tensor]]:
    return [read_adapter(bank[n]).state for n in names]


def _invertible(names: list[str]) -> list[str]:
    return [n for n in names if n.startswith(f"invertible_adapters.{PLACEHOLDER}.")]


# --- registry ------------------------------------------------------------------------


def test_registry_lists_methods_with_references() -> None:
    assert sorted(MERGE_METHODS) == [
        "bottom-k",
        "dare",
        "dare_ties",
        "linear",
        "task-arithmetic",
        "ties",
        "top-k",
    ]
    for name, method in MERGE_METHODS.items():
        assert get_method(name) is method
        assert method.reference and method.reference_url.startswith("https://")
    assert not get_method("linear").needs_init
    assert get_method("task-arithmetic").needs_init and get_method("ties").needs_init
    with pytest.raises(LangarithError) as err:
        get_method("foo")
    assert str(err.value) == (
        "Unknown merge method 'foo'. Must be one of "
        "['linear', 'task-arithmetic', 'ties', 'dare', 'dare_ties', 'top-k', 'bottom-k']"
    )


def test_weight_and_param_validation() -> None:
    linear, ties = get_method("linear"), get_method("ties")
    with pytest.raises(LangarithError, match=r"must sum to 1.*\[0\.4, 0\.5\]"):
        linear.resolve_weights([0.4, 0.5], 2)
    assert linear.resolve_weights([0.3, 0.7 + 5e-7], 2) == [0.3, 0.7 + 5e-7]  # within 1e-6
    assert linear.resolve_weights(None, 4) == [0.25] * 4
    with pytest.raises(LangarithError, match=r"3 weight\(s\).*2 adapter\(s\)"):
        linear.resolve_weights([0.2, 0.3, 0.5], 2)
    with pytest.raises(LangarithError, match="explicit weights"):
        get_method("task-arithmetic").resolve_weights(None, 2)
    for bad in (0, -5, 100.5, "x"):
        with pytest.raises(LangarithError, match=r"top_k must be a number in \(0, 100\]"):
            ties.resolve_params({"top_k": bad})
    assert ties.resolve_params({}) == {"lam": 1.0, "top_k": 20.0}
    with pytest.raises(LangarithError, match=r"no parameter\(s\) \['top_k'\]"):
        linear.resolve_params({"top_k": 20})


def test_keep_count_rounds_up() -> None:
    assert keep_count(5, 20) == 1  # 5 · 0.2 = 1, not 1.0000000000000002 → 2
    assert keep_count(5, 40) == 2
    assert keep_count(3, 40) == 2  # 1.2 → 2
    assert keep_count(10, 0.01) == 1  # at least one entry
    assert keep_count(7, 100) == 7


# --- linear and task arithmetic on the tiny model -----------------------------------


def test_linear_merge_matches_hand_sum_on_every_tensor(bank, tmp_path) -> None:
    lam = 0.3
    out = merge_adapters("linear", [bank["en"], bank["es"]], [lam, 1 - lam], out_dir=tmp_path / "m")
    merged = read_adapter(out)
    init, en, es = _states(bank, "init", "en", "es")
    names = sorted(en)
    assert sorted(merged.state) == names
    inv = _invertible(names)
    assert len(inv) == 8, names  # F and G, two linear layers each, weight and bias
    assert len(names) == 16
    for name in names:
        expected = lam * en[name] + (1 - lam) * es[name]
        torch.testing.assert_close(merged.state[name], expected, rtol=0, atol=1e-7)
        # with the shared init this is the paper's eq. 4
        la = init[name] + lam * (en[name] - init[name]) + (1 - lam) * (es[name] - init[name])
        torch.testing.assert_close(merged.state[name], la, rtol=0, atol=1e-6)
        assert not torch.equal(merged.state[name], en[name])
    assert merged.name == "merged"


def test_task_arithmetic_negation_and_three_way(bank, tmp_path) -> None:
    init, en, es, fr = _states(bank, "init", "en", "es", "fr")
    negated = merge_states("task-arithmetic", [en], [-1.0], init)
    fr_dir = tmp_path / "fr"  # a copy of fr that records its init (methods over τ need it)
    shutil.copytree(bank["fr"], fr_dir)
    (fr_dir / "metadata.json").write_text(json.dumps({"init_sha256": weights_sha256(bank["init"])}))
    three = merge_adapters(
        "task-arithmetic",
        [bank["en"], bank["es"], fr_dir],
        [1.0, 0.5, -0.25],
        init_dir=bank["init"],
        out_dir=tmp_path / "three",
    )
    three_state = read_adapter(three).state
    for name in init:
        tau = {k: s[name] - init[name] for k, s in (("en", en), ("es", es), ("fr", fr))}
        torch.testing.assert_close(negated[name], init[name] - tau["en"], rtol=0, atol=1e-6)
        expected = init[name] + tau["en"] + 0.5 * tau["es"] - 0.25 * tau["fr"]
        torch.testing.assert_close(three_state[name], expected, rtol=0, atol=1e-6)
    assert _invertible(list(three_state))


def test_degenerate_weights_are_exact(bank) -> None:
    init, en, es = _states(bank, "init", "en", "es")

    def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return sorted(a) == sorted(b) and all(torch.equal(a[n], b[n]) for n in a)

    assert same(merge_states("linear", [en, es], [1.0, 0.0]), en)
    assert same(merge_states("linear", [en, es], [0.0, 1.0]), es)
    assert same(merge_states("linear", [en], [1.0]), en)
    assert same(merge_states("task-arithmetic", [en, es], [0.0, 0.0], init), init)
    assert same(merge_states("task-arithmetic", [en], [1.0], init), en)
    assert same(merge_states("task-arithmetic", [en, es], [1.0, 0.0], init), en)
    assert same(merge_states("ties", [en], [1.0], init, top_k=100, lam=1.0), en)
    assert same(merge_states("ties", [en, es], [1.0, 1.0], init, lam=0.0), init)


# --- TIES on a hand-worked example --------------------------------------------------

# Two parameters, "a" (2 entries) and "b" (3 entries), θ_init = 1 everywhere, so the
# language vectors τ are the values below. top_k = 40 % of D = 5 entries → keep 2 per
# vector, chosen over a and b together (global threshold):
#
#          a0     a1     b0     b1     b2      kept (|τ| ≥ threshold)
#   τ1    0.5   -0.1   0.05   -0.4    0.2     a0, b1       (threshold 0.4)
#   τ2   -0.3    0.2   0.6     0.1   -0.05    b0, a0       (threshold 0.3)
#   τ3    0.7    0.0   0.1    -0.2    0.25    a0, b2       (threshold 0.25)
#
# elected sign (sign of the sum of kept values):
#   a0: 0.5 - 0.3 + 0.7 = 0.9 → +     a1: nothing kept → 0
#   b0: 0.6 → +    b1: -0.4 → -    b2: 0.25 → +
# disjoint mean (kept, non-zero, same sign as elected):
#   a0: (0.5 + 0.7) / 2 = 0.6   (τ2's -0.3 disagrees and is dropped)
#   a1: 0    b0: 0.6    b1: -0.4    b2: 0.25
# θ = θ_init + λ τ_merged with λ = 1.5 → a = [1.9, 1.0], b = [1.9, 0.4, 1.375]
#
# Per-tensor trimming would instead keep ⌈0.4·2⌉ = 1 entry of a and ⌈0.4·3⌉ = 2 of b:
#   τ1 b keeps b1, b2;  τ2 b keeps b0, b1 (0.1);  τ3 b keeps b2 (0.25), b1 (-0.2)
#   b1: -0.4 + 0.1 - 0.2 = -0.5 → -, mean(-0.4, -0.2) = -0.3
#   b2: 0.2 + 0.25 → +, mean(0.2, 0.25) = 0.225
# so global and per-tensor TIES differ in b1 and b2.
TIES_TAUS = [
    {"a": [0.5, -0.1], "b": [0.05, -0.4, 0.2]},
    {"a": [-0.3, 0.2], "b": [0.6, 0.1, -0.05]},
    {"a": [0.7, 0.0], "b": [0.1, -0.2, 0.25]},
]


def _ties_inputs() -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    init = {"a": torch.ones(2, dtype=torch.float64), "b": torch.ones(3, dtype=torch.float64)}
    thetas = [
        {k: init[k] + torch.tensor(v, dtype=torch.float64) for k, v in t.items()} for t in TIES_TAUS
    ]
    return init, thetas


def test_ties_hand_worked_global_threshold() -> None:
    init, thetas = _ties_inputs()
    merged = merge_states("ties", thetas, None, init, top_k=40, lam=1.5)
    torch.testing.assert_close(merged["a"], torch.tensor([1.9, 1.0], dtype=torch.float64))
    torch.testing.assert_close(merged["b"], torch.tensor([1.9, 0.4, 1.375], dtype=torch.float64))


def test_ties_per_tensor_trim_differs_from_global() -> None:
    init, thetas = _ties_inputs()
    ties = get_method("ties").merge_tensor
    per_tensor_b = ties(init["b"], [t["b"] for t in thetas], [1.0] * 3, lam=1.0, top_k=40)
    torch.testing.assert_close(
        per_tensor_b - init["b"], torch.tensor([0.6, -0.3, 0.225], dtype=torch.float64)
    )
    global_b = merge_states("ties", thetas, None, init, top_k=40)["b"]
    torch.testing.assert_close(
        global_b - init["b"], torch.tensor([0.6, -0.4, 0.25], dtype=torch.float64)
    )


def test_ties_weights_scale_each_vector_before_election() -> None:
    # weights (2, 1, 1): kept entries as above, τ1's doubled: a0 = 1.0, b1 = -0.8.
    # a0: 1.0 - 0.3 + 0.7 → +, mean(1.0, 0.7) = 0.85; b1: -0.8. With weights (-1, 1, 1)
    # τ1 flips: a0: -0.5 - 0.3 + 0.7 = -0.1 → -, mean(-0.5, -0.3) = -0.4; b1: +0.4.
    init, thetas = _ties_inputs()
    doubled = merge_states("ties", thetas, [2.0, 1.0, 1.0], init, top_k=40)
    torch.testing.assert_close(doubled["a"] - 1, torch.tensor([0.85, 0.0], dtype=torch.float64))
    torch.testing.assert_close(
        doubled["b"] - 1, torch.tensor([0.6, -0.8, 0.25], dtype=torch.float64)
    )
    flipped = merge_states("ties", thetas, [-1.0, 1.0, 1.0], init, top_k=40)
    torch.testing.assert_close(flipped["a"] - 1, torch.tensor([-0.4, 0.0], dtype=torch.float64))
    torch.testing.assert_close(
        flipped["b"] - 1, torch.tensor([0.6, 0.4, 0.25], dtype=torch.float64)
    )


def test_ties_keeps_every_entry_tied_at_the_threshold() -> None:
    # top_k 25 of 4 entries → keep 1, but |0.3| and |-0.3| tie: both are kept.
    init = {"w": torch.zeros(4, dtype=torch.float64)}
    theta = {"w": torch.tensor([0.3, -0.3, 0.1, 0.2], dtype=torch.float64)}
    merged = merge_states("ties", [theta], None, init, top_k=25)
    assert merged["w"].tolist() == [0.3, -0.3, 0.0, 0.0]


def test_ties_on_adapters_keeps_top_fraction(bank, tmp_path) -> None:
    out = merge_adapters(
        "ties", [bank["en"]], init_dir=bank["init"], out_dir=tmp_path / "t", top_k=20
    )
    init, en = _states(bank, "init", "en")
    merged = read_adapter(out).state
    changed = sum(int((merged[n] != init[n]).sum()) for n in init)
    total = sum(t.numel() for t in init.values())
    assert changed == keep_count(total, 20)  # random noise: no ties at the threshold
    assert any((merged[n] != init[n]).any() for n in _invertible(list(init)))


# --- inputs are checked --------------------------------------------------------------


# --- DARE --------------------------------------------------------------------------


def test_dare_expectation_over_seeds_is_the_undropped_vector() -> None:
    """Drop with p, rescale by 1/(1 − p): the mean over many seeds tends to τ itself."""
    gen = torch.Generator().manual_seed(0)
    init = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    theta = init + torch.randn(8, 6, generator=gen, dtype=torch.float64)
    tau = theta - init
    for p in (0.3, 0.9):
        n = 4000
        total = torch.zeros_like(tau)
        kept = 0.0
        for seed in range(n):
            merged = dare(init, [theta], [1.0], name="w", drop_rate=p, seed=seed)
            total += merged - init
            kept += float(((merged - init) != 0).double().mean())
        mean = total / n
        # per entry: variance τ²·p/(1 − p) / n, so 5 standard deviations at most
        bound = 5 * tau.abs() * (p / (1 - p) / n) ** 0.5
        assert bool(((mean - tau).abs() <= bound).all()), p
        assert abs(kept / n - (1 - p)) < 0.01
        one = dare(init, [theta], [1.0], name="w", drop_rate=p, seed=1) - init
        survivors = one != 0
        torch.testing.assert_close(one[survivors], tau[survivors] / (1 - p))


def test_dare_p0_is_task_arithmetic_and_dare_ties_p0_is_untrimmed_ties(bank) -> None:
    init, en, es = _states(bank, "init", "en", "es")
    for seed in (0, 5):
        got = merge_states("dare", [en, es], [0.7, 0.3], init, drop_rate=0, seed=seed)
        expected = merge_states("task-arithmetic", [en, es], [0.7, 0.3], init)
        assert all(torch.equal(got[n], expected[n]) for n in expected)
        got = merge_states("dare_ties", [en, es], None, init, drop_rate=0, seed=seed, lam=0.8)
        expected = merge_states("ties", [en, es], None, init, top_k=100, lam=0.8)
        assert all(torch.equal(got[n], expected[n]) for n in expected)


def test_dare_seed_reproduces_and_differs(bank) -> None:
    init, en, es = _states(bank, "init", "en", "es")
    for method, weights in (("dare", [0.5, 0.5]), ("dare_ties", None)):
        a = merge_states(method, [en, es], weights, init, drop_rate=0.5, seed=1)
        again = merge_states(method, [en, es], weights, init, drop_rate=0.5, seed=1)
        other = merge_states(method, [en, es], weights, init, drop_rate=0.5, seed=2)
        assert all(torch.equal(a[n], again[n]) for n in a)
        assert any(not torch.equal(a[n], other[n]) for n in a)
    # every parameter has its own mask, also among parameters of the same shape
    mask_a = dare_mask((64,), 0.5, 1, 0, "layer.0.w")
    assert not torch.equal(mask_a, dare_mask((64,), 0.5, 1, 0, "layer.1.w"))
    assert not torch.equal(mask_a, dare_mask((64,), 0.5, 1, 1, "layer.0.w"))
    assert torch.equal(mask_a, dare_mask((64,), 0.5, 1, 0, "layer.0.w"))


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan")])
def test_dare_refuses_a_drop_rate_outside_0_1(bank, bad) -> None:
    init, en = _states(bank, "init", "en")
    for method in ("dare", "dare_ties"):
        with pytest.raises(LangarithError, match=r"drop_rate must be a number in \[0, 1\)"):
            merge_states(method, [en], [1.0], init, drop_rate=bad)
    with pytest.raises(LangarithError, match=r"drop_rate must be in \[0, 1\)"):
        dare(init[sorted(init)[0]], [en[sorted(en)[0]]], [1.0], name="x", drop_rate=bad)


def test_dare_in_place_equals_the_pure_function_in_float32(bank) -> None:
    """The λ engine's float32 fill uses the same masks as the float64 merge."""
    vectors = LanguageVectorSet.from_dirs(bank["init"], [bank["en"], bank["es"]])
    init, en, es = _states(bank, "init", "en", "es")
    for lam in (0.0, 0.4, 1.0):
        state = vectors.state_for([lam, 1 - lam], "dare", drop_rate=0.6, seed=4)
        expected = merge_states("dare", [en, es], [lam, 1 - lam], init, drop_rate=0.6, seed=4)
        for n in expected:
            torch.testing.assert_close(state[n], expected[n], rtol=0, atol=1e-6)
    for lam in (0.5, 1.5, 0.5):  # cached τ_merged is reused, and refreshed for a new seed
        for seed in (4, 9):
            state = vectors.state_for(None, "dare_ties", lam=lam, drop_rate=0.6, seed=seed)
            expected = merge_states(
                "dare_ties", [en, es], None, init, lam=lam, drop_rate=0.6, seed=seed
            )
            for n in expected:
                torch.testing.assert_close(state[n], expected[n], rtol=0, atol=1e-6)


def test_refuses_mismatched_adapters(bank, tmp_path) -> None:
    model = _bare_model()
    model.add_adapter(
        "rf4", config=adapters.SeqBnInvConfig(reduction_factor=4, non_linearity="gelu_new")
    )
    model.save_adapter(str(tmp_path / "rf4"), "rf4")
    with pytest.raises(LangarithError) as err:
        merge_adapters("linear", [bank["en"], tmp_path / "rf4"], [0.5, 0.5], out_dir=tmp_path / "x")
    message = str(err.value)
    assert "reduction_factor: 2 vs 4" in message
    assert "shape mismatch" in message and "(16, 32) vs (8, 32)" in message
    assert not (tmp_path / "x").exists()

    big = transformers.BertModel(transformers.BertConfig(**{**TINY_BERT, "hidden_size": 64}))
    adapters.init(big)
    big.add_adapter("big", config=_adapter_config())
    big.save_adapter(str(tmp_path / "big"), "big")
    with pytest.raises(LangarithError, match="hidden_size: 32 vs 64"):
        merge_adapters(
            "task-arithmetic",
            [bank["en"], tmp_path / "big"],
            [1, 1],
            init_dir=bank["init"],
            out_dir=tmp_path / "x",
        )


def test_refuses_missing_init_and_init_mismatch(bank, tmp_path) -> None:
    with pytest.raises(LangarithError, match="needs the shared init adapter"):
        merge_adapters("ties", [bank["en"], bank["es"]], out_dir=tmp_path / "x")
    # an init with other weights has another checksum than the one en/es record
    state = read_adapter(bank["init"]).state
    state = {k: v + 1 for k, v in state.items()}
    write_adapter(bank["init"], state, tmp_path / "shifted_init", weights_format="bin")
    with pytest.raises(LangarithError, match="trained from a θ_init with sha256"):
        merge_adapters(
            "task-arithmetic",
            [bank["en"], bank["es"]],
            [0.5, 0.5],
            init_dir=tmp_path / "shifted_init",
            out_dir=tmp_path / "x",
        )


# --- merged folders load with the adapters library -----------------------------------


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_merged_folder_loads_onto_backbone(bank, tmp_path, fmt) -> None:
    out = merge_adapters(
        "task-arithmetic",
        [bank["en"], bank["es"]],
        [0.6, 0.4],
        init_dir=bank["init"],
        out_dir=tmp_path / "m",
        name="la",
        weights_format=fmt,
    )
    expected = read_adapter(out).state
    model = _bare_model()
    if fmt == "bin":
        assert model.load_adapter(str(out)) == "la"  # the library's default loader
    else:
        assert model.load_adapter(str(out), use_safetensors=True) == "la"
    live = live_adapter_parameters(model, "la")
    assert sorted(live) == sorted(expected)
    for name, param in live.items():
        assert torch.equal(param.detach(), expected[name]), name
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["method"] == "task-arithmetic" and meta["weights"] == [0.6, 0.4]
    assert meta["params"] == {}
    assert [i["sha256"] for i in meta["inputs"]] == [
        weights_sha256(bank["en"]),
        weights_sha256(bank["es"]),
    ]
    assert meta["init_sha256"] == weights_sha256(bank["init"]) and meta["init_verified"]


# --- in-place engine -------------------------------------------------------------------


def test_engine_fills_live_parameters_in_place(bank) -> None:
    vectors = LanguageVectorSet.from_dirs(bank["init"], {"en": bank["en"], "es": bank["es"]})
    model = _bare_model("BertForMaskedLM")  # has the "bert." prefix the files lack
    load_adapter_into(model, bank["init"], load_as="lang", set_active=True)
    params = live_adapter_parameters(model, "lang", vectors.names)
    assert _invertible(list(params))
    before = {n: (id(p), p.data_ptr()) for n, p in params.items()}
    init, en, es = _states(bank, "init", "en", "es")

    vectors.fill_linear(params, [0.3, 0.7])
    state = vectors.state_for([0.3, 0.7])
    reference = merge_states("task-arithmetic", [en, es], [0.3, 0.7], init)
    for name, param in params.items():
        assert torch.equal(param.detach(), state[name])
        torch.testing.assert_close(param.detach(), reference[name], rtol=0, atol=1e-6)
        by_hand = init[name] + 0.3 * (en[name] - init[name]) + 0.7 * (es[name] - init[name])
        torch.testing.assert_close(param.detach(), by_hand, rtol=0, atol=1e-6)
    live_now = dict(model.named_parameters())
    assert {n: (id(p), p.data_ptr()) for n, p in params.items()} == before
    assert all(any(p is q for q in live_now.values()) for p in params.values())

    vectors.fill_linear(params, [1.0, 0.0])  # λ = 1 end of the grid: θ_en bit for bit
    assert all(torch.equal(params[n].detach(), en[n]) for n in params)
    vectors.fill_linear(params, [0.0, 0.0])
    assert all(torch.equal(params[n].detach(), init[n]) for n in params)
    vectors.fill("linear", [0.0, 1.0], out=params)
    assert all(torch.equal(params[n].detach(), es[n]) for n in params)

    vectors.fill("ties", None, out=params, lam=1.3, top_k=20)
    ties_ref = merge_states("ties", [en, es], None, init, lam=1.3, top_k=20)
    by_hand = _ties_by_hand(init, [en, es], lam=1.3, top_k=20)
    for name, param in params.items():
        torch.testing.assert_close(param.detach(), ties_ref[name], rtol=0, atol=1e-6)
        torch.testing.assert_close(param.detach(), by_hand[name], rtol=0, atol=1e-6)
        assert torch.equal(param.detach(), vectors.state_for(None, "ties", lam=1.3, top_k=20)[name])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(logits).all()


def _ties_by_hand(init, thetas, *, lam: float, top_k: float) -> dict[str, torch.Tensor]:
    """TIES written out in float64 from its definition, without the package's helpers.

    Per vector: keep the ⌈D·top_k/100⌉ largest |τ| over all its D entries (ties at the
    threshold kept); per entry: the sign of the kept values' sum, the mean of the kept
    values of that sign; θ_init + λ·mean.
    """
    names = sorted(init)
    taus = [{n: theta[n].double() - init[n].double() for n in names} for theta in thetas]
    kept = []
    for tau in taus:
        flat = torch.cat([tau[n].reshape(-1).abs() for n in names])
        count = -(-flat.numel() * int(top_k) // 100)  # ceil for an integer top_k
        threshold = flat.sort(descending=True).values[count - 1]
        kept.append({n: torch.where(tau[n].abs() >= threshold, tau[n], 0.0) for n in names})
    merged = {}
    for n in names:
        stack = torch.stack([k[n] for k in kept])
        sign = torch.sign(stack.sum(dim=0))
        agree = (stack != 0) & (torch.sign(stack) == sign)
        mean = (stack * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1)
        merged[n] = (init[n].double() + lam * mean).to(init[n].dtype)
    return merged


def test_ties_in_place_follows_lambda_and_top_k_in_any_order(bank) -> None:
    """One set filled over a TIES grid (top-k 20, then 80, then 20 again): each fill is
    TIES by hand for its own λ and top-k, whatever the set remembers between fills."""
    vectors = LanguageVectorSet.from_dirs(bank["init"], {"en": bank["en"], "es": bank["es"]})
    init, en, es = _states(bank, "init", "en", "es")
    out = {n: torch.empty_like(vectors.thetas[0][n]) for n in vectors.names}
    filled = {}
    for top_k, lam in [(20, 0.8), (20, 1.8), (80, 0.8), (80, 1.3), (20, 1.3)]:
        vectors.fill("ties", None, out=out, lam=lam, top_k=top_k)
        filled[(top_k, lam)] = {n: t.clone() for n, t in out.items()}
        by_hand = _ties_by_hand(init, [en, es], lam=lam, top_k=top_k)
        for n in vectors.names:
            torch.testing.assert_close(out[n], by_hand[n], rtol=0, atol=1e-6)
    # top-k and λ both change the weights (so a mix-up cannot pass unnoticed)
    name = vectors.names[0]
    assert not torch.allclose(filled[(20, 0.8)][name], filled[(80, 0.8)][name])
    assert not torch.allclose(filled[(20, 0.8)][name], filled[(20, 1.8)][name])


def _written(vectors, method, weights, params) -> dict[str, torch.Tensor]:
    """What ``method.writer`` writes for every name, into fresh buffers."""
    write = method.writer(vectors, weights, params)
    merged = {n: torch.empty_like(vectors.thetas[0][n]) for n in vectors.names}
    for name, buf in merged.items():
        write(name, buf)
    return merged


def test_every_in_place_form_equals_the_per_tensor_form(bank) -> None:
    """A method's in-place form (the λ engine's) writes what its merge_tensor computes."""
    vectors = LanguageVectorSet.from_dirs(bank["init"], [bank["en"], bank["es"]])
    cases = {
        "linear": [([0.3, 0.7], {}), ([1.0, 0.0], {})],
        "task-arithmetic": [([0.5, -0.25], {}), ([0.0, 0.0], {})],
        "ties": [(None, {"lam": 1.3, "top_k": 20}), ([1.0, 0.5], {"lam": 0.8, "top_k": 80})],
        "dare": [([0.3, 0.7], {"drop_rate": 0.5, "seed": 3}), ([1.0, -0.5], {})],
        "dare_ties": [(None, {"lam": 1.2, "drop_rate": 0.3}), ([1.0, 0.5], {"seed": 7})],
        "top-k": [([1.0, 0.5], {"keep": 30}), ([1.0, -0.5], {"keep": 90, "dense": 1})],
        "bottom-k": [([1.0, 0.5], {"keep": 70}), ([1.0, 0.5], {"keep": 100, "dense": 1})],
    }
    assert set(cases) == set(MERGE_METHODS)
    for name, method in MERGE_METHODS.items():
        assert method.in_place is not None, name
        per_tensor = dataclasses.replace(method, in_place=None)
        for weights, params in cases[name]:
            resolved = method.resolve_params(params)
            weights = method.resolve_weights(weights, len(vectors))
            in_place = _written(vectors, method, weights, resolved)
            per_name = _written(vectors, per_tensor, weights, resolved)
            for n in vectors.names:
                torch.testing.assert_close(in_place[n], per_name[n], rtol=0, atol=1e-6)


def _halfway(init, thetas, weights, **_):
    """θ_init + ½ Σ wᵢ τᵢ: a toy merge method for the registry test."""
    out = init.clone()
    for weight, theta in zip(weights, thetas, strict=True):
        out.add_(theta - init, alpha=0.5 * weight)
    return out


@pytest.fixture
def halfway_method():
    """Registers a toy method (one function + one registry line) for one test."""
    MERGE_METHODS["halfway"] = MergeMethod(
        "halfway", "toy", "", needs_init=True, merge_tensor=_halfway, default_weights=None
    )
    yield "halfway"
    del MERGE_METHODS["halfway"]


def test_a_registered_method_is_merged_in_place(bank, halfway_method) -> None:
    vectors = LanguageVectorSet.from_dirs(bank["init"], {"en": bank["en"], "es": bank["es"]})
    init, en, es = _states(bank, "init", "en", "es")
    state = vectors.state_for([1.0, 1.0], halfway_method)
    expected = merge_states("task-arithmetic", [en, es], [0.5, 0.5], init)
    for name in vectors.names:
        torch.testing.assert_close(state[name], expected[name], rtol=0, atol=1e-6)
        by_hand = init[name] + 0.5 * (en[name] - init[name]) + 0.5 * (es[name] - init[name])
        torch.testing.assert_close(state[name], by_hand, rtol=0, atol=1e-6)
    with pytest.raises(LangarithError, match="needs explicit weights"):
        vectors.state_for(None, halfway_method)


def test_engine_refuses_wrong_targets(bank) -> None:
    vectors = LanguageVectorSet.from_dirs(bank["init"], [bank["en"]])
    with pytest.raises(LangarithError, match="missing"):
        vectors.fill_linear({}, [1.0])
    with pytest.raises(LangarithError, match="must sum to 1"):
        vectors.fill("linear", [0.5], out=vectors.state_for([1.0]))
    model = _bare_model()
    with pytest.raises(LangarithError, match="no parameters of adapter 'lang'"):
        live_adapter_parameters(model, "lang")


# --- command line -----------------------------------------------------------------------


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="langarith")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_happy_paths(bank, tmp_path, capsys) -> None:
    out = tmp_path / "cli_linear"
    assert (
        _run_cli(
            [
                "merge",
                "linear",
                str(bank["en"]),
                str(bank["es"]),
                "--weights",
                "0.25,0.75",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    expected = merge_states("linear", _states(bank, "en", "es"), [0.25, 0.75])
    assert all(torch.equal(read_adapter(out).state[n], t) for n, t in expected.items())

    out = tmp_path / "cli_ties"
    argv = [
        "merge",
        "ties",
        str(bank["en"]),
        str(bank["es"]),
        "--init",
        str(bank["init"]),
        "--lambda",
        "1.2",
        "--top-k",
        "80",
        "--out",
        str(out),
    ]
    assert _run_cli(argv) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["params"] == {"lam": 1.2, "top_k": 80.0} and meta["weights"] == [1.0, 1.0]

    out = tmp_path / "cli_neg"
    argv = [
        "merge",
        "task-arithmetic",
        str(bank["en"]),
        "--weights=-1",
        "--init",
        str(bank["init"]),
        "--out",
        str(out),
        "--format",
        "bin",
    ]
    assert _run_cli(argv) == 0
    assert (out / "pytorch_adapter.bin").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["linear", "{en}", "{es}", "--weights", "0.5,0.3,0.2"], r"3 weight\(s\).*2 adapter\(s\)"),
        (["linear", "{en}", "{es}", "--weights", "0.5,abc"], "comma-separated numbers"),
        (["linear", "{en}", "{es}", "--weights", "0.5,0.6"], "must sum to 1"),
        (["task-arithmetic", "{en}", "{es}", "--weights", "1,1"], "needs the shared init"),
        (
            ["ties", "{en}", "--init", "{init}", "--top-k", "0"],
            r"top_k must be a number in \(0, 100\]",
        ),
        (["ties", "{en}", "--init", "{init}", "--top-k", "150"], r"got 150"),
        (["linear", "{en}", "--top-k", "20"], r"--top-k is a parameter of \['ties'\] only"),
        (
            ["dare", "{en}", "--init", "{init}", "--weights", "1", "--drop-rate", "1"],
            r"drop_rate must be a number in \[0, 1\)",
        ),
        (["dare", "{en}", "--init", "{init}", "--weights", "1", "--seed", "1.5"], "integer"),
        (["lin", "{en}"], r"Unknown merge method 'lin'\. Must be one of"),
        (["linear", "{missing}"], "does not exist"),
    ],
)
def test_cli_errors(bank, tmp_path, extra, message) -> None:
    fill = {k: str(v) for k, v in bank.items()} | {"missing": str(tmp_path / "nope")}
    argv = ["merge", *(e.format(**fill) for e in extra), "--out", str(tmp_path / "o")]
    with pytest.raises(LangarithError, match=message):
        _run_cli(argv)
    assert not (tmp_path / "o").exists()


def test_top_level_cli_prints_error_without_traceback(bank, tmp_path, capsys) -> None:
    from langarith.cli import main

    code = main(
        ["merge", "linear", str(bank["en"]), "--weights", "0.5", "--out", str(tmp_path / "o")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "must sum to 1" in err and "Traceback" not in err


def test_cli_dare_writes_the_seeded_merge(bank, tmp_path, capsys) -> None:
    out = tmp_path / "cli_dare"
    argv = ["merge", "dare", str(bank["en"]), str(bank["es"]), "--init", str(bank["init"])]
    argv += ["--weights", "0.6,0.4", "--drop-rate", "0.5", "--seed", "3", "--out", str(out)]
    assert _run_cli(argv) == 0
    init, en, es = _states(bank, "init", "en", "es")
    expected = merge_states("dare", [en, es], [0.6, 0.4], init, drop_rate=0.5, seed=3)
    written = read_adapter(out).state
    assert all(torch.equal(written[n], expected[n]) for n in expected)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["method"] == "dare" and meta["params"] == {"drop_rate": 0.5, "seed": 3.0}
