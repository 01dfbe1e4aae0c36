"""What a config will cost, computed before anything runs (``langarith plan``).

Everything is derived from the config and the planners the workflow itself uses
(:mod:`langarith.plan`, the scenario planners, the report registries), so the job
counts are the ones ``snakemake -n`` prints (tested on the demo config), and the
numbers move with the settings (twice ``max_steps``, twice the tokens: tested):

* **jobs per stage**: one line per rule;
* **training steps and tokens** per adapter kind: steps × effective batch × block
  (language adapters: ``max_steps × batch_size × grad_accum × block_size``; task
  adapters: steps from ``max_steps`` or epochs over the documented training rows,
  tokens at most ``steps × batch × grad_accum × max_length``, since batches are padded
  to their longest feature only);
* **evaluation tokens**: per λ-grid job, every validation point and every test point
  over the documented split sizes, at most ``max_length`` tokens an example;
* **disk** per artifact family: datasets (documented sizes,
  :mod:`langarith.cost.sizes`), token files (``uint32`` per sub-word: about
  ``bytes / 6.5 × 1.5 × 4``), backbones and adapters (parameters × 4 bytes), score
  files, and the checkpoints a running job keeps (trainable weights, best weights and
  the two AdamW moments: 4 × trainable × 4 bytes);
* **peak GPU memory** per training and evaluation job kind: fp32 weights + 16 bytes per
  trainable parameter (weight, gradient, two AdamW moments) + activations by
  Korthikanti et al. (2022), ``layers × b × s × h × (34 + 5·heads·s/h)`` bytes under
  16-bit autocast (twice that in fp32), + the MLM logits of the masked positions
  (``b × s × p × vocab × 6`` bytes);
* **GPU-hours** = tokens / the throughput the user measured (``--tokens-per-second``
  for language adapters; task training and evaluation default to the same and to three
  times it: a forward pass is about a third of a training step).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langarith import LangarithError, plan
from langarith.analysis_plan import has_task_vectors
from langarith.arm_registry import ArmCost, arm_costs, arm_jobs
from langarith.config import load_config, trained_tasks
from langarith.cost.sizes import (
    BYTES_PER_PARAM,
    BYTES_PER_WORD,
    QA_WINDOWS_PER_ROW,
    BackboneShape,
    activation_bytes,
    adapter_params,
    backbone_shape,
    dataset_bytes,
    eval_rows,
    head_params,
    task_train_rows,
    wikipedia_bytes,
)
from langarith.evaluate.jobs import ScoreJob
from langarith.evaluate.label_free import label_free_jobs
from langarith.evaluate.scenarios import plan_jobs
from langarith.evaluate.tasks import GPU_MAX_TOKENS
from langarith.export_plan import keep_outputs
from langarith.report.rules import report_outputs, report_rules
from langarith.settings import language_settings, task_settings
from langarith.task_kinds import TASK_MAX_LENGTH

__all__ = [
    "CostEstimate",
    "Throughput",
    "cli_plan",
    "estimate_cost",
    "job_counts",
    "render",
]

#: Sub-words per whitespace word of mBERT/XLM-R tokenizers on Wikipedia text (rounded).
SUBWORDS_PER_WORD = 1.5
#: Bytes of a score CSV row.
SCORE_ROW_BYTES = 160
#: A forward pass costs about a third of a training step (forward + backward).
EVAL_SPEEDUP = 3.0


@dataclass(frozen=True)
class Throughput:
    """Tokens per second the user measured on their GPU (``None``: no GPU-hours)."""

    language: float | None = None
    task: float | None = None
    evaluation: float | None = None

    def resolved(self) -> Throughput:
        """Task training defaults to the language rate, evaluation to 3× it."""
        task = self.task if self.task is not None else self.language
        evaluation = self.evaluation
        if evaluation is None and task is not None:
            evaluation = EVAL_SPEEDUP * task
        for name, value in (("language", self.language), ("task", task), ("eval", evaluation)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise LangarithError(f"--{name} tokens per second must be a positive number.")
        return Throughput(self.language, task, evaluation)


@dataclass
class Line:
    """One row of a section: a label, numbers, and how they were computed."""

    label: str
    values: dict[str, Any]
    note: str = ""


@dataclass
class CostEstimate:
    """Every section of the estimate, as numbers (rendered by :func:`render`)."""

    jobs: dict[str, int]
    training: list[Line] = field(default_factory=list)
    disk: list[Line] = field(default_factory=list)
    memory: list[Line] = field(default_factory=list)
    gpu_hours: list[Line] = field(default_factory=list)

    def training_tokens(self, kind: str) -> int:
        """Total tokens of one adapter kind (for tests and callers)."""
        for line in self.training:
            if line.label == kind:
                return int(line.values["tokens"])
        raise KeyError(kind)


# ----------------------------------------------------------------------------- jobs


def _report_jobs(config: Mapping[str, Any]) -> dict[str, int]:
    """Jobs per report rule: the report outputs its pattern matches, per format set."""
    outputs = report_outputs(config)
    counts: dict[str, int] = {}
    for rule in report_rules(config):
        regex = re.escape(rule.pattern).replace(r"\{ext\}", "(?:" + "|".join(rule.formats) + ")")
        for name in re.findall(r"{(\w+)}", rule.pattern):
            if name != "ext":
                allowed = rule.constraints.get(name, "[^/]+")
                regex = regex.replace(rf"\{{{name}\}}", f"(?:{allowed})")
        matched = [p for p in outputs if re.fullmatch(regex, p)]
        if matched:
            counts[rule.name] = len(matched) // len(rule.formats)
    return counts


def job_counts(config: Mapping[str, Any], score_jobs: list | None = None) -> dict[str, int]:
    """Jobs per rule that ``snakemake -n`` would run on an empty directory
    (``score_jobs``: the evaluation jobs, when already planned)."""
    models = plan.model_names(config)
    seeds = len(config["seeds"])
    budget_models = plan.budget_models(config)
    budget_langs = (config.get("token_budget") or {}).get("languages") or []
    arms = arm_jobs(config)
    data = set(plan.data_outputs(config)).union(*(arm.data for arm in arms))
    corpora = {(m, lang) for m in models for lang in _corpus_languages(config, m)}
    corpora = corpora.union(*(arm.corpora for arm in arms))
    adapters = {
        (m, lang, s) for m in models for lang in config["languages"] for s in config["seeds"]
    }
    adapters = adapters.union(*(arm.language_adapters for arm in arms))
    counts = {
        "prepare_dataset": len(data),
        "related_languages": 1,
        "backbone": len(models),
        "init_language_adapter": len(models),
        "tokenize_corpus": len(corpora),
        "train_language_adapter": len(adapters),
        "train_budget_adapter": len(budget_models)
        * sum(len(plan.budget_tokens(config, lang)) for lang in budget_langs)
        * seeds,
        "train_task_adapter": len(plan.task_adapter_outputs(config)),
        "lambda_grid": len(plan_jobs(config) if score_jobs is None else score_jobs)
        - len(label_free_jobs(config)),
        "lambda_grid_label_free": len(label_free_jobs(config)),
        "language_vector_analysis": len(models),
        "task_vector_analysis": len(models) if has_task_vectors(config) else 0,
        "export_adapter": len(keep_outputs(config)),
    }
    for arm in arms:
        counts.update(arm.counts)
    counts.update(_report_jobs(config))
    return {rule: n for rule, n in counts.items() if n}


def _corpus_languages(config: Mapping[str, Any], model: str) -> set[str]:
    """Languages whose corpus a model tokenizes: adapters and its budget adapters."""
    budget = config.get("token_budget") or {}
    langs = budget.get("languages") or [] if model in plan.budget_models(config) else []
    return set(config["languages"]) | set(langs)


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class _Training:
    """One adapter kind's steps and tokens per job and in all."""

    jobs: int
    steps: int
    tokens: int


