"""Task arithmetic with full fine-tuning (issue 16): the merge, λ choice, sparsity, engine.

The arithmetic is checked on hand-made states; the training, the folders and the
scoring job on a tiny XLM-R-shaped demo backbone fine-tuned for a few steps (the module
fixture, ~20 s).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from tiny import demo_spec

from langarith import LangarithError
from langarith.backbone import build_demo_backbone
from langarith.data import prepare_demo_dataset, read_split
from langarith.evaluate.score_files import read_scores
from langarith.evaluate.tasks import encode_split
from langarith.fullft import evaluate as fullft_evaluate
from langarith.fullft.evaluate import (
    FullFtJob,
    choose_lambdas,
    run_fullft_job,
)
from langarith.fullft.plan import fullft_job, fullft_outputs, fullft_targets
from langarith.fullft.train import finetune_language, finetune_task, load_task_classifier
from langarith.fullft.vectors import (
    VARIANTS,
    check_vector,
    compose,
    get_variant,
    read_model_folder,
    theta0_checksum,
    write_model_folder,
)
from langarith.merge import LanguageVectorSet, get_method
from langarith.merge.magnitude import magnitude_thresholds
from langarith.train.tokens import tokenize_corpus

LANGS = ("en", "de", "bg")
LAM = 0.3


# --------------------------------------------------------------------------- hand-made states


def _states(seed: int = 0):
    """θ0 with two tensors; θ_T (with a head), θ_src and θ_tgt near it."""
    g = torch.Generator().manual_seed(seed)
    theta0 = {
        "emb.weight": torch.randn(5, 3, generator=g),
        "layer.bias": torch.randn(4, generator=g),
    }

    def near() -> dict[str, torch.Tensor]:
        return {n: t + 0.1 * torch.randn(t.shape, generator=g) for n, t in theta0.items()}

    task = {**near(), "classifier.weight": torch.randn(2, 3, generator=g)}
    return theta0, task, near(), near()


def test_model_variant_equals_theta_T() -> None:
    theta0, task, src, tgt = _states()
    merged = compose(theta0, task, src, tgt, VARIANTS["model"].weights(LAM))
    assert set(merged) == set(task)
    for name in task:
        torch.testing.assert_close(merged[name], task[name], rtol=0, atol=1e-6)


def test_src_tgt_worked_by_hand() -> None:
    """θ' = θ0 + τ^T + λ(τ^src + τ^tgt), in float64 entry by entry."""
    theta0, task, src, tgt = _states(1)
    merged = compose(theta0, task, src, tgt, VARIANTS["src-tgt"].weights(LAM))
    for name in theta0:
        t0, tt, ts, tg = (x[name].double() for x in (theta0, task, src, tgt))
        expected = t0 + (tt - t0) + LAM * ((ts - t0) + (tg - t0))
        torch.testing.assert_close(merged[name].double(), expected, rtol=0, atol=1e-6)
    one = float(theta0["layer.bias"][0])
    by_hand = one + (float(task["layer.bias"][0]) - one)
    by_hand += LAM * (float(src["layer.bias"][0]) - one + float(tgt["layer.bias"][0]) - one)
    assert math.isclose(float(merged["layer.bias"][0]), by_hand, abs_tol=1e-6)


def test_neg_src_tgt_with_identical_vectors_gives_theta_T() -> None:
    theta0, task, src, _ = _states(2)
    merged = compose(theta0, task, src, src, VARIANTS["neg-src-tgt"].weights(0.8))
    for name in task:
        torch.testing.assert_close(merged[name], task[name], rtol=0, atol=1e-6)


def test_head_comes_from_theta_T() -> None:
    theta0, task, src, tgt = _states(3)
    for variant in VARIANTS.values():
        merged = compose(theta0, task, src, tgt, variant.weights(0.5))
        assert torch.equal(merged["classifier.weight"], task["classifier.weight"])


def test_every_variant_and_its_weights() -> None:
    assert list(VARIANTS) == ["model", "src", "tgt", "src-tgt", "neg-src-tgt"]
    assert VARIANTS["neg-src-tgt"].weights(0.4) == (1.0, -0.4, 0.4)
    assert VARIANTS["src"].scenario == "ta-src" and not VARIANTS["model"].searched
    with pytest.raises(LangarithError, match="Unknown task-arithmetic variant 'both'"):
        get_variant("both")


