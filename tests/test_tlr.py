"""The TLR arm (issue 17): the cycling task-adapter trainer, its variants and its scores.

Tiny toy backbone (hidden 32, 2 layers) and toy language adapters (tests/toy_setup.py),
English demo XNLI of 48 rows, a few optimiser steps: the file runs in seconds.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from toy_setup import build_toy_setup

from langarith import LangarithError
from langarith.arms import load_arms
from langarith.data import prepare_demo_dataset
from langarith.tlr.metrics import las, map_tags_to_o, paired_t_test, per_item_scores
from langarith.tlr.register import tlr_job_counts
from langarith.tlr.trainer import lang_slot, train_tlr_task_adapter
from langarith.tlr.variants import scenario_name, tlr_plan, variant_languages
from langarith.train.task_adapter import train_task_adapter

load_arms()  # the arm's table and figure in the report registries

HEAD = "model_head.safetensors"

HP = {
    "max_steps": 6,
    "batch_size": 8,
    "eval_every": 3,
    "checkpoint_every": 0,
    "max_length": 32,
    "lr": 1e-3,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("tlr")
    setup = build_toy_setup(root, kinds=("nli",), languages=("en", "es", "it", "pt"), rows=16)
    data = prepare_demo_dataset(
        "xnli",
        "en",
        root / "xnli-en",
        options={"task_train_rows": 48, "task_validation_rows": 16, "task_test_rows": 16},
    )
    return {"setup": setup, "data": data, "root": root}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter.safetensors")


def _las(toy, *langs: str) -> list[Path]:
    return [toy["setup"].lang[lang] for lang in langs]


# ----------------------------------------------------------------------------- trainer


def test_one_language_adapter_is_the_core_trainer(toy, tmp_path):
    setup = toy["setup"]
    hp = {**HP, "grad_accum": 2}
    core = train_task_adapter(
        setup.backbone, setup.lang["en"], toy["data"], "nli", tmp_path / "core", seed=3, hparams=hp
    )
    tlr = train_tlr_task_adapter(
        setup.backbone, _las(toy, "en"), toy["data"], "nli", tmp_path / "tlr", seed=3, hparams=hp
    )
    a, b = _weights(core), _weights(tlr)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    head_a, head_b = load_file(core / HEAD), load_file(tlr / HEAD)
    assert head_a and head_a.keys() == head_b.keys()
    assert all(torch.equal(head_a[k], head_b[k]) for k in head_a)
    meta_a = json.loads((core / "metadata.json").read_text())
    meta_b = json.loads((tlr / "metadata.json").read_text())
    assert meta_a["eval_history"] == meta_b["eval_history"]
    # another seed gives other weights: the comparison can fail
    other = train_tlr_task_adapter(
        setup.backbone, _las(toy, "en"), toy["data"], "nli", tmp_path / "o", seed=4, hparams=hp
    )
    assert not all(torch.equal(a[k], _weights(other)[k]) for k in a)


def test_active_adapter_cycles_per_step_and_nothing_else_moves(toy, tmp_path):
    setup = toy["setup"]
    seen: list[tuple[int, str]] = []
    frozen: dict[str, torch.Tensor] = {}
    model_ref = []

    def hook(step, model):
        seen.append((step, model.active_adapters.first()))
        if step == 0:
            model_ref.append(model)
            for name, p in model.named_parameters():
                if ".nli." not in name and not name.startswith("heads."):
                    frozen[name] = p.detach().clone()

    dirs = _las(toy, "en", "es", "it")
    before = {d: (d / "adapter.safetensors").read_bytes() for d in dirs}
    out = train_tlr_task_adapter(
        setup.backbone,
        dirs,
        toy["data"],
        "nli",
        tmp_path / "cycle",
        seed=1,
        hparams={**HP, "max_steps": 7, "grad_accum": 2},
        languages=["en", "es", "it"],
        step_hook=hook,
    )
    assert [s for s, _ in seen] == list(range(7))  # once per optimiser step
    assert all(name == lang_slot(step % 3) for step, name in seen)
    assert {name for _, name in seen} == {"lang", "lang1", "lang2"}
    # backbone and every language adapter (invertible ones included) are untouched
    model = model_ref[0]
    assert any(".invertible_adapters." in n for n in frozen)
    moved = [
        n for n, p in model.named_parameters() if n in frozen and not torch.equal(p, frozen[n])
    ]
    assert not moved
    assert all((d / "adapter.safetensors").read_bytes() == before[d] for d in dirs)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["tlr"]["languages"] == ["en", "es", "it"]
    assert [i["name"] for i in meta["tlr"]["lang_adapters"]] == ["lang", "lang1", "lang2"]


def test_resumed_cycle_is_exact(toy, tmp_path):
    """A killed run resumes on the language adapter of its step: same weights."""
    from langarith.training.loop import TrainingInterrupted

    setup, dirs = toy["setup"], _las(toy, "en", "es", "it")
    hp = {**HP, "max_steps": 5, "checkpoint_every": 2}
    a = train_tlr_task_adapter(
        setup.backbone, dirs, toy["data"], "nli", tmp_path / "a", seed=2, hparams=hp
    )
    with pytest.raises(TrainingInterrupted):
        train_tlr_task_adapter(
            setup.backbone,
            dirs,
            toy["data"],
            "nli",
            tmp_path / "b",
            seed=2,
            hparams={**hp, "stop_after_steps": 3},
            checkpoint_dir=tmp_path / "ck",
        )
    b = train_tlr_task_adapter(
        setup.backbone,
        dirs,
        toy["data"],
        "nli",
        tmp_path / "b",
        seed=2,
        hparams=hp,
        checkpoint_dir=tmp_path / "ck",
    )
    assert json.loads((b / "metadata.json").read_text())["resumed_from_step"] == 2
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_left_out_last_layer_carries_no_adapter(toy, tmp_path):
    setup = toy["setup"]
    layers = []

    def hook(step, model):
        if step == 0:
            layers.extend(n for n, _ in model.named_parameters() if ".layer.1." in n)

    out = train_tlr_task_adapter(
        setup.backbone,
        _las(toy, "en", "es"),
        toy["data"],
        "nli",
        tmp_path / "lo",
        seed=1,
        hparams={**HP, "max_steps": 2},
        leave_out=[1],
        step_hook=hook,
    )
    assert not [n for n in layers if "adapters" in n]  # neither LA nor TA in layer 1
    keys = _weights(out).keys()
    assert any(".layer.0." in k for k in keys) and not any(".layer.1." in k for k in keys)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["config"]["leave_out"] == [1]


def test_bad_language_adapter_lists_fail_before_training(toy, tmp_path):
    setup = toy["setup"]

    def run(dirs, **kw):
        return train_tlr_task_adapter(
            setup.backbone, dirs, toy["data"], "nli", tmp_path / "x", seed=1, hparams=HP, **kw
        )

    with pytest.raises(LangarithError, match="empty language-adapter list"):
        run([])
    with pytest.raises(LangarithError, match="twice"):
        run(_las(toy, "en", "es", "en"))
    other = tmp_path / "other"
    shutil.copytree(setup.lang["es"], other)
    meta = (
        json.loads((other / "metadata.json").read_text())
        if (other / "metadata.json").exists()
        else {}
    )
    meta["backbone"] = {"name": "elsewhere", "config_sha256": "0" * 64}
    (other / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(LangarithError, match="another backbone"):
        run([setup.lang["en"], other])
    left = tmp_path / "left"
    shutil.copytree(setup.lang["es"], left)
    config = json.loads((left / "adapter_config.json").read_text())
    config["config"]["leave_out"] = [0]
    (left / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(LangarithError, match="leaves out layers"):
        run([setup.lang["en"], left], leave_out=[1])
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- variants


def test_variant_languages_match_hand_written_lists():
    kw = {"source": "en", "task_targets": ["ha", "yo"], "all_targets": ["ha", "yo", "gn", "qu"]}
    expected = {
        "madx": ["en"],
        "target": ["yo"],
        "bilingual": ["en", "yo"],
        "task_multi": ["en", "ha", "yo"],
        "all_multi": ["en", "ha", "yo", "gn", "qu"],
        "leave_out_task": ["en", "gn", "qu"],
        "leave_out_targ": ["en", "ha", "gn", "qu"],
    }
    for variant, langs in expected.items():
        assert variant_languages(variant, target="yo", **kw) == langs, variant
    assert scenario_name("all_multi") == "tlr-all-multi"
    assert scenario_name("leave_out_targ") == "tlr-leave-out-targ"
    with pytest.raises(LangarithError, match="no language adapter"):
        variant_languages(
            "leave_out_task", source="en", target=None, task_targets=["en"], all_targets=[]
        )
    with pytest.raises(LangarithError, match="per target"):
        variant_languages("target", source="en", target=None, task_targets=[], all_targets=[])


def _config(**tlr):
    return {
        "models": [{"name": "tiny"}],
        "seeds": [1, 2],
        "languages": ["en", "es", "de", "ru"],
        "source_language": "en",
        "tasks": {"ner": {"train_dataset": "wikiann"}, "nli": {"train_dataset": "xnli"}},
        "tlr": {"tasks": {"ner": ["es", "de"], "nli": ["es", "de"]}, **tlr},
    }


def test_plan_is_cached_per_config_content_not_per_object():
    config = _config(variants=["madx", "target"], seeds=[1])
    first = tlr_plan(config)
    assert tlr_plan(copy.deepcopy(config)) is first  # same content: the cached plan
    config["tlr"]["tasks"]["ner"].append("ru")  # changed in place: planned again
    changed = tlr_plan(config)
    assert changed is not first
    assert [a.target for a in changed.adapters if a.variant == "target" and a.task == "ner"] == [
        "es",
        "de",
        "ru",
    ]


def test_plan_and_its_refusals():
    plan = tlr_plan(_config(variants=["madx", "target", "all_multi"], seeds=[1]))
    assert plan is not None
    ner = [(a.variant, a.target, a.languages) for a in plan.adapters if a.task == "ner"]
    assert ner == [
        ("madx", "all", ("en",)),
        ("target", "es", ("es",)),
        ("target", "de", ("de",)),
        ("all_multi", "all", ("en", "es", "de")),
    ]
    assert plan.madx_core is False  # leave_out_last defaults to true: MAD-X 2.0 retrained
    core = tlr_plan(_config(variants=["madx", "target"], leave_out_last=False))
    assert core.madx_core and all(a.variant != "madx" for a in core.trained("ner"))
    assert len(plan.outputs({})) == 2 * 3 * 2 + 2  # tasks x variants x targets + t-tests
    # fi is outside languages: but on Wikipedia, so the core trains its adapter on demand
    assert tlr_plan(_config(tasks={"ner": ["es", "fi"]}, variants=["madx"])).languages() == [
        "en",
        "es",
        "fi",
    ]
    americas = {"nli_am": {"kind": "nli", "train_dataset": "xnli", "eval_dataset": "americasnli"}}
    with pytest.raises(LangarithError, match=r"no text .*data\.text"):
        tlr_plan(_config(tasks={"nli_am": ["bzd"]}, datasets=americas, variants=["madx"]))
    with_text = _config(tasks={"nli_am": ["bzd"]}, datasets=americas, variants=["madx"])
    with_text["data"] = {"text": {"bzd": "resources/text/bzd/SHA256SUMS"}}
    assert tlr_plan(with_text).languages() == ["en", "bzd"]


def test_per_model_tasks_restrict_plan_counts_and_outputs():
    """tlr.per_model (the seed's Table 6: XLM-R on a subset of the tasks): the model's
    adapters, score files, jobs and language adapters are of its tasks only."""
    config = _config(models=["tiny", "tiny2"], per_model={"tiny2": {"tasks": ["nli"]}}, seeds=[1])
    config["models"] = [{"name": "tiny"}, {"name": "tiny2"}]
    config["tlr"]["tasks"] = {"ner": ["es", "de"], "nli": ["ru"]}
    config["tlr"]["variants"] = ["madx", "target", "all_multi"]
    plan = tlr_plan(config)
    assert plan.tasks_of("tiny") == ["ner", "nli"] and plan.tasks_of("tiny2") == ["nli"]
    assert {a.task for a in plan.adapters if a.model == "tiny2"} == {"nli"}
    # ALL-MULTI of nli keeps every task's targets, so tiny2 still stacks es and de
    assert plan.languages_of("tiny2") == ["en", "ru", "es", "de"]
    outputs = plan.outputs({})
    assert not [o for o in outputs if "/tiny2/" in o and "ner" in o]
    assert len([o for o in outputs if "/tiny2/" in o]) == 3 * 1 + 1  # variants x ru + t-test
    jobs = tlr_job_counts(config)
    assert jobs.counts["tlr_train_ner"] == 1 and jobs.counts["tlr_train_nli"] == 2
    with pytest.raises(LangarithError, match="per_model"):
        tlr_plan(_config(per_model={"other": {"tasks": ["nli"]}}))
    with pytest.raises(LangarithError, match="per_model.tiny.tasks names none"):
        tlr_plan(_config(per_model={"tiny": {"tasks": ["qa"]}}))


def test_komi_zyrian_reads_the_kv_wikipedia():
    """UD's kpv has a corpus: Wikipedia's edition of Komi is kv."""
    from langarith.data import DATASETS, dataset_covers
    from langarith.data.real import _hub_config

    assert dataset_covers("wikipedia", "kpv") and dataset_covers("ud", "kpv")
    assert _hub_config(DATASETS["wikipedia"], "kpv", {"dump": "20231101"}) == "20231101.kv"
    assert _hub_config(DATASETS["wikipedia"], "myv", {"dump": "20231101"}) == "20231101.myv"


def test_targets_outside_languages_get_adapters_for_the_arm_only():
    """A target outside ``languages:`` costs one core adapter per TLR model and seed (not
    one per core model and seed), with its Wikipedia and corpus."""
    config = _config(tasks={"ner": ["es", "fi", "yo"]}, seeds=[2], variants=["madx", "target"])
    config["models"] = [{"name": "tiny"}, {"name": "tiny2"}]
    config["tlr"]["models"] = ["tiny"]
    jobs = tlr_job_counts(config)
    extra = {(m, lang, s) for m, lang, s in jobs.language_adapters} - {
        (m, lang, s) for m in ("tiny", "tiny2") for lang in config["languages"] for s in (1, 2)
    }
    assert extra == {("tiny", "fi", 2), ("tiny", "yo", 2)}
    assert {("tiny", "fi"), ("tiny", "yo")} <= jobs.corpora
    assert any(d.rstrip("/").endswith("wikipedia/yo") for d in jobs.data)
    # the core's count takes the union (tests/test_cost.py: snakemake -n on config.yaml)
    with pytest.raises(LangarithError, match="leave_out_task"):
        tlr_plan(_config(variants=["madx", "leave_out_task"]))
    with pytest.raises(LangarithError, match="twice"):
        tlr_plan(_config(tasks={"ner": ["es", "es"]}, variants=["madx", "task_multi"]))
    assert tlr_plan({"tasks": {}}) is None


# ----------------------------------------------------------------------------- metrics


def test_las_on_a_hand_worked_case():
    # 2 sentences, 5 words: head and relation right on words 1, 3 and 5 only
    gold_heads, gold_rels = [[2, 0, 2], [0, 1]], [["nsubj", "root", "obj"], ["root", "punct"]]
    pred_heads, pred_rels = [[2, 0, 1], [0, 1]], [["nsubj", "obj", "obj"], ["root", "punct"]]
    assert las(gold_heads, gold_rels, pred_heads, pred_rels) == pytest.approx(100 * 3 / 5)
    with pytest.raises(LangarithError, match="sentence 1"):
        las(gold_heads, gold_rels, [[2, 0, 1], [0]], [["a", "b", "c"], ["d"]])


def test_misc_and_date_read_as_o():
    tags = ["B-PER", "I-PER", "O", "B-MISC", "I-MISC", "B-DATE", "B-LOC"]
    assert map_tags_to_o(tags, ["MISC", "DATE"]) == ["B-PER", "I-PER", "O", "O", "O", "O", "B-LOC"]
    assert map_tags_to_o(tags, []) == tags


def test_paired_t_test_on_a_hand_worked_case():
    # differences 1, 1, 2, 0: mean 1, sd sqrt(2/3), t = 1 / (sqrt(2/3) / 2) = 2.449, df 3
    result = paired_t_test([1, 2, 3, 4], [2, 3, 5, 4])
    assert result.t == pytest.approx(2.4494897, rel=1e-6)
    assert result.p == pytest.approx(0.0917, abs=5e-4)
    assert not result.significant()
    same = paired_t_test([1, 2, 3], [1, 2, 3])
    assert (same.t, same.p) == (0.0, 1.0)
    # per-item scores: NER sentence F1 from (tp, predicted, gold), empty sentence = 100
    ner = per_item_scores("ner", np.array([[1, 2, 2], [0, 0, 0], [0, 1, 0]]))
    assert ner.tolist() == [50.0, 100.0, 0.0]


# ----------------------------------------------------------------------------- scoring


def test_scores_are_core_score_files_and_feed_the_table(toy, tmp_path):
    from langarith.report import read_scores, write_table
    from langarith.tlr.scoring import job_from_lists, score_tlr_job

    setup = toy["setup"]
    hp = {**HP, "max_steps": 2}
    adapters = {}
    for variant, langs in (("madx", ["en"]), ("all_multi", ["en", "es", "it"])):
        adapters[variant] = train_tlr_task_adapter(
            setup.backbone,
            _las(toy, *langs),
            toy["data"],
            "nli",
            tmp_path / variant,
            seed=1,
            hparams=hp,
            leave_out=[1],
        )
    scores = {v: {"es": str(tmp_path / f"scores/{scenario_name(v)}/es.csv")} for v in adapters}
    job = job_from_lists(
        model="toy",
        task="nli",
        kind="nli",
        seed=1,
        backbone=str(setup.backbone),
        targets=["es"],
        lang_adapters={"es": str(setup.lang["es"])},
        test_data={"es": str(setup.data_dir("nli", "es"))},
        adapters={v: {"es": str(d)} for v, d in adapters.items()},
        scores=scores,
        ttest=str(tmp_path / "ttest.csv"),
    )
    written = score_tlr_job(job, device="cpu")
    frame = read_scores([scores[v]["es"] for v in adapters])
    assert set(frame["method_name"]) == {"MAD-X", "ALL-MULTI"}
    assert set(frame["scenario"]) == {"tlr-madx", "tlr-all-multi"}
    assert (frame["split"] == "test").all() and (frame["metric"] == "accuracy").all()
    ttest = (tmp_path / "ttest.csv").read_text().splitlines()
    assert ttest[0].startswith("model,task,target,seed,method,items") and len(ttest) == 2
    assert ",16," in ttest[1]  # 16 test items paired
    out = {"csv": tmp_path / "tlr.csv", "md": tmp_path / "tlr.md"}
    inputs = {"scores": [scores[v]["es"] for v in adapters], "ttests": [str(written[-1])]}
    write_table("tlr", inputs, out)
    md = out["md"].read_text()
    assert "ALL-MULTI" in md and "MAD-X" in md and "sig_better" in md


def test_schema_variants_and_registries_agree():
    import yaml

    from langarith.arm_registry import arm_job_counts
    from langarith.report import FIGURES, TABLES
    from langarith.tlr.variants import VARIANTS

    root = Path(__file__).resolve().parents[1]
    schema = yaml.safe_load((root / "workflow/schemas/config.schema.yaml").read_text())
    enum = schema["properties"]["tlr"]["properties"]["variants"]["items"]["enum"]
    assert tuple(enum) == VARIANTS
    assert "tlr" in TABLES and "tlr_averages" in FIGURES
    config = _config(variants=["madx", "target"])
    config["models"] = [{"name": "tiny"}]
    assert arm_job_counts(config) == {
        "tlr_score_ner": 2,
        "tlr_score_nli": 2,
        "tlr_train_ner": 2,
        "tlr_train_nli": 2,
    }


# ----------------------------------------------------------------------------- dependency parsing


def test_attachment_scores_on_a_hand_worked_case():
    from langarith.metrics import attachment_scores

    # "Dogs bark ." and "Cats sleep": 5 words, punctuation counted like any word.
    gold_heads, gold_rels = [[2, 0, 2], [2, 0]], [["nsubj", "root", "punct"], ["nsubj", "root"]]
    # word 1: right; word 2: right; "." head wrong; "Cats" head right, relation wrong;
    # "sleep" right -> UAS 4/5, LAS 3/5
    pred_heads, pred_rels = [[2, 0, 1], [2, 0]], [["nsubj", "root", "punct"], ["obj", "root"]]
    scores = attachment_scores(gold_heads, gold_rels, pred_heads, pred_rels)
    assert scores == {"las": pytest.approx(60.0), "uas": pytest.approx(80.0)}
    assert las(gold_heads, gold_rels, pred_heads, pred_rels) == pytest.approx(60.0)
    # per sentence LAS for the t-test: [labelled right, head right, words]
    items = per_item_scores("dp", np.array([[2, 2, 3], [1, 2, 2]]))
    assert items.tolist() == pytest.approx([200 / 3, 50.0])


_NOUNS = ["dog", "cat", "house", "river", "tree", "bird"]
_VERBS = ["sees", "likes", "finds", "hears"]


def _treebank(n: int, offset: int) -> str:
    """CoNLL-U of ``n`` sentences "the N V a N ." (det noun verb det noun punct)."""
    blocks = []
    for i in range(offset, offset + n):
        words = [
            ("the", 2, "det"),
            (_NOUNS[i % 6], 3, "nsubj"),
            (_VERBS[i % 4], 0, "root"),
            ("a", 5, "det"),
            (_NOUNS[(i + 2) % 6], 3, "obj:x" if i % 2 else "obj"),
            (".", 3, "punct"),
        ]
        lines = [f"# sent_id = s{i}"] + [
            f"{k}\t{form}\t_\t_\t_\t_\t{head}\t{rel}\t_\t_"
            for k, (form, head, rel) in enumerate(words, start=1)
        ]
        if i % 3 == 0:  # a multiword token line, skipped
            lines.insert(1, "1-2\tthedog\t_\t_\t_\t_\t_\t_\t_\t_")
        blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks)


@pytest.fixture(scope="module")
def ud(toy):
    from langarith.data.real import prepare_real_dataset

    release = toy["root"] / "ud-release" / "UD_English-EWT"
    release.mkdir(parents=True)
    for split, n, offset in (("train", 24, 0), ("dev", 8, 100), ("test", 8, 200)):
        (release / f"en_ewt-ud-{split}.conllu").write_text(_treebank(n, offset))
    options = {"local_path": str(release.parent)}
    return prepare_real_dataset("ud", "en", toy["root"] / "ud-en", options=options)


def test_dp_trains_through_cycled_stacks_and_is_scored_with_las(toy, ud, tmp_path):
    from langarith.backbone.folder import load_tokenizer
    from langarith.data import read_split
    from langarith.evaluate.tasks import encode_split
    from langarith.modeling import load_model_for_task
    from langarith.report import read_scores
    from langarith.tlr.scoring import job_from_lists, score_tlr_job
    from langarith.train.task_features import encode_task, evaluate_task

    setup = toy["setup"]
    hp = {**HP, "lr": 5e-3, "eval_every": 3}
    # K = 0 is the core trainer with the biaffine head, bit for bit
    core = train_task_adapter(
        setup.backbone, setup.lang["en"], ud, "dp", tmp_path / "core", seed=2, hparams=hp
    )
    seen: list[str] = []
    adapters = {
        "madx": train_tlr_task_adapter(
            setup.backbone, _las(toy, "en"), ud, "dp", tmp_path / "madx", seed=2, hparams=hp
        ),
        "bilingual": train_tlr_task_adapter(
            setup.backbone,
            _las(toy, "en", "es"),
            ud,
            "dp",
            tmp_path / "bilingual",
            seed=2,
            hparams=hp,
            step_hook=lambda step, model: seen.append(str(model.active_adapters)),
        ),
    }
    a, b = _weights(core), _weights(adapters["madx"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_file(core / HEAD).keys() == load_file(adapters["madx"] / HEAD).keys()
    assert all("biaffine" in k for k in load_file(core / HEAD))
    assert ["lang" in s and "lang1" not in s for s in seen] == [True, False] * 3
    meta = json.loads((adapters["bilingual"] / "metadata.json").read_text())
    assert meta["metric"] == "las" and meta["steps"] == 6 and len(meta["eval_history"]) == 2
    assert meta["labels"][:2] == ["acl", "advcl"] and len(meta["labels"]) == 37
    assert not all(torch.equal(a[k], _weights(adapters["bilingual"])[k]) for k in a)

    # evaluation during training (task_features) and the fast split scorer agree
    tokenizer = load_tokenizer(setup.backbone)
    rows = read_split(ud, "test")
    model = load_model_for_task(setup.backbone, adapters["bilingual"], setup.lang["es"])
    labels = meta["labels"]
    slow = evaluate_task(
        model, "dp", encode_task("dp", rows, tokenizer, labels=labels), rows=rows, labels=labels
    )
    split = encode_split("test", rows, "dp", tokenizer, labels=labels, max_length=32)
    with torch.inference_mode():
        parts = [split.reduce(model(**batch.inputs), batch) for batch in split.batches]
    fast = split.finish(parts)
    assert fast == pytest.approx(slow) and 0 <= fast["las"] <= fast["uas"] <= 100
    stats = split.example_stats(parts)
    assert stats[:, 2].tolist() == [6.0] * 8  # every word counted, punctuation included
    assert split.stats_metric(stats.sum(axis=0), 8) == pytest.approx(fast["las"])

    # the arm's scoring job: LAS per variant, t-test over the sentences
    scores = {v: {"es": str(tmp_path / f"scores/{scenario_name(v)}/es.csv")} for v in adapters}
    job = job_from_lists(
        model="toy",
        task="dp",
        kind="dp",
        seed=2,
        backbone=str(setup.backbone),
        targets=["es"],
        lang_adapters={"es": str(setup.lang["es"])},
        test_data={"es": str(ud)},
        adapters={v: {"es": str(d)} for v, d in adapters.items()},
        scores=scores,
        ttest=str(tmp_path / "ttest.csv"),
    )
    score_tlr_job(job, device="cpu")
    frame = read_scores([scores[v]["es"] for v in adapters])
    assert set(frame["metric"]) == {"las"} and set(frame["method_name"]) == {"MAD-X", "BILINGUAL"}
    bilingual = frame[frame["method_name"] == "BILINGUAL"]["score"].iloc[0]
    assert bilingual == pytest.approx(fast["las"])
    assert ",8," in (tmp_path / "ttest.csv").read_text().splitlines()[1]  # 8 sentences


def test_parsing_head_ignores_only_dp_padding_on_xlmr():
    """XLM-R's pad id is 1, where every sentence's first word starts: the head must
    compare word starts and gold heads with the features' padding instead."""
    from adapters import AutoAdapterModel
    from transformers import XLMRobertaConfig

    from langarith.modeling import activate_task_stack
    from langarith.task_kinds import DP_PAD

    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        pad_token_id=1,
    )
    model = AutoAdapterModel.from_config(config)
    model.add_adapter("dp")
    model.add_dependency_parsing_head("dp", num_labels=3, id2label={0: "a", 1: "b", 2: "root"})
    for p in model.heads["dp"].parameters():  # the biaffine weights start at zero
        torch.nn.init.normal_(p)
    activate_task_stack(model, "dp", None)
    assert model.heads["dp"].model_config.pad_token_id == DP_PAD
    assert model.config.pad_token_id == 1  # the backbone's own config is untouched
    model.eval()
    # <s> w1 w2 </s>: word starts 1, 2 and the end 3; "w1" -> w2, "w2" is the root
    batch = {
        "input_ids": torch.tensor([[0, 7, 8, 2]]),
        "attention_mask": torch.ones(1, 4, dtype=torch.long),
        "word_starts": torch.tensor([[1, 2, 3, DP_PAD]]),
        "labels_arcs": torch.tensor([[2, 0, DP_PAD, DP_PAD]]),
        "labels_rels": torch.tensor([[0, 2, DP_PAD, DP_PAD]]),
    }
    with torch.no_grad():
        out = model(**batch)
        hidden = model.base_model(**{k: batch[k] for k in ("input_ids", "attention_mask")})[0]
    # the pooled word vectors are the sub-tokens 1 and 2: both words are there
    head = model.heads["dp"]
    words = head._merge_subword_tokens(hidden, batch["word_starts"])
    assert torch.allclose(words[0, 0], hidden[0, 1]) and torch.allclose(words[0, 1], hidden[0, 2])
    assert words[0, 2:].abs().sum() == 0
    # the loss covers both words, the root's head (0) included
    arcs, rels = out.arc_preds[0, :2], out.rel_preds[0, torch.arange(2), torch.tensor([2, 0])]
    ce = torch.nn.functional.cross_entropy
    expected = ce(arcs, torch.tensor([2, 0])) + ce(rels, torch.tensor([0, 2]))
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