def _language_training(config: Mapping[str, Any], shapes: dict[str, BackboneShape]):
    """(language adapters, budget adapters) steps and tokens over all jobs."""
    seeds, n_models = len(config["seeds"]), len(shapes)
    lang = _Training(0, 0, 0)
    for language in config["languages"]:
        s = language_settings(config, language)
        per_step = s.batch_size * s.grad_accum * s.block_size
        jobs = n_models * seeds
        lang = _Training(
            lang.jobs + jobs,
            lang.steps + jobs * s.max_steps,
            lang.tokens + jobs * s.max_steps * per_step,
        )
    budget_cfg = config.get("token_budget") or {}
    budget = _Training(0, 0, 0)
    n_budget_models = len([m for m in plan.budget_models(config) if m in shapes])
    for language in budget_cfg.get("languages") or []:
        for tokens in plan.budget_tokens(config, language):
            s = language_settings(config, language, tokens=tokens)
            per_step = s.batch_size * s.grad_accum * s.block_size
            jobs = n_budget_models * seeds
            budget = _Training(
                budget.jobs + jobs,
                budget.steps + jobs * s.max_steps,
                budget.tokens + jobs * s.max_steps * per_step,
            )
    return lang, budget


def _task_steps(config: Mapping[str, Any], task: str) -> tuple[int, int, int]:
    """(steps, tokens at most, max_length) of one task adapter job."""
    s = task_settings(config, task)
    kind = config["tasks"][task]["kind"]
    max_length = int(s.max_length or TASK_MAX_LENGTH[kind])
    rows, _ = task_train_rows(config, config["tasks"][task]["train_dataset"])
    if s.max_train_rows is not None:
        rows = min(rows, s.max_train_rows)
    features = math.ceil(rows * (QA_WINDOWS_PER_ROW if kind == "qa" else 1.0))
    per_step = s.batch_size * s.grad_accum
    steps = s.max_steps if s.max_steps is not None else s.epochs * math.ceil(features / per_step)
    return steps, steps * per_step * max_length, max_length


