"""The X-MOD arm on tiny models: modules per language, post-hoc languages, SHARED, scores."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch
import yaml
from hub_mirror import QA_FEATURES, qa_rows
from safetensors.torch import load_file
from tiny import demo_spec
from transformers import AutoTokenizer, XmodForMaskedLM, XmodForSequenceClassification

from langarith import LangarithError
from langarith.backbone.demo import build_demo_backbone
from langarith.backbone.tokenizer import train_tokenizer
from langarith.data import dataset_covers, prepare_real_dataset, read_split, verify_dataset
from langarith.data.demo import prepare_demo_dataset
from langarith.evaluate.search import best_lambda
from langarith.io import sha256_file
from langarith.report.figures import FIGURES, figure_outputs
from langarith.report.scores import read_scores
from langarith.train.task_features import encode_task, evaluate_task
from langarith.training.inputs import read_rows
from langarith.xmod import plan as xmod_plan
from langarith.xmod.adding import add_language, install_added, prepare_added_model
from langarith.xmod.finetune import (
    choose_grid_point,
    dev_scores,
    finetune_xmod,
    finetune_xmod_grid,
    frozen_state,
)
from langarith.xmod.la import score_la_targets
from langarith.xmod.model import (
    add_module,
    build_config,
    embedding_state,
    install_embeddings,
    lang_ids,
    layers,
    load_module_state,
    load_xmod,
    module_key,
    module_keys,
)
from langarith.xmod.pretrain import (
    LanguageSampler,
    fetch_hub_checkpoint,
    pretrain_xmod,
    sampling_shares,
)
from langarith.xmod.report import (
    language_count_figure,
    language_counts,
    pretrained_vs_added_figure,
    xmod_frame,
    xmod_markdown,
)
from langarith.xmod.scoring import evaluation_rows, score_target, score_targets

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ("en", "de")
ADDED = "bg"
DATA = {
    "wikipedia_train_docs": 40,
    "validation_docs": 4,
    "task_train_rows": 48,
    "task_validation_rows": 16,
    "task_test_rows": 16,
}
PRETRAIN = {"steps": 6, "batch_size": 4, "seq_len": 32, "init_from_base": True}
ADDING = {"steps": 4, "batch_size": 4, "seq_len": 32, "vocab_size": 200}
FINETUNE = {"epochs": 1, "batch_size": 8, "max_length": 32}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and 2 shared cores are not oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("data")
    return {
        "wikipedia": {
            lang: prepare_demo_dataset("wikipedia", lang, root / "wiki" / lang, options=DATA)
            for lang in (*PRETRAINED, ADDED)
        },
        "xnli": {
            lang: prepare_demo_dataset("xnli", lang, root / "xnli" / lang, options=DATA)
            for lang in ("en", "de", ADDED)
        },
    }


@pytest.fixture(scope="module")
def base(data, tmp_path_factory) -> Path:
    """The demo's XLM-R-shaped backbone (sizes and tokenizer), barely pre-trained."""
    wiki = data["wikipedia"]
    return build_demo_backbone(
        [wiki[lang] for lang in (*PRETRAINED, ADDED)],
        tmp_path_factory.mktemp("base") / "tinyxlmr",
        arch="xlmr",
        spec=demo_spec(pretrain_steps=1),
        seed=0,
    )