# ----------------------------------------------------------------------------- ALL-MULTI + LA


def test_all_multi_under_language_arithmetic_is_one_scenario():
    """zero_shot_tlr: zero_shot's methods with the TLR ALL-MULTI task adapter, only on
    tlr.models and tlr.seeds, and refused for a task without that adapter."""
    from langarith.evaluate.scenarios import plan_jobs

    config = _config(seeds=[2])
    config.update(
        models=[{"name": "tiny"}, {"name": "other"}],
        tasks={
            **config["tasks"],
            "nli": {
                "kind": "nli",
                "train_dataset": "xnli",
                "eval_dataset": "xnli",
                "targets": ["es", "de", "ru"],
            },
        },
        scenarios={"zero_shot": {"tasks": ["nli"]}, "zero_shot_tlr": {"tasks": ["nli"]}},
        lambda_grid={"start": 0.0, "stop": 1.0, "step": 0.5},
    )
    config["tlr"]["models"] = ["tiny"]
    related = {"es": "de", "de": "es", "ru": "es"}
    jobs = plan_jobs(config, ["zero_shot", "zero_shot_tlr"], related=related)
    tlr_jobs = [j for j in jobs if j.scenario == "zero_shot_tlr"]
    assert {(j.model, j.seed, j.target) for j in tlr_jobs} == {
        ("tiny", 2, "es"),
        ("tiny", 2, "de"),
        ("tiny", 2, "ru"),
    }
    zero = {(j.model, j.seed, j.target): j for j in jobs if j.scenario == "zero_shot"}
    assert len(zero) == 2 * 2 * 3  # every model and seed of the config
    for job in tlr_jobs:
        assert job.task_adapter == "results/adapters/tiny/task-tlr/all_multi/nli/all/seed2"
        same = zero[("tiny", 2, job.target)]
        assert same.task_adapter == "results/adapters/tiny/task/nli/seed2"
        assert (job.adapters, job.baselines, job.curves) == (
            same.adapters,
            same.baselines,
            same.curves,
        )
        assert job.output == f"results/scores/zero_shot_tlr/tiny/nli/{job.target}/seed2.csv"
    config["tlr"]["variants"] = ["madx", "target"]
    with pytest.raises(LangarithError, match="zero_shot_tlr.*ALL-MULTI"):
        plan_jobs(config, ["zero_shot_tlr"], related=related)