def _task_training(config: Mapping[str, Any], n_models: int) -> _Training:
    seeds = len(config["seeds"])
    total = _Training(0, 0, 0)
    for task in trained_tasks(config):
        steps, tokens, _ = _task_steps(config, task)
        jobs = n_models * seeds
        total = _Training(
            total.jobs + jobs, total.steps + jobs * steps, total.tokens + jobs * tokens
        )
    return total


def _backbone_training(config: Mapping[str, Any]) -> _Training:
    """Pre-training of demo backbones (hub backbones are downloaded, not trained)."""
    total = _Training(0, 0, 0)
    for model in config["models"]:
        if "demo" in model:
            demo = model["demo"]
            steps = int(demo.get("pretrain_steps", 1000))
            tokens = steps * int(demo.get("batch_size", 16)) * int(demo.get("seq_len", 128))
            total = _Training(total.jobs + 1, total.steps + steps, total.tokens + tokens)
    return total


def _evaluation_tokens(config: Mapping[str, Any], jobs: list[ScoreJob]) -> tuple[int, int]:
    """(λ-grid jobs, tokens at most) over every evaluation job: validation at every
    baseline, grid point and N-way candidate (``budget`` per search), test at every
    baseline and chosen point."""
    total = 0
    for job in jobs:
        dataset = job.data.rstrip("/").split("/")[-2]
        val_rows, test_rows = eval_rows(config, dataset, job.target)
        windows = QA_WINDOWS_PER_ROW if job.kind == "qa" else 1.0
        val_points = len(job.baselines) + sum(len(c.grid) for c in job.curves)
        val_points += sum(search.budget for search in job.searches)  # N-way candidates
        test_points = len(job.baselines) + len(job.curves) + len(job.searches)
        examples = val_points * val_rows + test_points * test_rows
        total += math.ceil(examples * windows) * job.max_length
    return len(jobs), total


# ----------------------------------------------------------------------------- disk