@pytest.fixture(scope="module")
def backbones(base, data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("xmod")
    corpora = [data["wikipedia"][lang] for lang in PRETRAINED]
    return {
        arm: pretrain_xmod(
            base, corpora, root / f"{arm}-demo", shared=arm == "shared", settings=PRETRAIN
        )
        for arm in ("xmod", "shared")
    }


@pytest.fixture(scope="module")
def added(backbones, data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("added")
    return {
        arm: add_language(
            folder, data["wikipedia"][ADDED], root / arm / ADDED, language=ADDED, settings=ADDING
        )
        for arm, folder in backbones.items()
    }


@pytest.fixture(scope="module")
def tasks(backbones, data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tasks")
    return {
        arm: finetune_xmod(
            folder, data["xnli"]["en"], root / arm, kind="nli", seed=1, settings=FINETUNE
        )
        for arm, folder in backbones.items()
    }


def _tiny(languages=("en", "de", "ru"), *, shared: bool = False) -> XmodForMaskedLM:
    base = {
        "vocab_size": 50,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 40,
        "pad_token_id": 1,
    }
    torch.manual_seed(0)
    return XmodForMaskedLM(build_config(base, list(languages), shared=shared)).eval()


def test_editing_module_de_changes_only_de_rows_of_a_mixed_batch():
    model = _tiny()
    keys = module_keys(model.config)
    order = ["en", "de", "de", "ru", "en", "de"]
    ids = torch.randint(3, 50, (len(order), 12), generator=torch.Generator().manual_seed(1))
    langs = lang_ids(model, [keys[lang] for lang in order])
    with torch.no_grad():
        before = model.roberta(input_ids=ids, lang_ids=langs)[0]
        layers(model)[1].output.adapter_modules[keys["de"]].dense2.bias.add_(0.5)
        after = model.roberta(input_ids=ids, lang_ids=langs)[0]
    for row, lang in enumerate(order):
        same = torch.equal(before[row], after[row])
        assert same == (lang != "de"), (row, lang)


def _trained_per_language(model, key: str) -> int:
    """Parameters that receive a gradient from a batch of one language."""
    model.zero_grad(set_to_none=True)
    ids = torch.randint(3, 50, (2, 10), generator=torch.Generator().manual_seed(2))
    langs = lang_ids(model, [key, key])
    model.roberta(input_ids=ids, lang_ids=langs)[0].sum().backward()
    return sum(p.numel() for p in model.parameters() if p.grad is not None)


def test_shared_trains_as_many_parameters_per_language_as_xmod():
    xmod = _tiny()
    shared = _tiny(shared=True)
    per_language = {
        "xmod": {
            lang: _trained_per_language(xmod, module_key(xmod.config, lang, "t"))
            for lang in ("en", "de")
        },
        "shared": {
            lang: _trained_per_language(shared, module_key(shared.config, lang, "t"))
            for lang in ("en", "de")
        },
    }
    assert per_language["xmod"] == per_language["shared"]
    # ... while X-MOD holds a module per language, SHARED one for all
    module = sum(p.numel() for p in layers(xmod)[0].output.adapter_modules["en_XX"].parameters())
    extra = xmod.num_parameters() - shared.num_parameters()
    assert extra == 2 * module * len(layers(xmod))
    assert module_keys(shared.config) == {"en": "shared", "de": "shared", "ru": "shared"}


def test_sampled_language_shares_follow_alpha():
    sizes = {"en": 10000, "de": 1000, "sw": 50}
    shares = sampling_shares(sizes, 0.7)
    total = sum(n**0.7 for n in sizes.values())
    assert shares == pytest.approx({k: n**0.7 / total for k, n in sizes.items()})
    sampler = LanguageSampler(sizes, 0.7, seed=3)
    draws = [sampler.language(k) for k in range(20000)]
    for lang, share in shares.items():
        assert draws.count(lang) / len(draws) == pytest.approx(share, abs=0.01)
    # α = 0.7 gives the small language more than its size share
    assert shares["sw"] > sizes["sw"] / sum(sizes.values())
    assert LanguageSampler(sizes, 0.7, seed=3).language(123) == draws[123]


def test_pretraining_draws_one_language_per_batch(backbones):
    meta = json.loads((backbones["xmod"] / "metadata.json").read_text())
    assert sum(meta["batches_per_language"].values()) == PRETRAIN["steps"]
    assert set(meta["sampling_shares"]) == set(PRETRAINED)
    model = load_xmod(backbones["xmod"])
    assert module_keys(model.config) == {"en": "en_XX", "de": "de_XX"}
    shared = load_xmod(backbones["shared"])
    assert list(shared.config.languages) == ["shared"]
    # warm start: every shared weight came from the base model, only the modules are new
    assert meta["warm_started"] and all("adapter_modules" in k for k in meta["warm_started"])


def test_copied_embedding_rows_equal_the_originals(backbones, base, data):
    model = load_xmod(backbones["xmod"])
    tokenizer = AutoTokenizer.from_pretrained(str(backbones["xmod"]))
    texts = [r["text"] for r in read_rows(data["wikipedia"][ADDED], "train")]
    new = train_tokenizer(texts, arch="xlmr", vocab_size=200)
    old = embedding_state(model)["word_embeddings.weight"]
    key, copied = prepare_added_model(model, tokenizer, new, ADDED, seed=0, where="test")
    words = embedding_state(model)["word_embeddings.weight"]
    assert words.shape[0] == len(new) and key == "bg_XX"
    old_vocab = tokenizer.get_vocab()
    shared = [(i, old_vocab[t]) for t, i in new.get_vocab().items() if t in old_vocab]
    assert copied == len(shared) > 0
    for new_id, old_id in shared:
        assert torch.equal(words[new_id], old[old_id])
    fresh = [i for t, i in new.get_vocab().items() if t not in old_vocab]
    assert fresh and not any(torch.equal(words[i], old[0]) for i in fresh[:5])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        "embeddings.word_embeddings" in n
        or "embeddings.position_embeddings" in n
        or "adapter_modules.bg_XX" in n
        for n in trainable
    )


def _outputs(model, ids, keys):
    with torch.no_grad():
        return model.roberta(input_ids=ids, lang_ids=lang_ids(model, keys))[0]


def test_adding_a_language_leaves_existing_outputs_bit_identical(backbones, added):
    before_files = {p.name: sha256_file(p) for p in backbones["xmod"].iterdir() if p.is_file()}
    model = load_xmod(backbones["xmod"]).eval()
    ids = torch.randint(5, 150, (4, 16), generator=torch.Generator().manual_seed(4))
    keys = ["en_XX", "de_XX", "de_XX", "en_XX"]
    before = _outputs(model, ids, keys)
    add_module(model, "bg_XX", 0)
    load_module_state(model, "bg_XX", load_file(str(added["xmod"] / "modules.safetensors")))
    assert torch.equal(_outputs(model, ids, keys), before)
    # the checkpoint itself is untouched: the language lives in its own folder
    after_files = {p.name: sha256_file(p) for p in backbones["xmod"].iterdir() if p.is_file()}
    assert after_files == before_files
    meta = json.loads((added["xmod"] / "metadata.json").read_text())
    assert meta["module_key"] == "bg_XX" and meta["copied_rows"] > 0
    shared_meta = json.loads((added["shared"] / "metadata.json").read_text())
    assert not (added["shared"] / "modules.safetensors").exists()
    # SHARED learns embeddings only: fewer trained parameters than X-MOD's embeddings+modules
    assert shared_meta["trained_parameters"] < meta["trained_parameters"]


def test_finetuning_leaves_embeddings_and_modules_bit_identical(backbones, tasks):
    for arm, folder in backbones.items():
        before = frozen_state(load_xmod(folder))
        after = frozen_state(load_xmod(tasks[arm]))
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before), arm
        meta = json.loads((tasks[arm] / "metadata.json").read_text())
        assert meta["source_module"] == ("shared" if arm == "shared" else "en_XX")
    # ... and the shared weights did train
    base = load_xmod(backbones["xmod"]).state_dict()
    tuned = load_xmod(tasks["xmod"]).state_dict()
    name = "roberta.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(base[name], tuned[name])


def test_scores_for_pretrained_and_added_targets(tasks, added, data, tmp_path):
    for arm, scenario in (("xmod", "xmod"), ("shared", "xmod-shared")):
        targets = {lang: data["xnli"][lang] for lang in ("en", "de", ADDED)}
        outputs = {
            lang: tmp_path / scenario / "demo" / "nli" / lang / "seed1.csv" for lang in targets
        }
        written = score_targets(
            tasks[arm],
            targets,
            outputs,
            model="demo",
            task="nli",
            seed=1,
            added={ADDED: added[arm]},
            settings=FINETUNE,
        )
        frame = read_scores(written)
        assert set(frame["target"]) == set(targets)
        assert set(frame["scenario"]) == {scenario}
        assert set(frame["method"]) == {"SHARED" if arm == "shared" else "X-MOD"}
        assert frame["score"].between(0, 100).all()
        # the xmod table and figure: bg in the added group, its averages per seed
        table = xmod_frame(frame, [str(added[arm])])
        groups = dict(zip(table["target"], table["group"], strict=False))
        assert groups["bg"] == "added" and groups["de"] == "pre-trained"
        assert "## nli (accuracy), set demo" in xmod_markdown(table)
        figure = pretrained_vs_added_figure(table, "demo")
        assert len(figure.axes) == 1


def test_bad_inputs_are_refused_with_one_line(backbones, base, added, tasks, data, tmp_path):
    xnli = data["xnli"]
    # a target with neither a module nor an added folder: the error names the languages
    with pytest.raises(LangarithError, match=r"'bg' has no module.*de, en"):
        score_target(tasks["xmod"], xnli[ADDED], ADDED, settings=FINETUNE)
    # a code with no module key
    with pytest.raises(LangarithError, match="'sw' has no module"):
        module_key(load_xmod(backbones["xmod"]).config, "sw", "test")
    # adding a language that has a module
    with pytest.raises(LangarithError, match="already has a module"):
        add_language(
            backbones["xmod"],
            data["wikipedia"]["de"],
            tmp_path / "de",
            language="de",
            settings=ADDING,
        )
    with pytest.raises(LangarithError, match="already has a module"):
        add_language(
            backbones["shared"],
            data["wikipedia"]["en"],
            tmp_path / "en",
            language="en",
            settings=ADDING,
        )
    # a checkpoint that is not X-MOD
    with pytest.raises(LangarithError, match="not X-MOD"):
        load_xmod(base)
    with pytest.raises(LangarithError, match="not X-MOD"):
        finetune_xmod(base, xnli["en"], tmp_path / "t", kind="nli", seed=1, settings=FINETUNE)
    # an added tokenizer whose size differs from its embedding rows
    model = load_xmod(backbones["xmod"])
    state = embedding_state(model)
    with pytest.raises(LangarithError, match="has 7 tokens but its word embeddings"):
        install_embeddings(model, state, 7, "test")
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in added["xmod"].iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    tok = json.loads((broken / "tokenizer.json").read_text())
    tok["model"]["vocab"] = tok["model"]["vocab"][:-3]
    (broken / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(LangarithError, match="tokens but its word embeddings"):
        install_added(load_xmod(tasks["xmod"]), broken, "test")


def test_local_checkpoint_with_locale_keys_loads_offline_through_the_hub_path(
    base, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = json.loads((base / "config.json").read_text())
    xmod_config = build_config(config, ["en"], shared=False)
    xmod_config.languages = ["en_XX", "de_DE", "ta_IN"]
    xmod_config.default_language = "en_XX"
    release = tmp_path / "xmod-base-13-125k"
    XmodForMaskedLM(xmod_config).save_pretrained(release, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(release)
    out = fetch_hub_checkpoint(str(release), str(release), tmp_path / "resources" / "xmod-13")
    model = load_xmod(out)
    assert module_keys(model.config) == {"en": "en_XX", "de": "de_DE", "ta": "ta_IN"}
    assert module_key(model.config, "ta", "test") == "ta_IN"
    # a released checkpoint that is not X-MOD is refused before loading
    with pytest.raises(LangarithError, match="not X-MOD"):
        fetch_hub_checkpoint(str(base), str(base), tmp_path / "resources" / "other")


def test_mlqa_loads_from_a_local_mirror_of_its_parquet_export(tmp_path):
    """MLQA for real runs: the hub code path on a folder laid out as the repository's
    parquet export (``mlqa.<lang>.<lang>/<split>/0000.parquet``); scored on its whole
    test split, while XQuAD's two halves are scored together."""
    repo = tmp_path / "facebook" / "mlqa"
    for split, n in (("validation", 3), ("test", 5)):
        path = repo / "mlqa.de.de" / split / "0000.parquet"
        path.parent.mkdir(parents=True)
        datasets.Dataset.from_list(qa_rows(f"mlqa-{split}-", n), features=QA_FEATURES).to_parquet(
            str(path)
        )
    out = prepare_real_dataset(
        "mlqa",
        "de",
        tmp_path / "out" / "mlqa" / "de",
        options={"hub_path": str(repo), "cache_dir": str(tmp_path / "cache")},
    )
    manifest = verify_dataset(out)
    assert manifest["dataset"] == "mlqa" and manifest["revision"] == "refs/convert/parquet"
    assert len(read_split(out, "validation")) == 3
    rows = evaluation_rows(out)
    assert len(rows) == 5 and {"context", "question", "answers"} <= set(rows[0])
    assert dataset_covers("mlqa", "zh") and not dataset_covers("mlqa", "ru")
    with pytest.raises(LangarithError, match="does not cover"):
        prepare_real_dataset("mlqa", "ru", tmp_path / "ru", options={"hub_path": str(repo)})


def test_xquad_is_scored_on_both_halves(tmp_path):
    out = prepare_demo_dataset("xquad", "de", tmp_path / "xquad" / "de", options=DATA)
    assert len(evaluation_rows(out)) == len(read_rows(out, "validation")) + len(
        read_rows(out, "test")
    )


def _validation_score(task_dir: Path, data_dir: Path, key: str) -> float:
    """Accuracy of the task model with module ``key`` on ``data_dir``'s validation split."""
    model = load_xmod(task_dir, XmodForSequenceClassification).eval()
    model.set_default_language(key)
    tokenizer = AutoTokenizer.from_pretrained(str(task_dir))
    rows = read_rows(data_dir, "validation")
    labels = json.loads((task_dir / "metadata.json").read_text())["labels"]
    encoded = encode_task("nli", rows, tokenizer, labels=labels, max_length=32)
    metrics = evaluate_task(
        model, "nli", encoded, rows=rows, labels=labels, pad_id=tokenizer.pad_token_id
    )
    return metrics["accuracy"]


def test_xmod_la_merges_en_and_related_modules_in_place(tasks, data, tmp_path):
    """Scenario xmod_la: λ = 1 is the en module bit for bit, λ = 0 the related one (de,
    the only pre-trained language besides en); the test row sits at the curve's best λ."""
    out = tmp_path / "xmod-la" / "demo" / "nli" / ADDED / "seed1.csv"
    score_la_targets(
        tasks["xmod"],
        {ADDED: data["xnli"][ADDED]},
        {ADDED: out},
        model="demo",
        task="nli",
        seed=1,
        grid=[0.0, 0.5, 1.0],
        settings=FINETUNE,
    )
    frame = read_scores([out])
    assert set(frame["scenario"]) == {"xmod-la"} and set(frame["method"]) == {"X-MOD LA"}
    assert set(frame["adapters"]) == {"en,de"}
    val = frame[frame["split"] == "validation"].set_index("lambda")["score"]
    assert sorted(val.index) == [0.0, 0.5, 1.0]
    assert val[1.0] == _validation_score(tasks["xmod"], data["xnli"][ADDED], "en_XX")
    assert val[0.0] == _validation_score(tasks["xmod"], data["xnli"][ADDED], "de_XX")
    test = frame[frame["split"] == "test"]
    assert set(test["lambda"]) == {best_lambda(dict(val))}
    # the rows join the xmod table beside X-MOD and SHARED, in the added group
    table = xmod_frame(frame, [str(tmp_path / "xmod-demo" / "added" / ADDED)])
    assert set(table["group"]) == {"added"} and "X-MOD LA" in xmod_markdown(table)


def test_xmod_la_refuses_what_it_cannot_merge(tasks, data, tmp_path):
    kwargs = dict(model="demo", task="nli", seed=1, grid=[0.0, 1.0], settings=FINETUNE)
    out = {lang: tmp_path / f"{lang}.csv" for lang in ("de", ADDED)}
    with pytest.raises(LangarithError, match=r"\['de'\] already have a module"):
        score_la_targets(tasks["xmod"], {"de": data["xnli"]["de"]}, out, **kwargs)
    with pytest.raises(LangarithError, match="SHARED model has one module"):
        score_la_targets(tasks["shared"], {ADDED: data["xnli"][ADDED]}, out, **kwargs)
    with pytest.raises(LangarithError, match="not in the pool"):
        score_la_targets(
            tasks["xmod"], {ADDED: data["xnli"][ADDED]}, out, overrides={ADDED: "en"}, **kwargs
        )


def test_xmod_la_plan_of_the_demo_config():
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    assert xmod_plan.la_wanted(config)
    outputs = xmod_plan.la_final_outputs(config)
    found = {tuple(p.split("/")[2:6]) for p in outputs}
    assert {(s, m, t, lang) for s, m, t, lang in found} == {
        ("xmod-la", "demo", "ner", "pt"),
        ("xmod-la", "demo", "ner", "bg"),
        ("xmod-la", "demo", "nli", "bg"),
    }
    assert len(outputs) == 3 * len(config["seeds"])
    assert xmod_plan.job_counts(config)["xmod_la_score"] == len(config["seeds"])
    job = xmod_plan.la_job(config, "demo", 1)
    assert job["search"] == "coarse_to_fine" and len(job["grid"]) == 21
    assert all("/added/" not in p for p in xmod_plan.la_inputs(config, "demo", "1")["data"])
    config["xmod"]["la"] = {"related": {"bg": "uk"}}
    with pytest.raises(LangarithError, match="not a pre-trained language of set 'demo'"):
        xmod_plan.check_xmod(config)
    del config["xmod"]["la"]
    assert not xmod_plan.la_wanted(config) and "xmod_la_score" not in xmod_plan.job_counts(config)


def test_grid_choice_follows_the_papers_rule():
    """NER/NLI: the best mean over pre-trained languages; QA: the best English score;
    ties to the earlier (cheaper) point."""
    dev = [
        {"en": 90.0, "de": 40.0, "ru": 41.0},  # mean 57
        {"en": 80.0, "de": 50.0, "ru": 50.0},  # mean 60: chosen for NLI/NER
        {"en": 91.0, "de": 30.0, "ru": 30.0},  # best en: chosen for QA
        {"en": 80.0, "de": 50.0, "ru": 50.0},  # ties with point 1, which is earlier
    ]
    assert choose_grid_point("nli", dev) == 1
    assert choose_grid_point("ner", dev) == 1
    assert choose_grid_point("qa", dev) == 2
    assert choose_grid_point("qa", [{"en": 1.0}, {"en": 1.0}]) == 0
    with pytest.raises(LangarithError, match="on en validation data"):
        choose_grid_point("qa", [{"de": 1.0}])
    with pytest.raises(LangarithError, match="scored nan"):
        choose_grid_point("nli", [{"en": float("nan")}])


def test_the_papers_grid_in_config_yaml():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    ner, qa = xmod_plan.grid_points(config, "ner"), xmod_plan.grid_points(config, "qa")
    assert len(ner) == 6 and {p["epochs"] for p in ner} == {5, 10}
    assert {p["lr"] for p in ner} == {1e-4, 3e-4, 5e-4}
    assert len(qa) == 6 and {p["epochs"] for p in qa} == {3, 5}
    assert xmod_plan.dev_data(config, "60-265k", "qa") == {"en": "resources/data/squad/en"}
    ner_dev = xmod_plan.dev_data(config, "60-265k", "ner")
    assert set(ner_dev) == set(config["xmod"]["models"][0]["languages"])  # no added one
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    assert xmod_plan.grid_points(demo, "ner") == [{}] and not xmod_plan.dev_data(
        demo, "demo", "ner"
    )


def test_grid_keeps_the_chosen_point(backbones, data, tmp_path):
    dev = {lang: data["xnli"][lang] for lang in PRETRAINED}
    grid = [{"lr": 1e-5}, {"lr": 3e-3}]
    out = finetune_xmod_grid(
        backbones["xmod"], data["xnli"]["en"], tmp_path / "nli", kind="nli", seed=1,
        settings=FINETUNE, grid=grid, dev=dev,
    )  # fmt: skip
    meta = json.loads((out / "metadata.json").read_text())
    scores = [entry["validation"] for entry in meta["grid"]]
    assert [entry["point"] for entry in meta["grid"]] == grid and set(scores[0]) == {"en", "de"}
    assert meta["grid_choice"] == choose_grid_point("nli", scores)
    assert meta["settings"]["lr"] == grid[meta["grid_choice"]]["lr"]
    assert scores[meta["grid_choice"]] == dev_scores(out, dev, settings=FINETUNE)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # scratch removed


def test_language_count_figure_from_two_sets(backbones, tasks, base, data, tmp_path):
    """X-MOD Figure 4 on two tiny language sets (2 and 3 pre-trained languages): the
    counts come from the backbones, one point per set on each method's line."""
    wiki, xnli = data["wikipedia"], data["xnli"]
    folders = {("demo", arm): folder for arm, folder in backbones.items()}
    task_dirs = {("demo", arm): folder for arm, folder in tasks.items()}
    for arm in ("xmod", "shared"):
        corpora = [wiki[lang] for lang in (*PRETRAINED, ADDED)]
        folder = pretrain_xmod(
            base, corpora, tmp_path / f"{arm}-three", shared=arm == "shared", settings=PRETRAIN
        )
        folders[("three", arm)] = folder
        task_dirs[("three", arm)] = finetune_xmod(
            folder, xnli["en"], tmp_path / "task" / arm, kind="nli", seed=1, settings=FINETUNE
        )
    written = []
    for (name, arm), task_dir in task_dirs.items():
        targets = {lang: xnli[lang] for lang in PRETRAINED}
        outputs = {lang: tmp_path / "scores" / arm / name / f"{lang}.csv" for lang in targets}
        written += score_targets(
            task_dir, targets, outputs, model=name, task="nli", seed=1, settings=FINETUNE
        )
    counts = language_counts([str(f) for f in folders.values()])
    assert counts == {("demo", "X-MOD"): 2, ("demo", "SHARED"): 2,
                      ("three", "X-MOD"): 3, ("three", "SHARED"): 3}  # fmt: skip
    frame = xmod_frame(read_scores(written), [])
    figure = language_count_figure(frame, counts, "nli")
    bars = {c.get_label(): tuple(c.lines[0].get_xdata()) for c in figure.axes[0].containers}
    assert bars == {"X-MOD (pre-trained)": (2, 3), "SHARED (pre-trained)": (2, 3)}


def test_language_count_figure_is_registered_for_two_sets_only():
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    assert not any("xmod_languages" in p for p in figure_outputs(config))
    config["xmod"]["models"].append(
        {"name": "five", "languages": ["en", "es", "it", "ru", "uk"], "demo": {"like": "tinyxlmr"}}
    )
    wanted = [p for p in figure_outputs(config) if "xmod_languages" in p]
    assert sorted(Path(p).name for p in wanted if p.endswith(".png")) == [
        "xmod_languages_ner_sets.png",
        "xmod_languages_nli_sets.png",
    ]
    inputs = FIGURES["xmod_languages"].inputs(config, "sets", "nli")
    assert len(inputs["backbones"]) == 4 and all("/nli/" in p for p in inputs["scores"])


def test_config_target_without_module_or_adding_is_refused_naming_the_languages():
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["xmod"]["targets"] = {"nli": ["en", "uk"]}
    with pytest.raises(LangarithError) as err:
        xmod_plan.check_xmod(config)
    assert "['uk'] have no module in set 'demo' (its languages: en, es, it, ru)" in str(err.value)
    assert "\n" not in str(err.value)