# --------------------------------------------------------------------------- λ choice


def test_lambda_maximises_the_mean_over_targets() -> None:
    """Each target's own best (0.1 and 0.9) differs from the best mean (0.5)."""
    curves = {
        "de": {0.1: 60.0, 0.5: 58.0, 0.9: 40.0},
        "ru": {0.1: 30.0, 0.5: 50.0, 0.9: 51.0},
    }
    assert choose_lambdas(curves) == {"de": 0.5, "ru": 0.5}
    assert choose_lambdas(curves, per_target=True) == {"de": 0.1, "ru": 0.9}
    with pytest.raises(LangarithError, match="different λ grids"):
        choose_lambdas({"de": {0.1: 1.0}, "ru": {0.2: 1.0}})


# --------------------------------------------------------------------------- sparsity


def _held(seed: int = 4) -> LanguageVectorSet:
    theta0, task, src, tgt = _states(seed)
    names = sorted(theta0)
    return LanguageVectorSet(
        theta0, [{n: s[n] for n in names} for s in (task, src, tgt)], labels=("task", "src", "tgt")
    )


def test_top_k_at_100_percent_is_the_dense_merge() -> None:
    held = _held()
    weights = [1.0, 0.0, 0.6]
    dense = held.state_for(weights, "task-arithmetic")
    top = held.state_for(weights, "top-k", keep=100.0, dense=1)
    for name in dense:
        torch.testing.assert_close(top[name], dense[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("keep", [5.0, 10.0, 37.5, 50.0, 90.0])
def test_top_k_and_bottom_k_split_a_vector_exactly(keep: float) -> None:
    """mask_top(k)·τ + mask_bottom(100 − k)·τ = τ, and the masks do not overlap."""
    held = _held(5)
    weights = [0.0, 0.0, 1.0]  # τ^tgt alone, on θ0
    top = held.state_for(weights, "top-k", keep=keep)
    bottom = held.state_for(weights, "bottom-k", keep=100.0 - keep)
    assert held.init is not None
    n_top = 0
    for name in held.names:
        tau_top = top[name] - held.init[name]
        tau_bottom = bottom[name] - held.init[name]
        tau = held.thetas[2][name] - held.init[name]
        assert not ((tau_top != 0) & (tau_bottom != 0)).any()
        torch.testing.assert_close(tau_top + tau_bottom, tau, rtol=0, atol=1e-6)
        n_top += int((tau_top != 0).sum())
    total = sum(held.thetas[2][n].numel() for n in held.names)
    assert n_top == max(1, math.ceil(total * keep / 100))  # ranked over the whole vector


def test_sparsity_keeps_the_task_vector_dense() -> None:
    held = _held(6)
    assert held.init is not None
    thresholds = magnitude_thresholds(held.init, held.thetas, keep=10.0, bottom=False, dense=1)
    assert thresholds[0] is None and thresholds[1] is not None
    merged = held.state_for([1.0, 0.0, 0.0], "top-k", keep=10.0, dense=1)
    for name in held.names:
        torch.testing.assert_close(merged[name], held.thetas[0][name], rtol=0, atol=1e-6)


def test_bottom_k_is_registered_beside_ties() -> None:
    assert get_method("bottom-k").needs_init and get_method("top-k").param_names == [
        "keep",
        "dense",
    ]


# --------------------------------------------------------------------------- tiny real models


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny XLM-R-shaped backbone, MLM models of en/es/de/bg and an en NLI model."""
    root = tmp_path_factory.mktemp("fullft")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster on a shared 2-core machine
    wiki = {"wikipedia_train_docs": 20, "validation_docs": 4}
    nli = {"task_train_rows": 60, "task_validation_rows": 24, "task_test_rows": 24}
    corpora = {}
    for lang in LANGS:
        corpora[lang] = prepare_demo_dataset(
            "wikipedia", lang, root / "resources/data/wikipedia" / lang, options=wiki
        )
        prepare_demo_dataset("xnli", lang, root / "resources/data/xnli" / lang, options=nli)
    backbone = build_demo_backbone(
        list(corpora.values()),
        root / "resources/backbones/tiny",
        arch="xlmr",
        spec=demo_spec(pretrain_steps=4),
        seed=0,
    )
    mlm = {"max_steps": 3, "batch_size": 4, "block_size": 32, "eval_every": 0, "lr": 1e-3}
    lang_dirs = {}
    for lang in LANGS:
        tokens = tokenize_corpus(backbone, corpora[lang], root / "results/tokens/tiny" / lang)
        lang_dirs[lang] = finetune_language(
            backbone,
            corpora[lang],
            tokens,
            root / f"results/fullft/tiny/lang/{lang}/seed1",
            seed=1,
            hparams=mlm,
        )
    task_hp = {"max_steps": 6, "batch_size": 8, "lr": 1e-3, "max_length": 64, "eval_every": 3}
    task_dir = finetune_task(
        backbone,
        root / "resources/data/xnli/en",
        root / "results/fullft/tiny/task/nli/seed1",
        kind="nli",
        seed=1,
        hparams=task_hp,
    )
    yield {"root": root, "backbone": backbone, "lang": lang_dirs, "task": task_dir}
    torch.set_num_threads(threads)


def _job(trained, **overrides) -> FullFtJob:
    root = trained["root"]
    targets = ("de", "bg")
    fields = {
        "model": "tiny",
        "task": "nli",
        "kind": "nli",
        "seed": 1,
        "backbone": str(trained["backbone"]),
        "task_dir": str(trained["task"]),
        "source": "en",
        "source_dir": str(trained["lang"]["en"]),
        "targets": {t: str(trained["lang"][t]) for t in targets},
        "data": {t: str(root / "resources/data/xnli" / t) for t in targets},
        "grid": [0.5, 1.0],
        "outputs": {
            f"{v}/{t}": str(root / f"results/scores/ta-{v}/tiny/nli/{t}/seed1.csv")
            for v in VARIANTS
            for t in targets
        },
        "sparsity_keep": [10.0, 90.0],
        "sparsity_output": str(root / "results/fullft/tiny/sparsity/nli/seed1.csv"),
        "max_length": 64,
    }
    return FullFtJob(**{**fields, **overrides})


def test_folders_record_theta0_and_hold_no_mlm_head(trained) -> None:
    sha = theta0_checksum(trained["backbone"])
    lang_state, lang_meta = read_model_folder(trained["lang"]["de"])
    task_state, task_meta = read_model_folder(trained["task"])
    assert lang_meta["theta0_sha256"] == task_meta["theta0_sha256"] == sha
    assert not any(n.startswith(("lm_head", "roberta.")) for n in lang_state)
    assert "embeddings.word_embeddings.weight" in lang_state
    assert any(n.startswith("classifier.") for n in task_state)
    assert not any(n.startswith("lm_head") for n in task_state)
    heads = set(task_state) - set(lang_state)
    assert heads and all(n.startswith("classifier.") for n in heads)


@pytest.fixture(scope="module")
def scored(trained):
    """One scoring job, with the order of its reads and choices recorded."""
    events: list[tuple[str, str]] = []
    real_read, real_choose = fullft_evaluate.read_rows, fullft_evaluate.choose_lambdas

    def read(folder, split):
        events.append(("read", split))
        return real_read(folder, split)

    def choose(curves, per_target=False):
        events.append(("choose", ""))
        return real_choose(curves, per_target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fullft_evaluate, "read_rows", read)
        patch.setattr(fullft_evaluate, "choose_lambdas", choose)
        job = _job(trained)
        written = run_fullft_job(job, device="cpu")
    return job, written, events


def test_job_writes_every_variant_and_never_reads_test_before_choosing(scored) -> None:
    job, written, events = scored
    last_choice = max(i for i, e in enumerate(events) if e[0] == "choose")
    first_test = min(i for i, e in enumerate(events) if e == ("read", "test"))
    assert first_test > last_choice
    assert len(written) == len(VARIANTS) * 2 + 1
    chosen = {}
    for variant in VARIANTS.values():
        per_target = {}
        for target in job.targets:
            rows = read_scores(job.outputs[f"{variant.slug}/{target}"])
            assert {r.scenario for r in rows} == {variant.scenario}
            test = [r for r in rows if r.split == "test"]
            assert len(test) == 1 and test[0].method == variant.label
            per_target[target] = test[0].lam
            val = {r.lam for r in rows if r.split == "validation"}
            assert val == ({0.5, 1.0} if variant.searched else {None})
        chosen[variant.slug] = per_target
        assert len(set(per_target.values())) == 1  # one λ per (variant, dataset)
    # the chosen λ is the best mean validation score over the targets
    for slug in ("src-tgt", "tgt"):
        means = {}
        for lam in job.grid:
            scores = [
                r.score
                for t in job.targets
                for r in read_scores(job.outputs[f"{slug}/{t}"])
                if r.split == "validation" and r.lam == lam
            ]
            means[lam] = sum(scores) / len(scores)
        best = max(means, key=lambda lam: (means[lam], lam))
        assert chosen[slug]["de"] == best
    sparsity = Path(job.sparsity_output).read_text().splitlines()
    assert sparsity[0].startswith("model,task,seed,target,variant,lambda,mode,keep")
    assert len(sparsity) == 1 + 2 * 2 * 2 * 2  # targets × variants × modes × k


def test_engine_scores_equal_a_freshly_merged_model(trained) -> None:
    job = _job(trained)
    loaded = fullft_evaluate.LoadedModels(job, torch.device("cpu"))
    engine = loaded.hold("de")
    rows = read_split(job.data["de"], "validation")
    split = engine.encode("validation", rows, max_length=64)
    variant = VARIANTS["src-tgt"]
    from_engine = engine.score(fullft_evaluate.variant_point(variant, 0.7), split)

    task_state, meta = read_model_folder(job.task_dir)
    src, _ = read_model_folder(job.source_dir)
    tgt, _ = read_model_folder(job.targets["de"])
    merged = compose(loaded.theta0, task_state, src, tgt, variant.weights(0.7))
    fresh = load_task_classifier(job.backbone, "nli", meta["labels"])
    prefix = f"{fresh.base_model_prefix}."
    fresh.load_state_dict(
        {(f"{prefix}{n}" if n in loaded.theta0 else n): t for n, t in merged.items()},
        strict=False,
    )
    fresh.eval()
    tokenizer = loaded.task_model.tokenizer
    again = encode_split("validation", rows, "nli", tokenizer, max_length=64)
    with torch.inference_mode():
        parts = [again.reduce(fresh(**b.inputs), b) for b in again.batches]
    assert again.finish(parts) == from_engine


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_refused(trained, tmp_path) -> None:
    theta0, task, src, _ = _states()
    sha = "a" * 64
    with pytest.raises(LangarithError, match="another θ0"):
        check_vector("x", src, {"theta0_sha256": "b" * 64}, theta0, sha)
    with pytest.raises(LangarithError, match="missing"):
        check_vector("x", {"emb.weight": src["emb.weight"]}, {"theta0_sha256": sha}, theta0, sha)
    with pytest.raises(LangarithError, match="extra"):
        check_vector("x", task, {"theta0_sha256": sha}, theta0, sha)
    check_vector("x", task, {"theta0_sha256": sha}, theta0, sha, extra_allowed=True)
    with pytest.raises(LangarithError, match="Unknown task-arithmetic variant"):
        _job(trained, variants=["model", "both"]).check()
    with pytest.raises(LangarithError, match="must hold numbers > 0"):
        _job(trained, grid=[0.0, 0.5]).check()
    with pytest.raises(LangarithError, match="is its source language"):
        _job(trained, source="de").check()
    # a model fine-tuned from another backbone
    other = tmp_path / "other"
    write_model_folder(other, src, {"kind": "fullft_language", "theta0_sha256": sha})
    with pytest.raises(LangarithError, match="another θ0"):
        run_fullft_job(_job(trained, source_dir=str(other)), device="cpu")


def test_plan_refuses_and_skips() -> None:
    config = {
        "models": [{"name": "tiny"}],
        "seeds": [1],
        "fullft": {
            "no_text": ["nij"],
            "sparsity": {"keep": [10, 50]},
            "datasets": {
                "nli": {
                    "kind": "nli",
                    "train_dataset": "xnli",
                    "source": "en",
                    "targets": ["de", "nij"],
                }
            },  # fmt: skip
        },
    }
    assert fullft_targets(config, "nli") == (["de"], ["nij"])
    outputs = fullft_outputs(config)
    assert "results/scores/ta-neg-src-tgt/tiny/nli/de/seed1.csv" in outputs
    assert "results/analysis/tiny/fullft_sparsity.csv" in outputs
    job = fullft_job(config, "tiny", "nli", 1)
    assert job["grid"][0] == 0.1 and len(job["grid"]) == 10 and job["skipped"] == ["nij"]
    from langarith.fullft.report import skipped_notes

    assert skipped_notes(config) == {"notes": ["nli: nij skipped (no text for a language vector)"]}
    # a real run: a target Wikipedia lacks is skipped unless local text is given
    real = {**config, "data": {"source": "hub"}}
    real["fullft"] = {**config["fullft"], "no_text": []}
    real["fullft"]["datasets"] = {"nli": {**config["fullft"]["datasets"]["nli"],
                                          "targets": ["de", "aym"]}}  # fmt: skip
    assert fullft_targets(real, "nli") == (["de"], ["aym"])
    real["data"]["local_paths"] = {"wikipedia": {"aym": "aym.jsonl"}}
    assert fullft_targets(real, "nli") == (["de", "aym"], [])
    config["fullft"]["datasets"]["nli"]["targets"] = ["en"]
    with pytest.raises(LangarithError, match="is the dataset's source"):
        fullft_targets(config, "nli")
    config["fullft"]["datasets"]["nli"].update(source="nij", targets=["de"])
    with pytest.raises(LangarithError, match="has no language vector"):
        fullft_targets(config, "nli")


# --------------------------------------------------------------------------- report


def test_tables_and_figure_from_a_job(scored, tmp_path) -> None:
    """The registered tables and figure are built from the job's files; the core's
    score reader reads the score files."""
    from langarith.arms import ARM_MODULES, load_arms
    from langarith.report.figures import FIGURES, write_figure
    from langarith.report.scores import read_scores as read_score_table
    from langarith.report.tables import TABLES, write_table

    load_arms()
    assert "langarith.fullft.report" in ARM_MODULES
    assert {"task_arithmetic", "task_arithmetic_lambda"} <= set(TABLES)
    assert "fullft_sparsity" in FIGURES
    job = scored[0]
    scores = list(job.outputs.values())
    assert len(read_score_table(scores)) > 0
    out = {"csv": tmp_path / "ta.csv", "md": tmp_path / "ta.md"}
    write_table("task_arithmetic", {"scores": scores}, out, notes=["nli: nij skipped"])
    markdown = out["md"].read_text()
    assert "Note: nli: nij skipped" in markdown
    for variant in VARIANTS.values():
        assert f"| {variant.label} " in markdown
    lam = {"csv": tmp_path / "lam.csv", "md": tmp_path / "lam.md"}
    write_table("task_arithmetic_lambda", {"scores": scores}, lam)
    assert "Validation score per λ" in lam["md"].read_text()
    from langarith.fullft.report import combine_sparsity

    combined = combine_sparsity([job.sparsity_output], tmp_path / "fullft_sparsity.csv")
    figure = write_figure(
        "fullft_sparsity",
        {"sparsity": [str(combined)]},
        {"png": tmp_path / "f.png"},
        model="tiny",
        task="nli",
    )
    assert len(figure.axes[0].lines) == 4  # 2 variants × top/bottom


def test_published_averages_are_shown_beside_the_run() -> None:
    import pandas as pd

    from langarith.fullft.report import _paper_markdown, paper_averages

    paper = paper_averages()
    xnli = paper[(paper["dataset"] == "xnli") & (paper["model"] == "xlmr")]
    assert dict(zip(xnli["variant"], xnli["score"], strict=True)) == {
        "model": 73.13, "src": 73.89, "tgt": 74.79, "src-tgt": 75.16, "neg-src-tgt": 73.19,
    }  # fmt: skip
    tidy = pd.DataFrame(
        [{"model": "xlmr", "task": "xnli", "method": "+SRC+TGT", "target": "avg", "mean": 70.0}]
    )
    shown = _paper_markdown(tidy, {})
    assert "75.16" in shown and "70.00" in shown
    assert _paper_markdown(tidy.assign(task="nli"), {}) == ""


# --------------------------------------------------------------------------- sentiment


def test_macro_f1_by_hand() -> None:
    from langarith.metrics import macro_f1
    from langarith.train.task_features import score_sentiment

    true, pred = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    # class 0: tp 1, 2 pred, 2 gold -> 0.5; class 1: 1, 2, 1 -> 2/3; class 2: 2, 2, 3 -> 0.8
    assert macro_f1(true, pred, 3) == pytest.approx(100 * (0.5 + 2 / 3 + 0.8) / 3)
    assert macro_f1([0, 0], [0, 0], 2) == pytest.approx(50.0)  # an absent class scores 0
    scores = score_sentiment(true, pred, 3)
    assert scores["accuracy"] == pytest.approx(100 * 4 / 6)


@pytest.fixture(scope="module")
def sentiment(trained):
    """A 3-class sentiment model on demo NusaX-shaped data (source en), chosen on F1."""
    root = trained["root"]
    rows = {"task_train_rows": 45, "task_validation_rows": 18, "task_test_rows": 18}
    for lang in LANGS:
        prepare_demo_dataset(
            "nusax",
            lang,
            root / "resources/data/nusax" / lang,
            options={**rows, "respect_coverage": False},
        )
    task_hp = {"max_steps": 4, "batch_size": 8, "lr": 1e-3, "max_length": 32, "eval_every": 2}
    task_dir = finetune_task(
        trained["backbone"],
        root / "resources/data/nusax/en",
        root / "results/fullft/tiny/task/senti/seed1",
        kind="sentiment",
        seed=1,
        hparams=task_hp,
        metric="f1",
    )
    return task_dir


def test_sentiment_model_takes_the_data_labels_and_its_metric(sentiment) -> None:
    state, meta = read_model_folder(sentiment)
    assert meta["labels"] == ["negative", "neutral", "positive"] and meta["metric"] == "f1"
    assert meta["eval_history"] and all("f1" in point for point in meta["eval_history"])
    assert state["classifier.out_proj.weight"].shape[0] == 3


def test_sentiment_job_chooses_lambda_on_f1(trained, sentiment) -> None:
    root = trained["root"]
    targets = ("de", "bg")
    job = _job(
        trained,
        task="senti",
        kind="sentiment",
        metric="f1",
        task_dir=str(sentiment),
        data={t: str(root / "resources/data/nusax" / t) for t in targets},
        outputs={
            f"{v}/{t}": str(root / f"results/scores/ta-{v}/tiny/senti/{t}/seed1.csv")
            for v in VARIANTS
            for t in targets
        },
        sparsity_keep=[],
        sparsity_output=None,
        max_length=32,
    )
    run_fullft_job(job, device="cpu")
    means = {}
    for lam in job.grid:
        scores = [
            r.score
            for t in targets
            for r in read_scores(job.outputs[f"tgt/{t}"])
            if r.split == "validation" and r.lam == lam and r.metric == "f1"
        ]
        means[lam] = sum(scores) / len(scores)
    test = [r for r in read_scores(job.outputs["tgt/de"]) if r.split == "test"]
    assert {r.metric for r in test} == {"accuracy", "f1"}
    assert test[0].lam == max(means, key=lambda lam: (means[lam], lam))
    with pytest.raises(LangarithError, match="metric 'f1' is not one of a nli task's"):
        _job(trained, metric="f1").check()


def test_sentiment_engine_equals_the_training_evaluation(trained, sentiment) -> None:
    """The engine's vectorised accuracy and macro F1 equal task_features' on θ_T."""
    from langarith.evaluate.tasks import encode_split as encode
    from langarith.train.task_features import encode_task, evaluate_chunks

    state, meta = read_model_folder(sentiment)
    model = load_task_classifier(trained["backbone"], "sentiment", meta["labels"])
    prefix = f"{model.base_model_prefix}."
    model.load_state_dict(
        {(n if n.startswith("classifier.") else f"{prefix}{n}"): t for n, t in state.items()},
        strict=True,
    )
    model.eval()
    from langarith.backbone.folder import load_tokenizer

    tokenizer = load_tokenizer(trained["backbone"])
    rows = read_split(trained["root"] / "resources/data/nusax/de", "test")
    split = encode("test", rows, "sentiment", tokenizer, labels=meta["labels"], max_length=32)
    with torch.inference_mode():
        parts = [split.reduce(model(**b.inputs), b) for b in split.batches]
    fast = split.finish(parts)
    encoded = encode_task("sentiment", rows, tokenizer, max_length=32)
    slow = evaluate_chunks(model, "sentiment", [(rows, encoded)], labels=meta["labels"])
    assert fast == pytest.approx(slow)


# --------------------------------------------------------------------------- paper config


def test_paper_config_plans_the_four_datasets() -> None:
    """config.yaml: AmericasNLI, NusaX and MARC beside XNLI, with Table 1's settings."""
    from langarith.config import load_config
    from langarith.fullft.plan import task_hparams, task_metric
    from langarith.fullft.report import fullft_job_counts, skipped_notes
    from langarith.plan import dataset_inputs, text_manifest

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    assert fullft_targets(config, "americasnli") == (
        ["ay", "bzd", "cni", "gn", "hch", "nah", "oto", "quy", "shp", "tar"],
        [],
    )
    assert fullft_targets(config, "nusax") == (
        ["ace", "ban", "bbc", "bjn", "bug", "jv", "mad", "min", "su"],
        ["nij"],
    )
    assert skipped_notes(config) == {
        "notes": ["nusax: nij skipped (no text for a language vector)"]
    }
    nusax, marc = task_hparams(config, "nusax"), task_hparams(config, "marc")
    assert (nusax["batch_size"], nusax["epochs"], nusax["eval_every"]) == (16, 10, 250)
    assert (marc["batch_size"], marc["epochs"], marc["eval_every"]) == (32, 5, 625)
    assert task_metric(config, "nusax") == "f1" and task_metric(config, "marc") is None
    job = fullft_job(config, "xlmr", "nusax", 42)
    assert job["source"] == "id" and job["metric"] == "f1" and job["kind"] == "sentiment"
    assert job["data"]["jv"] == "resources/data/nusax/jv"
    # SMSA is prepared after NusaX Indonesian, whose test texts it leaves out
    assert dataset_inputs(config, "smsa", "id") == {"exclude": "resources/data/nusax/id"}
    assert text_manifest(config, "shp") == "resources/text/shp/SHA256SUMS"
    counts = fullft_job_counts(config)
    assert "resources/data/nusax/id" in counts.data and "resources/data/smsa/id" in counts.data
    # AmericasNLI scores XNLI's MultiNLI model (task_from): three task models per seed
    assert counts.counts["fullft_task"] == 3 * 3
    assert fullft_job(config, "xlmr", "americasnli", 42)["task_dir"] == (
        "results/fullft/xlmr/task/xnli/seed42"
    )
    broken = {
        **config,
        "fullft": {**config["fullft"], "datasets": dict(config["fullft"]["datasets"])},
    }
    broken["fullft"]["datasets"]["americasnli"] = {
        **config["fullft"]["datasets"]["americasnli"],
        "task_from": "marc",
    }
    with pytest.raises(LangarithError, match="task_from: 'marc' has another kind"):
        fullft_job(broken, "xlmr", "americasnli", 42)
    # without own text, the languages without a Wikipedia are skipped too
    bare = {**config, "data": {**config["data"], "text": {}}}
    assert fullft_targets(bare, "americasnli")[1] == [
        "bzd",
        "cni",
        "hch",
        "oto",
        "quy",
        "shp",
        "tar",
    ]


def test_kinds_agree_with_the_schema_and_the_heads() -> None:
    import yaml

    from langarith.fullft.train import TASK_MODEL_CLASSES
    from langarith.task_kinds import FULLFT_KINDS

    schema = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text()
    )
    spec = schema["properties"]["fullft"]["properties"]["datasets"]["additionalProperties"]
    assert tuple(spec["properties"]["kind"]["enum"]) == FULLFT_KINDS
    assert tuple(TASK_MODEL_CLASSES) == ("nli", "ner", "sentiment")
    assert set(TASK_MODEL_CLASSES) == set(FULLFT_KINDS)