def test_all_multi_under_language_arithmetic_waits_for_the_tlr_training_job(tmp_path):
    """``snakemake -n`` on the demo with zero_shot_tlr and the paper's language adapters:
    the zero_shot_tlr job needs the TLR training job (not the core's English task
    adapter), which needs the paper family (as many jobs as ``langarith plan`` counts)."""
    import yaml
    from snakemake_runs import run_snakemake

    from langarith.arm_registry import arm_job_counts
    from langarith.config import load_config

    root = Path(__file__).resolve().parents[1]
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        "scenarios:\n  zero_shot_tlr: { tasks: [nli] }\ntlr:\n  language_adapters: paper\n",
        encoding="utf-8",
    )
    target = "results/scores/zero_shot_tlr/tinybert/nli/es/seed1.csv"
    result = run_snakemake(
        "-n",
        target,
        "--quiet",
        "rules",
        "--configfile",
        str(root / "config" / "demo.yaml"),
        str(overlay),
        directory=tmp_path / "work",
    )
    assert result.returncode == 0, result.output[-3000:]
    rows = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", result.output, flags=re.M)}
    assert rows["tlr_train_nli"] == 1 and rows["lambda_grid"] == 1
    assert "train_task_adapter" not in rows
    config = load_config(root / "config" / "demo.yaml")
    config["tlr"]["language_adapters"] = "paper"
    counts = arm_job_counts(config)
    assert rows["tlr_paper_init"] == counts["tlr_paper_init"] == 1
    # en + every TLR target of the demo (es ru bg of NLI, it of NER), one seed
    assert rows["tlr_paper_language_adapter"] == counts["tlr_paper_language_adapter"] == 5
    assert yaml.safe_load(overlay.read_text())["tlr"]["language_adapters"] == "paper"