def _disk(
    config: Mapping[str, Any],
    shapes: dict[str, BackboneShape],
    jobs: dict[str, int],
    score_jobs: list[ScoreJob],
) -> list[Line]:
    lang_config = dict((config.get("language_adapter") or {}).get("adapter_config") or {})
    task_config = task_settings(config).adapter_config.as_dict()
    data = plan.dataset_requests(config)
    lines = [
        Line(
            "datasets",
            {"files": len(data), "bytes": sum(dataset_bytes(config, d, lg) for d, lg in data)},
            "documented row counts × bytes a row (langarith.cost.sizes)",
        )
    ]
    token_bytes = sum(
        wikipedia_bytes(config, lang) / BYTES_PER_WORD * SUBWORDS_PER_WORD * 4
        for model in shapes
        for lang in sorted(_corpus_languages(config, model))
    )
    lines.append(
        Line(
            "token files",
            {"files": jobs.get("tokenize_corpus", 0), "bytes": int(token_bytes)},
            f"uint32 sub-words: text bytes / {BYTES_PER_WORD} × {SUBWORDS_PER_WORD} × 4",
        )
    )
    lines.append(
        Line(
            "backbones",
            {
                "files": len(shapes),
                "bytes": sum(s.params() * BYTES_PER_PARAM for s in shapes.values()),
            },
            "parameters × 4 bytes",
        )
    )
    per_model = {m: adapter_params(s, lang_config) * BYTES_PER_PARAM for m, s in shapes.items()}
    n_lang = jobs.get("train_language_adapter", 0) + jobs.get("init_language_adapter", 0)
    n_budget = jobs.get("train_budget_adapter", 0)
    lines.append(
        Line(
            "language adapters",
            {
                "files": n_lang + n_budget,
                "bytes": sum(per_model.values()) * (n_lang + n_budget) // len(shapes),
            },
            f"{_params_text(shapes, lang_config)} × 4 bytes each",
        )
    )
    task_bytes = 0
    for task in trained_tasks(config):
        kind = config["tasks"][task]["kind"]
        labels = {"ner": 7, "nli": 3, "qa": 2, "dp": 37}[kind]  # dp: the UD v2 relations
        for shape in shapes.values():
            params = adapter_params(shape, task_config) + head_params(shape, kind, labels)
            task_bytes += params * BYTES_PER_PARAM * len(config["seeds"])
    lines.append(
        Line(
            "task adapters",
            {"files": jobs.get("train_task_adapter", 0), "bytes": task_bytes},
            "(adapter + head parameters) × 4 bytes",
        )
    )
    rows = sum(
        len(job.baselines)
        + sum(len(c.grid) for c in job.curves)
        + len(job.curves)
        + sum(search.budget + 1 for search in job.searches)
        for job in score_jobs
    )
    lines.append(
        Line(
            "score files",
            {"files": jobs.get("lambda_grid", 0), "bytes": rows * 2 * SCORE_ROW_BYTES},
            f"a row per point and split, ~{SCORE_ROW_BYTES} bytes",
        )
    )
    biggest = max(per_model.values())
    lines.append(
        Line(
            "checkpoints (per running job)",
            {"files": 1, "bytes": 4 * biggest},
            "trainable + best weights + 2 AdamW moments; removed when the job ends",
        )
    )
    return lines


def _params_text(shapes: dict[str, BackboneShape], adapter_config: Mapping[str, Any]) -> str:
    counts = sorted({adapter_params(s, adapter_config) for s in shapes.values()})
    return "/".join(f"{c / 1e6:.2f}M" for c in counts) + " parameters"


# ----------------------------------------------------------------------------- memory


def _activations(shape: BackboneShape, batch: int, seq: int, half: bool) -> int:
    """Activation bytes of a forward+backward (:func:`~langarith.cost.sizes.activation_bytes`)."""
    return activation_bytes(shape, batch, seq, half)