def test_paper_language_adapters_are_a_family_of_their_own():
    from langarith.tlr.variants import paper_la_config, paper_la_hparams, train_specs

    config = _config(variants=["madx", "bilingual"], leave_out_last=False)
    config["tasks"]["ner"]["kind"] = "ner"
    core = train_specs(config, "ner", "tiny", 1)
    assert core[0]["lang_adapters"] == [  # bilingual es (MAD-X is the core's adapter)
        "results/adapters/tiny/lang/en/seed1",
        "results/adapters/tiny/lang/es/seed1",
    ]
    assert tlr_plan(config).madx_core
    config["tlr"]["language_adapters"] = "paper"
    paper = train_specs(config, "ner", "tiny", 1)
    assert [s["lang_adapters"] for s in paper][:2] == [
        ["results/adapters/tiny/lang-paper/en/seed1"],
        ["results/adapters/tiny/lang-paper/en/seed1", "results/adapters/tiny/lang-paper/es/seed1"],
    ]
    assert not tlr_plan(config).madx_core  # the core's MAD-X stacks on the core's LAs
    hp = paper_la_hparams(config, "es")
    assert (hp["batch_size"], hp["lr"], hp["block_size"], hp["max_steps"]) == (8, 5e-5, 256, 100000)
    assert paper_la_config(config)["reduction_factor"] == 2
    assert paper_la_config(config)["architecture"] == "seq_bn_inv"
    config["tlr"]["paper_language_adapter"] = {
        "training": {"max_steps": 50},
        "per_language": {"de": {"max_steps": 30}},
    }
    assert paper_la_hparams(config, "es")["max_steps"] == 50
    assert paper_la_hparams(config, "de")["max_steps"] == 30
    config["tlr"]["paper_language_adapter"]["per_language"]["de"] = {"steps": 30}
    with pytest.raises(LangarithError, match="steps"):
        tlr_plan(config)