def _memory(
    config: Mapping[str, Any], shapes: dict[str, BackboneShape], score_jobs: list[ScoreJob]
) -> list[Line]:
    lang_config = dict((config.get("language_adapter") or {}).get("adapter_config") or {})
    task_config = task_settings(config).adapter_config.as_dict()
    lines = []
    s = language_settings(config)
    lang_peak = 0
    for shape in shapes.values():
        trainable = adapter_params(shape, lang_config)
        logits = int(s.batch_size * s.block_size * s.mlm_probability * shape.vocab * 6)
        peak = (
            shape.params() * 4
            + trainable * 16
            + _activations(shape, s.batch_size, s.block_size, s.fp16 or s.bf16)
            + logits
        )
        lang_peak = max(lang_peak, peak)
    lines.append(
        Line(
            "train_language_adapter",
            {"bytes": lang_peak},
            f"weights×4 + trainable×16 + activations(b={s.batch_size}, s={s.block_size}) "
            "+ masked logits×6",
        )
    )
    task_peak, task_note = 0, ""
    for task in trained_tasks(config):
        t = task_settings(config, task)
        _, _, max_length = _task_steps(config, task)
        for shape in shapes.values():
            trainable = adapter_params(shape, task_config)
            peak = (
                shape.params() * 4
                + adapter_params(shape, lang_config) * 4
                + trainable * 16
                + _activations(shape, t.batch_size, max_length, t.fp16 or t.bf16)
            )
            if peak > task_peak:
                task_peak, task_note = peak, f"{task}: b={t.batch_size}, s={max_length}"
    lines.append(
        Line(
            "train_task_adapter",
            {"bytes": task_peak},
            f"weights×4 + adapters×4 + trainable×16 + activations ({task_note})",
        )
    )
    eval_peak = 0
    for job in score_jobs:
        shape = shapes[job.model]
        adapters = len({folder for _, folder in job.adapters}) + 2  # + θ_init and the merge
        one_layer = _activations(shape, 1, job.max_length, True) // shape.layers
        batch = GPU_MAX_TOKENS // job.max_length
        peak = (
            shape.params() * 4
            + adapters * adapter_params(shape, lang_config) * 4
            + adapter_params(shape, task_config) * 4
            + one_layer * batch
        )
        eval_peak = max(eval_peak, peak)
    lines.append(
        Line(
            "lambda_grid",
            {"bytes": eval_peak},
            f"weights×4 + resident adapters×4 + one layer's activations of {GPU_MAX_TOKENS} tokens",
        )
    )
    return lines


# ----------------------------------------------------------------------------- estimate


def estimate_cost(config: Mapping[str, Any], throughput: Throughput | None = None) -> CostEstimate:
    """The cost of running ``config`` (checked by :func:`langarith.config.load_config`)."""
    throughput = (throughput or Throughput()).resolved()
    shapes = {
        str(m["name"]): backbone_shape(m, f"models[{i}]") for i, m in enumerate(config["models"])
    }
    score_jobs = plan_jobs(config)
    jobs = job_counts(config, score_jobs)
    lang, budget = _language_training(config, shapes)
    task = _task_training(config, len(shapes))
    backbone = _backbone_training(config)
    eval_jobs, eval_tokens = _evaluation_tokens(config, score_jobs)
    result = CostEstimate(jobs=jobs)
    rows = [
        ("backbone pre-training (demo)", backbone, "pretrain_steps × batch × seq_len", None),
        (
            "language adapters",
            lang,
            "max_steps × batch × grad_accum × block_size",
            throughput.language,
        ),
        (
            "token-budget adapters",
            budget,
            "max_steps × batch × grad_accum × block_size",
            throughput.language,
        ),
        (
            "task adapters",
            task,
            "steps × batch × grad_accum × max_length (at most)",
            throughput.task,
        ),
    ]
    for label, t, formula, rate in rows:
        if not t.jobs:
            continue
        result.training.append(
            Line(label, {"jobs": t.jobs, "steps": t.steps, "tokens": t.tokens}, formula)
        )
        if rate is not None:
            result.gpu_hours.append(
                Line(label, {"hours": t.tokens / rate / 3600}, f"at {rate:,.0f} tok/s")
            )
    if eval_jobs:
        result.training.append(
            Line(
                "evaluation (forward only)",
                {"jobs": eval_jobs, "steps": 0, "tokens": eval_tokens},
                "points × rows × max_length (at most)",
            )
        )
        if throughput.evaluation is not None:
            result.gpu_hours.append(
                Line(
                    "evaluation (forward only)",
                    {"hours": eval_tokens / throughput.evaluation / 3600},
                    f"at {throughput.evaluation:,.0f} tok/s",
                )
            )
    result.disk = _disk(config, shapes, jobs, score_jobs)
    result.memory = _memory(config, shapes, score_jobs)
    for arm in arm_costs(config):
        _add_arm(result, arm, throughput)
    return result


def _add_arm(result: CostEstimate, arm: ArmCost, throughput: Throughput) -> None:
    """An arm's lines beside the core's, its tokens at the rate it names."""
    for work in arm.work:
        if not work.jobs:
            continue
        values = {"jobs": work.jobs, "steps": work.steps, "tokens": work.tokens}
        result.training.append(Line(work.label, values, work.formula))
        rate = getattr(throughput, work.rate)
        if rate is not None:
            result.gpu_hours.append(
                Line(work.label, {"hours": work.tokens / rate / 3600}, f"at {rate:,.0f} tok/s")
            )
    for size in arm.disk:
        result.disk.append(Line(size.label, {"files": size.files, "bytes": size.bytes}, size.note))
    for size in arm.memory:
        result.memory.append(Line(size.label, {"bytes": size.bytes}, size.note))


# ----------------------------------------------------------------------------- text


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError


def _count(n: float) -> str:
    for value, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= value:
            return f"{n / value:,.2f}{unit}"
    return f"{n:,.0f}"


def render(cost: CostEstimate) -> str:
    """The estimate as the plain-text tables ``langarith plan`` prints."""
    out = ["jobs per stage (rule)"]
    width = max(len(rule) for rule in cost.jobs)
    out += [f"  {rule:<{width}}  {n:>6}" for rule, n in cost.jobs.items()]
    out.append(f"  {'total':<{width}}  {sum(cost.jobs.values()):>6}")
    out += ["", "training and evaluation work"]
    for line in cost.training:
        steps = f"{_count(line.values['steps'])} steps, " if line.values["steps"] else ""
        out.append(
            f"  {line.label:<28} {line.values['jobs']:>5} jobs  {steps}"
            f"{_count(line.values['tokens'])} tokens   [{line.note}]"
        )
    out += ["", "disk per artifact family"]
    for line in cost.disk:
        out.append(
            f"  {line.label:<30} {line.values['files']:>5} files {_size(line.values['bytes']):>10}"
            f"   [{line.note}]"
        )
    total = sum(line.values["bytes"] for line in cost.disk)
    out.append(f"  {'total':<30}       {_size(total):>16}")
    out += ["", "peak GPU memory per job kind (estimate)"]
    for line in cost.memory:
        out.append(f"  {line.label:<24} {_size(line.values['bytes']):>10}   [{line.note}]")
    out += ["", "GPU-hours"]
    if not cost.gpu_hours:
        out.append("  (give --tokens-per-second, measured on your GPU, for GPU-hours)")
    for line in cost.gpu_hours:
        out.append(f"  {line.label:<28} {line.values['hours']:>10,.1f} h   [{line.note}]")
    if cost.gpu_hours:
        hours = sum(line.values["hours"] for line in cost.gpu_hours)
        out.append(f"  {'total':<28} {hours:>10,.1f} h")
    return "\n".join(out)


def cli_plan(args: argparse.Namespace) -> int:
    """``langarith plan``: load and check the config, print the estimate."""
    config = load_config(args.configfile)
    throughput = Throughput(
        args.tokens_per_second, args.task_tokens_per_second, args.eval_tokens_per_second
    )
    print(f"cost of {args.configfile} (estimates; formulas in brackets)\n")
    print(render(estimate_cost(config, throughput)))
    return 0