# ----------------------------------------------------------------------------- alignment


def test_alignment_rows_per_layer_and_identical_inputs_give_one(toy, tmp_path):
    """The alignment CSV: one row per (variant, layer); English against itself (same
    text, same language adapter) has cosine 1 at every layer, a real target less."""
    import pandas as pd

    from langarith.tlr.alignment import AlignmentRun, write_alignment

    setup = toy["setup"]
    ta = train_tlr_task_adapter(
        setup.backbone,
        _las(toy, "en"),
        toy["data"],
        "nli",
        tmp_path / "madx",
        seed=1,
        hparams={**HP, "max_steps": 2},
        leave_out=[1],
    )
    same = {"en": setup.lang["en"], "es": setup.lang["en"]}
    real = {"en": setup.lang["en"], "es": setup.lang["es"]}
    runs = [
        AlignmentRun("madx", "MAD-X", 1, ta, same),
        AlignmentRun("all_multi", "ALL-MULTI", 1, ta, real),
    ]
    common = dict(model="toy", task="nli", kind="nli", backbone=setup.backbone, source="en")
    out = write_alignment(
        tmp_path / "same.csv",
        data={"en": toy["data"], "es": toy["data"]},
        runs=runs[:1],
        examples=10,
        **common,
    )
    frame = pd.read_csv(out)
    layers = 2 + 1  # the toy backbone's layers and the embedding output
    assert list(frame["layer"]) == list(range(layers))
    assert np.allclose(frame["cosine"], 1.0, atol=1e-5)
    assert set(frame["examples"]) == {10} and set(frame["targets"]) == {"es"}
    es_data = setup.data_dir("nli", "es")
    out = write_alignment(
        tmp_path / "real.csv",
        data={"en": toy["data"], "es": es_data},
        runs=runs,
        examples=10,
        **common,
    )
    frame = pd.read_csv(out)
    assert len(frame) == 2 * layers
    assert list(frame.groupby("variant", sort=False).size()) == [layers, layers]
    assert (frame["cosine"] < 0.9999).any() and frame["cosine"].between(-1, 1).all()


def test_alignment_is_planned_and_counted():
    from langarith.arm_registry import arm_job_counts
    from langarith.report import FIGURES
    from langarith.tlr.variants import alignment_inputs, alignment_spec

    config = _config(variants=["madx", "target", "all_multi"], alignment={"examples": 7})
    config["tasks"]["ner"].update(kind="ner", eval_dataset="wikiann")
    spec = alignment_spec(config, "tiny")
    assert spec["output"] == "results/analysis/tiny/tlr_alignment.csv"
    assert spec["task"] == "ner" and spec["examples"] == 7
    assert [(r["variant"], r["seed"]) for r in spec["runs"]] == [
        ("madx", 1),
        ("madx", 2),
        ("all_multi", 1),
        ("all_multi", 2),
    ]
    assert spec["runs"][2]["task_adapter"] == (
        "results/adapters/tiny/task-tlr/all_multi/ner/all/seed1"
    )
    assert list(spec["runs"][0]["lang_adapters"]) == ["en", "es", "de"]
    assert "resources/data/wikiann/en" in alignment_inputs(config, "tiny")
    assert arm_job_counts(config)["tlr_alignment"] == 1
    assert FIGURES["tlr_alignment"].instances(config) == [{"model": "tiny"}]
    assert FIGURES["tlr_alignment"].instances(_config(variants=["madx"])) == []
    with pytest.raises(LangarithError, match="per target"):
        alignment_spec(
            _config(variants=["madx", "target"], alignment={"variants": ["madx", "target"]}),
            "tiny",
        )
    with pytest.raises(LangarithError, match="not under tlr.variants"):
        alignment_spec(_config(variants=["madx"], alignment={"examples": 3}), "tiny")


# ----------------------------------------------------------------------------- BAD-X


def _wiki(root: Path, lang: str, n_train: int, n_val: int = 6) -> Path:
    from langarith.data import write_dataset

    words = {"en": "the cat sat on a mat and ran", "es": "el gato se sienta en la casa"}[lang]
    vocab = words.split()

    def doc(i: int) -> str:
        return " ".join(vocab[(i + k) % len(vocab)] for k in range(40)) + "."

    return write_dataset(
        root / "wikipedia" / lang,
        "wikipedia",
        lang,
        {
            "train": [{"id": f"{lang}-t{i}", "text": doc(i)} for i in range(n_train)],
            "validation": [{"id": f"{lang}-v{i}", "text": doc(i)} for i in range(n_val)],
        },
        source="test",
        revision="1",
        options={},
    )


def test_badx_bilingual_adapter_task_adapter_and_scoring(toy, tmp_path):
    """BAD-X: documents of en and es in turn (the longer one's rest at the end), a
    bilingual adapter without invertible adapter by the core's trainer, the TLR trainer
    with it as the one adapter, and scoring through the same adapter."""
    from langarith.data import read_manifest, read_split
    from langarith.tlr.badx import train_badx_language_adapter, write_bilingual_corpus
    from langarith.tlr.scoring import job_from_lists
    from langarith.tlr.variants import badx_la_config
    from langarith.train.language_adapter import init_language_adapter

    setup = toy["setup"]
    en, es = _wiki(tmp_path, "en", 5), _wiki(tmp_path, "es", 3)
    corpus = write_bilingual_corpus(en, es, tmp_path / "corpus")
    ids = [row["id"] for row in read_split(corpus, "train")]
    assert ids == ["en-t0", "es-t0", "en-t1", "es-t1", "en-t2", "es-t2", "en-t3", "en-t4"]
    assert read_manifest(corpus)["language"] == "en-es"
    with pytest.raises(LangarithError, match="two languages"):
        write_bilingual_corpus(en, en, tmp_path / "same")

    config = {"language_adapter": {"adapter_config": {"architecture": "seq_bn_inv"}}}
    la_config = badx_la_config(config)
    assert la_config["architecture"] == "seq_bn" and la_config["reduction_factor"] == 2
    init = init_language_adapter(
        setup.backbone,
        tmp_path / "badx-init",
        adapter_config={k: v for k, v in la_config.items() if k != "init_seed"},
        seed=0,
    )
    hp = {"max_steps": 2, "batch_size": 2, "block_size": 16, "eval_every": 1}
    hp.update(checkpoint_every=0, max_eval_blocks=2)
    badx = train_badx_language_adapter(
        setup.backbone, init, corpus, tmp_path / "en-es", seed=1, hparams=hp
    )
    saved = json.loads((badx / "adapter_config.json").read_text())["config"]
    assert saved["inv_adapter"] is None
    assert json.loads((badx / "metadata.json").read_text())["language"] == "en-es"
    ta = train_tlr_task_adapter(
        setup.backbone,
        [badx],
        toy["data"],
        "nli",
        tmp_path / "ta",
        seed=1,
        hparams={**HP, "max_steps": 2},
        languages=["en-es"],
    )
    meta = json.loads((ta / "metadata.json").read_text())
    assert meta["tlr"]["languages"] == ["en-es"]
    job = job_from_lists(
        model="toy",
        task="nli",
        kind="nli",
        seed=1,
        backbone=str(setup.backbone),
        targets=["es"],
        lang_adapters={"es": str(setup.lang["es"])},
        test_data={"es": str(setup.data_dir("nli", "es"))},
        adapters={"madx": {"es": str(ta)}, "badx": {"es": str(ta)}},
        scores={},
        ttest=str(tmp_path / "t.csv"),
        inference_lang_adapters={"badx": {"es": str(badx)}},
    )
    assert job.lang_adapter("badx", "es") == badx
    assert job.lang_adapter("madx", "es") == setup.lang["es"]


def test_badx_is_planned_per_pair_on_its_tasks():
    from langarith.arm_registry import arm_job_counts
    from langarith.tlr.variants import score_inputs, score_spec, train_specs

    config = _config(variants=["madx", "badx"], badx={"tasks": ["nli"]}, seeds=[1])
    for task in config["tasks"]:
        config["tasks"][task].update(kind=task, eval_dataset=config["tasks"][task]["train_dataset"])
    assert variant_languages(
        "badx", source="en", target="es", task_targets=["es"], all_targets=["es"]
    ) == ["en-es"]
    plan = tlr_plan(config)
    assert plan.variants_of("ner") == ["madx"] and plan.variants_of("nli") == ["madx", "badx"]
    assert plan.badx_pairs() == [("en", "de"), ("en", "es")]
    specs = train_specs(config, "nli", "tiny", 1)
    assert specs[1] == {
        "out": "results/adapters/tiny/task-tlr/badx/nli/es/seed1",
        "lang_adapters": ["results/adapters/tiny/language-badx/en-es/seed1"],
        "languages": ["en-es"],
    }
    spec = score_spec(config, "nli", "tiny", 1)
    assert spec["inference_lang_adapters"]["badx"]["de"] == (
        "results/adapters/tiny/language-badx/en-de/seed1"
    )
    assert "results/adapters/tiny/language-badx/en-de/seed1" in score_inputs(
        config, "nli", "tiny", 1
    )
    assert score_spec(config, "ner", "tiny", 1)["inference_lang_adapters"] == {}
    counts = arm_job_counts(config)
    assert (counts["tlr_badx_init"], counts["tlr_badx_corpus"]) == (1, 2)
    assert counts["tlr_badx_language_adapter"] == 2
    with pytest.raises(LangarithError, match="tlr.badx.tasks"):
        tlr_plan(_config(variants=["madx", "badx"], badx={"tasks": ["qa"]}))


# ----------------------------------------------------------------------------- the arm's own data


def _own_config(**tlr):
    """The paper's layout in small: NER on MasakhaNER from CoNLL-2003 (replacing the core's
    WikiANN ``ner``), TyDiQA-GoldP beside the core's QA task."""
    config = _config(
        tasks={"ner": ["ha", "sw"], "qa": ["ar"], "qa_tydiqa": ["ar", "sw"]},
        datasets={
            "ner": {"kind": "ner", "train_dataset": "conll2003", "eval_dataset": "masakhaner"},
            "qa_tydiqa": {"kind": "qa", "train_dataset": "squad", "eval_dataset": "tydiqa"},
        },
        o_labels=["MISC", "DATE"],
        variants=["madx", "target", "all_multi"],
        **tlr,
    )
    config["languages"] = ["en", "ha", "sw", "ar"]
    config["tasks"]["qa"] = {"kind": "qa", "train_dataset": "squad", "eval_dataset": "xquad"}
    config["task_adapter"] = {"per_task": {"qa": {"max_length": 384}, "ner": {"max_length": 99}}}
    return config


def test_tasks_of_the_arms_own_datasets():
    from langarith.arm_registry import arm_jobs
    from langarith.tlr.variants import task_data, tlr_hparams, tlr_task

    config = _own_config(leave_out_last=False)
    plan = tlr_plan(config)
    assert plan.languages() == ["en", "ha", "sw", "ar"]  # ALL-MULTI: every task's targets
    all_multi = {a.task: a.languages for a in plan.adapters if a.variant == "all_multi"}
    assert all_multi["qa_tydiqa"] == ("en", "ha", "sw", "ar")
    # the core's MAD-X adapter stands in only for the core's own task (qa), never for a
    # task the arm trains on other data (ner: CoNLL-2003, not the core's WikiANN)
    assert plan.madx_core and plan.core_tasks == {"qa"}
    assert plan.madx_from_core("qa") and not plan.madx_from_core("ner")
    assert any(a.variant == "madx" for a in plan.trained("ner"))
    assert tlr_task(config, "ner").kind == "ner" and not tlr_task(config, "ner").core
    assert task_data(config, "ner", "en", "train_dataset") == "resources/data/conll2003/en"
    assert task_data(config, "ner", "ha", "eval_dataset") == "resources/data/masakhaner/ha"
    assert task_data(config, "qa_tydiqa", "sw", "eval_dataset") == "resources/data/tydiqa/sw"
    # a task of tlr.datasets takes the core's per_task of its kind; the core's `ner` entry
    # still applies to the arm's `ner` by name
    assert tlr_hparams(config, "qa_tydiqa")["max_length"] == 384
    load_arms()
    (jobs,) = [j for j in arm_jobs(config) if "tlr_train_qa_tydiqa" in j.counts]
    assert {"resources/data/conll2003/en", "resources/data/tydiqa/ar"} <= jobs.data
    assert "resources/data/masakhaner/sw" in jobs.data and "resources/data/xquad/ar" in jobs.data


def test_refusals_of_the_arms_own_datasets():
    # DATE of MasakhaNER stays a test type the CoNLL-2003 adapter never learns
    with pytest.raises(LangarithError, match=r"differ in the type\(s\) \['DATE'\]"):
        tlr_plan(_own_config() | {"tlr": {**_own_config()["tlr"], "o_labels": ["MISC"]}})
    with pytest.raises(LangarithError, match=r"\['DATE', 'MISC'\].*tlr.o_labels \[\]"):
        tlr_plan(_own_config() | {"tlr": {**_own_config()["tlr"], "o_labels": []}})
    bad = _own_config()
    bad["tlr"]["tasks"]["qa_tydiqa"] = ["ar", "ha"]
    with pytest.raises(LangarithError, match=r"target\(s\) \['ha'\] are not in tydiqa"):
        tlr_plan(bad)
    bad = _own_config()
    bad["tlr"]["tasks"]["qa_mlqa"] = ["ar"]
    with pytest.raises(LangarithError, match="neither under tasks: nor under tlr.datasets"):
        tlr_plan(bad)
    bad = _own_config()
    bad["tlr"]["datasets"]["ner"]["eval_dataset"] = "masakhaner2"
    with pytest.raises(LangarithError, match=r"names \['masakhaner2'\], which are not datasets"):
        tlr_plan(bad)


def test_o_labels_are_read_as_o_in_training(toy, tmp_path):
    """CoNLL-2003's MISC becomes O in the training and validation data: the head has the
    test data's seven tags, and MISC words train as O."""
    from langarith.data import NER_LABELS, write_dataset
    from langarith.data.formats import CONLL2003_LABELS
    from langarith.tlr.metrics import o_mapped_labels

    assert o_mapped_labels(CONLL2003_LABELS, ["MISC", "DATE"]) == list(NER_LABELS)
    rows = [
        {"id": f"{i}", "tokens": ["EU", "rejects", "German", "lamb", "."], "ner_tags": tags}
        for i, tags in enumerate(
            [["B-ORG", "O", "B-MISC", "O", "O"], ["B-LOC", "O", "B-MISC", "I-MISC", "O"]] * 8
        )
    ]
    data = write_dataset(
        tmp_path / "conll2003",
        "conll2003",
        "en",
        {"train": rows, "validation": rows[:4], "test": rows[:4]},
        source="test",
        revision="1",
        options={},
    )
    hp = {**HP, "max_steps": 2, "eval_every": 2}
    las_ = _las(toy, "en", "es")
    out = {}
    for name, types in (("mapped", ["MISC", "DATE"]), ("plain", [])):
        out[name] = train_tlr_task_adapter(
            toy["setup"].backbone, las_, data, "ner", tmp_path / name, seed=1, hparams=hp,
            o_labels=types,
        )  # fmt: skip
    mapped = json.loads((out["mapped"] / "metadata.json").read_text())
    plain = json.loads((out["plain"] / "metadata.json").read_text())
    assert mapped["labels"] == list(NER_LABELS) and mapped["tlr"]["o_labels"] == ["MISC", "DATE"]
    assert plain["labels"] == list(CONLL2003_LABELS) and plain["tlr"]["o_labels"] == []
    assert mapped["data"]["train"]["rows"] == 16
    assert not list(tmp_path.glob(".mapped.o-labels-*"))  # the mapped copy is gone


def test_qa_on_tydiqa_format_data_trains_and_scores(toy, tmp_path):
    """QA runs in tests on fixtures: a TLR QA adapter trained on demo SQuAD over two
    language adapters, scored against MAD-X on TyDiQA-GoldP rows written by the real
    TyDiQA loader (the toy's ``es`` adapter stands in for Swahili's)."""
    from langarith.data import prepare_real_dataset, read_split
    from langarith.report import read_scores
    from langarith.tlr.scoring import job_from_lists, score_tlr_job

    setup = toy["setup"]
    squad = prepare_demo_dataset(
        "squad",
        "en",
        tmp_path / "squad",
        options={"task_train_rows": 24, "task_validation_rows": 6, "qa_context_sentences": 2},
    )
    rows = []
    for lang, n in (("swahili", 5), ("thai", 2)):
        for i in range(n):
            context = f"Mji {i} wa Kenya ni Nairobi na mto ni Tana."
            rows.append(
                {
                    "id": f"{lang}-{i}-0",
                    "title": "Kenya",
                    "context": context,
                    "question": f"Mji mkuu wa Kenya {i}?",
                    "answers": {"text": ["Nairobi"], "answer_start": [context.index("Nairobi")]},
                }
            )
    fixture = tmp_path / "tydiqa-goldp-dev.jsonl"
    fixture.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    test_data = prepare_real_dataset(
        "tydiqa", "sw", tmp_path / "tydiqa" / "sw", options={"local_path": str(fixture)}
    )
    assert len(read_split(test_data, "test")) == 5  # the Thai rows are not Swahili's
    hp = {**HP, "max_steps": 4, "eval_every": 2, "max_length": 64, "doc_stride": 16}
    adapters = {
        variant: train_tlr_task_adapter(
            setup.backbone,
            _las(toy, *langs),
            squad,
            "qa",
            tmp_path / variant,
            seed=2,
            hparams=hp,
            leave_out=[1],
        )  # fmt: skip
        for variant, langs in (("madx", ["en"]), ("bilingual", ["en", "es"]))
    }
    meta = json.loads((adapters["bilingual"] / "metadata.json").read_text())
    assert meta["tlr"]["languages"] is None and len(meta["tlr"]["lang_adapters"]) == 2
    assert [h["step"] for h in meta["eval_history"]][-1] == 4
    scores = {v: {"sw": str(tmp_path / f"scores/{scenario_name(v)}/sw.csv")} for v in adapters}
    score_tlr_job(
        job_from_lists(
            model="toy",
            task="qa_tydiqa",
            kind="qa",
            seed=2,
            backbone=str(setup.backbone),
            targets=["sw"],
            lang_adapters={"sw": str(setup.lang["es"])},
            test_data={"sw": str(test_data)},
            adapters={v: {"sw": str(d)} for v, d in adapters.items()},
            scores=scores,
            ttest=str(tmp_path / "ttest.csv"),
        ),
        device="cpu",
    )
    frame = read_scores([scores[v]["sw"] for v in adapters])
    assert set(frame["metric"]) == {"f1", "exact_match"}
    assert set(frame["task"]) == {"qa_tydiqa"} and (frame["split"] == "test").all()
    assert frame["score"].between(0, 100).all()
    ttest = (tmp_path / "ttest.csv").read_text().splitlines()
    assert len(ttest) == 2 and ",BILINGUAL,5," in ttest[1]  # the 5 questions paired


def test_early_stopping_ends_a_run_that_stops_improving(toy, tmp_path):
    """The seed's QA early stopping (patience 4): with a learning rate too small to change
    a prediction, no validation beats the first, so patience 1 ends the run at the second
    validation and keeps the first's weights; without it the run goes to max_steps."""
    hp = {**HP, "max_steps": 8, "eval_every": 2, "lr": 1e-12}
    runs = {}
    for name, patience in (("stopped", 1), ("full", None)):
        out = train_tlr_task_adapter(
            toy["setup"].backbone, _las(toy, "en", "es"), toy["data"], "nli", tmp_path / name,
            seed=1, hparams={**hp, "early_stopping_patience": patience},
        )  # fmt: skip
        runs[name] = json.loads((out / "metadata.json").read_text())
    assert [h["step"] for h in runs["stopped"]["eval_history"]] == [2, 4]
    assert runs["stopped"]["steps"] == 4 and runs["stopped"]["best_step"] == 2
    assert runs["full"]["steps"] == 8 and len(runs["full"]["eval_history"]) == 4
