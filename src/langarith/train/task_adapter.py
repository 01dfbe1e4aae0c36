"""Task adapters: NER, NLI and QA trained on English over a frozen English language adapter.

MAD-X's recipe, which language arithmetic relies on: a task adapter learns the task on
top of ``Stack(lang, task)`` with the English language adapter frozen below it. At test
time the language adapter is swapped for the target's (or a merge of several), and the
task adapter is reused unchanged. The head is saved together with the task adapter.

Memory stays bounded whatever the dataset's size: the training rows are streamed from
disk and encoded :data:`~langarith.train.task_features.FEATURE_CHUNK_ROWS` at a time into
an on-disk :class:`~langarith.train.feature_store.FeatureStore` (a hidden folder next to
the output, removed at the end), from which batches are drawn; the validation rows are
streamed and encoded a chunk at a time at each evaluation (for SQuAD's 10.6k questions
that re-tokenisation costs seconds, next to minutes of forward passes).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from langarith import LangarithError
from langarith.adapter_io import (
    SAFE_WEIGHTS_NAME,
    TASK_OUTPUT,
    finish_adapter_folder,
    normalise_name,
    read_adapter,
)
from langarith.backbone.folder import backbone_fingerprint, load_tokenizer
from langarith.io import atomic_dir, check_replaceable, read_json, sha256_file, sha256_json
from langarith.modeling import (
    LANG_ADAPTER_NAME,
    activate_task_stack,
    build_adapter_config,
    check_same_backbone,
    load_adapter_model,
    load_language_adapter,
)
from langarith.provenance import utc_now, versions
from langarith.settings import TaskAdapterConfig, TaskAdapterSettings
from langarith.train.feature_store import FeatureStore
from langarith.train.task_features import (
    DEFAULT_LABELS,
    FEATURE_CHUNK_ROWS,
    TASK_METRIC,
    EncodedTask,
    check_task,
    evaluate_chunks,
    iter_encoded,
)
from langarith.training.checkpoints import check_checkpoint_dir, remove_checkpoint
from langarith.training.hparams import hash_hparams
from langarith.training.inputs import data_checksum, iter_rows, read_data_manifest
from langarith.training.loop import (
    DeviceSetup,
    LoopConfig,
    LoopResult,
    device_and_dtype,
    load_state_into,
    resolve_warmup,
    run_training_loop,
    trainable_parameters,
)
from langarith.training.seeding import EpochStream, seed_everything

__all__ = [
    "TASK_ADAPTER_CONFIG",
    "TASK_HPARAMS",
    "add_task_adapter",
    "chance_warning",
    "task_adapter_init_state",
    "train_task_adapter",
]

log = logging.getLogger(__name__)

#: Defaults of ``hparams["adapter_config"]`` (Pfeiffer bottleneck, as MAD-X task adapters),
#: from :class:`~langarith.settings.TaskAdapterConfig`.
TASK_ADAPTER_CONFIG: dict[str, Any] = TaskAdapterConfig.defaults()

#: Defaults of the ``hparams`` of :func:`train_task_adapter`: the fields of
#: :class:`~langarith.settings.TaskAdapterSettings`, documented there.
TASK_HPARAMS: dict[str, Any] = TaskAdapterSettings.defaults()


def _split_dirs(data_dirs: Path | str | dict[str, Path | str]) -> dict[str, Path]:
    """``{"train": dir, "validation": dir}`` from one folder or a split→folder mapping."""
    if isinstance(data_dirs, (str, Path)):
        return {"train": Path(data_dirs), "validation": Path(data_dirs)}
    dirs = {str(k): Path(v) for k, v in dict(data_dirs).items()}
    missing = {"train", "validation"} - set(dirs)
    if missing:
        raise LangarithError(
            f"data_dirs lacks the split(s) {sorted(missing)}; give a folder for 'train' and "
            "'validation' (or one folder holding both)."
        )
    return dirs


def _labels(task: str, manifest: dict) -> list[str]:
    """The label names of a NER/NLI dataset from its manifest (QA has none)."""
    if task == "qa":
        return []
    labels = manifest.get("labels")
    if not labels:
        log.warning("Manifest has no 'labels' list; using the default %s labels", task)
        return list(DEFAULT_LABELS[task])
    if task == "nli" and len(labels) != 3:
        raise LangarithError(f"NLI needs 3 labels, the manifest lists {labels}.")
    return [str(x) for x in labels]


def _add_head(model, task: str, labels: list[str]) -> None:
    """The prediction head of ``task``, named like the task adapter."""
    id2label = {i: label for i, label in enumerate(labels)}
    if task == "ner":
        model.add_tagging_head(task, num_labels=len(labels), id2label=id2label)
    elif task == "nli":
        model.add_classification_head(task, num_labels=len(labels), id2label=id2label)
    else:
        model.add_qa_head(task, num_labels=2)


def chance_warning(task: str, best: float, valid_rows: Iterable[dict]) -> str | None:
    """A warning text when the best validation score is no better than chance, else None.

    NER entity F1 0 means no entity was ever right (usually: everything tagged "O"); NLI
    accuracy within a point of always answering the most frequent class means nothing
    was learnt. Either way the adapter is useless for transfer, and every score computed
    with it later would be flat, so it is worth saying at once.
    """
    if task == "ner" and best <= 0.0:
        return (
            "the best NER entity F1 is 0: no entity was ever tagged right (the model "
            "predicts the majority tag 'O')"
        )
    if task == "nli":
        counts: dict[Any, int] = {}
        for row in valid_rows:
            counts[row.get("label")] = counts.get(row.get("label"), 0) + 1
        majority = 100.0 * max(counts.values()) / sum(counts.values())
        if best <= majority + 1.0:
            return (
                f"the best NLI accuracy {best:.1f} is at the majority-class rate "
                f"{majority:.1f}: nothing was learnt"
            )
    return None


def _task_hparams(task: str, hparams: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults + ``hparams``, validated before anything expensive is loaded.

    The typed settings refuse unknown keys and out-of-range values with a sentence that
    names them, the same check the config gets when it loads.
    """
    where = f"{task} task-adapter hparams"
    return TaskAdapterSettings.from_mapping(hparams, where=where).as_dict()


@dataclass
class _ValidationSplit:
    """The validation rows, streamed from disk and encoded a chunk at a time whenever
    they are scored (:meth:`chunks`); only their counts stay in memory."""

    task: str
    folder: Path
    max_rows: int | None
    tokenizer: Any
    encoding: dict[str, Any]
    n_rows: int = 0
    n_features: int = 0

    def rows(self) -> Iterator[dict]:
        """The split's rows, cut to ``max_eval_rows``."""
        return itertools.islice(iter_rows(self.folder, "validation"), self.max_rows)

    def chunks(self) -> Iterator[tuple[list[dict], EncodedTask]]:
        """``(rows, features)`` chunks of :func:`~langarith.train.task_features.iter_encoded`."""
        return iter_encoded(
            self.task, self.rows(), self.tokenizer, chunk_rows=FEATURE_CHUNK_ROWS, **self.encoding
        )

    def count(self) -> None:
        """Encode once up front: counts for metadata.json, and bad rows fail before training."""
        for rows, encoded in self.chunks():
            self.n_rows += len(rows)
            self.n_features += len(encoded)
        if not self.n_rows:
            raise LangarithError(
                f"The validation split in {self.folder} is empty; the best {self.task} "
                "checkpoint is chosen on it."
            )


@dataclass
class _TaskData:
    """The training features (on disk), the validation split (streamed) and the labels."""

    dirs: dict[str, Path]
    labels: list[str]
    train: FeatureStore
    valid: _ValidationSplit


def _encode(
    task: str,
    dirs: dict[str, Path],
    tokenizer,
    hp: dict[str, Any],
    store_dir: Path,
) -> _TaskData:
    """Model features of both splits, built exactly as evaluation builds them: the
    training split into a :class:`FeatureStore` in ``store_dir``, chunk by chunk."""
    labels = _labels(task, read_data_manifest(dirs["train"]))
    encoding = {
        "labels": labels,
        "max_length": hp["max_length"],
        "doc_stride": int(hp["doc_stride"]),
    }
    train_rows = itertools.islice(iter_rows(dirs["train"], "train"), hp["max_train_rows"])
    first = next(train_rows, None)
    if first is None:
        raise LangarithError(f"The train split in {dirs['train']} is empty; {task} needs examples.")
    valid = _ValidationSplit(task, dirs["validation"], hp["max_eval_rows"], tokenizer, encoding)
    valid.count()
    chunks = iter_encoded(
        task,
        itertools.chain([first], train_rows),
        tokenizer,
        chunk_rows=FEATURE_CHUNK_ROWS,
        **encoding,
    )
    return _TaskData(dirs, labels, FeatureStore.write(chunks, store_dir), valid)


@contextlib.contextmanager
def _feature_dir(out_dir: Path) -> Iterator[Path]:
    """A hidden temporary folder next to ``out_dir`` for the training features, removed
    on exit; folders left by a killed run of the same output are removed first."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out_dir.name}.features-"
    for stale in out_dir.parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=out_dir.parent) as tmp:
        yield Path(tmp) / "train"


def add_task_adapter(model, task: str, adapter_config: dict[str, Any] | None, seed: int) -> None:
    """Add a new task adapter ``task`` to ``model``, its weights drawn from ``seed``.

    The one place a task adapter is initialised, so that its θ_init can be rebuilt
    later (:func:`task_adapter_init_state`) from the backbone, the seed and the adapter
    config that its metadata records; the head is added after it.
    """
    seed_everything(seed)
    model.add_adapter(task, config=build_adapter_config(adapter_config, TASK_ADAPTER_CONFIG))


def task_adapter_init_state(
    backbone_dir: str | Path, task_dir: str | Path
) -> dict[str, torch.Tensor]:
    """θ_init of a trained task adapter, rebuilt: names normalised as :func:`read_adapter`'s.

    Task adapters are initialised from their seed (:func:`add_task_adapter`), not from a
    saved θ_init, so the task vector τ = θ − θ_init (Ilharco et al.'s, for the ACL
    paper's Appendix E contrast) needs the initial weights drawn again: the backbone,
    the ``seed`` and ``hparams.adapter_config`` of the adapter's ``metadata.json``.
    """
    adapter = read_adapter(task_dir)
    meta = adapter.metadata or {}
    if "seed" not in meta or "hparams" not in meta:
        raise LangarithError(
            f"Task adapter {task_dir} has no seed and hparams in its metadata.json; its "
            "θ_init cannot be rebuilt (train it with langarith's train_task_adapter)"
        )
    model = load_adapter_model(backbone_dir)
    add_task_adapter(model, adapter.name, meta["hparams"].get("adapter_config"), int(meta["seed"]))
    state = {}
    for key, value in model.state_dict().items():
        norm = normalise_name(key, adapter.name)
        if norm is not None:
            state[norm] = value.detach().clone()
    if set(state) != set(adapter.state):
        raise LangarithError(
            f"Task adapter {task_dir}: the rebuilt θ_init has other parameters than the "
            f"saved adapter ({len(state)} vs {len(adapter.state)}); rebuild it with the "
            "backbone it was trained on"
        )
    return state


def _task_model(backbone_dir, lang_adapter_dir: Path, task: str, hp: dict[str, Any], labels, seed):
    """Backbone + frozen language adapter + a new ``task`` adapter and head (initialised
    from ``seed``), ``Stack(lang, task)`` active; returns (model, trainable parameters)."""
    model = load_adapter_model(backbone_dir)
    load_language_adapter(model, lang_adapter_dir, name=LANG_ADAPTER_NAME)
    add_task_adapter(model, task, hp["adapter_config"], seed)
    _add_head(model, task, labels)
    model.train_adapter(task)
    for name, param in model.named_parameters():
        param.requires_grad = f".{task}." in name or name.startswith(f"heads.{task}.")
    activate_task_stack(model, task, LANG_ADAPTER_NAME)
    params = trainable_parameters(model)
    if any(f".{LANG_ADAPTER_NAME}." in n for n in params):
        raise AssertionError("the language adapter must stay frozen")
    return model, params


def _schedule(hp: dict[str, Any], n_features: int) -> tuple[int, int]:
    """(max_steps, eval_every) in optimizer steps; epochs are converted with the number
    of steps one pass over the training features takes."""
    batch_size, grad_accum = int(hp["batch_size"]), int(hp["grad_accum"])
    per_epoch = math.ceil(n_features / (batch_size * grad_accum))
    max_steps = (
        int(hp["max_steps"]) if hp["max_steps"] is not None else int(hp["epochs"]) * per_epoch
    )
    eval_every = int(hp["eval_every"])
    if hp["eval_every_epochs"] is not None:
        eval_every = int(hp["eval_every_epochs"]) * per_epoch
    return max_steps, eval_every


def _loop_config(hp: dict[str, Any], task: str, seed: int, max_steps: int, eval_every: int):
    """The loop settings of a task adapter: the highest English validation metric wins."""
    return LoopConfig(
        seed=seed,
        max_steps=max_steps,
        grad_accum=int(hp["grad_accum"]),
        lr=float(hp["lr"]),
        warmup_steps=resolve_warmup(hp, max_steps),
        weight_decay=float(hp["weight_decay"]),
        max_grad_norm=hp["max_grad_norm"],
        eval_every=eval_every,
        checkpoint_every=int(hp["checkpoint_every"]),
        stop_after_steps=hp["stop_after_steps"],
        higher_is_better=True,
        metric=TASK_METRIC[task],
        unit="ex",
        desc=f"task {task} seed {seed}",
        max_nonfinite_in_row=int(hp["max_nonfinite_in_row"]),
        early_stopping_patience=hp.get("early_stopping_patience"),
    )


def _report(task: str, seed: int, result: LoopResult, valid_rows: Iterable[dict], out_dir: Path):
    """Log the outcome, with a warning when the adapter learnt nothing."""
    note = chance_warning(task, result.best_score, valid_rows)
    if note is not None:
        log.warning(
            "Task adapter %s seed %d did not learn: %s. Check the backbone (pre-trained "
            "enough?), the adapter size and the learning rate.",
            task,
            seed,
            note,
        )
    log.info(
        "Task adapter %s seed %d: best %s %.2f at step %d -> %s",
        task,
        seed,
        TASK_METRIC[task],
        result.best_score,
        result.best_step,
        out_dir,
    )


def _config_hash(
    task: str, backbone: dict, lang_info: dict, dirs: dict[str, Path], seed: int, hp: dict
) -> str:
    """What decides the result; a checkpoint made with another hash is not resumed."""
    return sha256_json(
        {
            "kind": "task_adapter",
            "task": task,
            "backbone": backbone["config_sha256"],
            "lang_adapter": lang_info["weights_sha256"],
            "data": {split: data_checksum(dirs[split]) for split in ("train", "validation")},
            "seed": seed,
            "hparams": hash_hparams(hp),
        }
    )


def _lang_adapter_meta(lang_adapter_dir: Path, backbone: dict) -> dict:
    """The language adapter's metadata.json (``{}`` if it has none), after checking it
    was trained on this backbone."""
    meta_path = lang_adapter_dir / "metadata.json"
    meta = read_json(meta_path, "Language adapter metadata") if meta_path.exists() else {}
    check_same_backbone(meta, backbone, "Language adapter", lang_adapter_dir)
    return meta


def _lang_adapter_info(lang_adapter_dir: Path, lang_meta: dict) -> dict[str, Any]:
    """The language adapter below the task adapter, as metadata.json records it."""
    return {
        "dir": str(lang_adapter_dir),
        "name": LANG_ADAPTER_NAME,
        "language": lang_meta.get("language"),
        "seed": lang_meta.get("seed"),
        "weights_sha256": sha256_file(lang_adapter_dir / SAFE_WEIGHTS_NAME),
    }


def _run_task(
    model,
    params: dict[str, torch.nn.Parameter],
    task: str,
    data: _TaskData,
    *,
    hp: dict[str, Any],
    seed: int,
    setup: DeviceSetup,
    pad_id: int,
    checkpoint_dir: Path | None,
    config_hash: str,
) -> LoopResult:
    """Supervised training on the English features through the shared loop; the English
    validation metric (scored exactly as evaluation scores it) picks the best weights."""
    batch_size = int(hp["batch_size"])
    max_steps, eval_every = _schedule(hp, len(data.train))
    stream = EpochStream(len(data.train), seed)

    def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
        indices = stream.indices(k * batch_size, batch_size)
        batch = {key: v.to(setup.device) for key, v in data.train.batch(indices, pad_id).items()}
        return model(**batch).loss, len(indices)

    def evaluate() -> dict[str, float]:
        return evaluate_chunks(
            model,
            task,
            data.valid.chunks(),
            labels=data.labels,
            batch_size=int(hp["eval_batch_size"] or 2 * batch_size),
            device=setup.device,
            max_answer_len=int(hp["max_answer_len"]),
            pad_id=pad_id,
        )

    return run_training_loop(
        model,
        params,
        micro_batch_loss,
        evaluate,
        _loop_config(hp, task, seed, max_steps, eval_every),
        setup=setup,
        checkpoint_dir=checkpoint_dir,
        config_hash=config_hash,
    )


def train_task_adapter(
    backbone_dir: Path | str,
    lang_adapter_dir: Path | str,
    data_dirs: Path | str | dict[str, Path | str],
    task: str,
    out_dir: Path | str,
    *,
    seed: int,
    hparams: dict[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
) -> Path:
    """Train a ``task`` adapter + head over the frozen language adapter in ``lang_adapter_dir``.

    ``data_dirs``: one folder with ``train`` and ``validation`` splits, or a mapping
    ``{"train": dir, "validation": dir}``. The best weights by the English validation
    metric (NER entity F1, NLI accuracy, QA F1) are saved with
    ``save_adapter(out_dir, task, with_head=True)`` + metadata.json. Resumable through
    ``checkpoint_dir`` like language adapters.
    """
    check_task(task)
    hp = _task_hparams(task, hparams)
    dirs = _split_dirs(data_dirs)
    lang_adapter_dir, out_dir = Path(lang_adapter_dir), Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    started = time.perf_counter()
    inputs = [Path(backbone_dir), lang_adapter_dir, *dirs.values()]
    check_replaceable(out_dir, TASK_OUTPUT, [*inputs, *[d for d in [checkpoint_dir] if d]])
    check_checkpoint_dir(checkpoint_dir, [*inputs, out_dir])

    backbone = backbone_fingerprint(backbone_dir)
    lang_meta = _lang_adapter_meta(lang_adapter_dir, backbone)
    tokenizer = load_tokenizer(backbone_dir)
    with _feature_dir(out_dir) as store_dir:
        data = _encode(task, dirs, tokenizer, hp, store_dir)
        model, params = _task_model(backbone_dir, lang_adapter_dir, task, hp, data.labels, seed)
        setup = device_and_dtype(bool(hp["fp16"]), bool(hp["bf16"]))
        model.to(setup.device)
        lang_info = _lang_adapter_info(lang_adapter_dir, lang_meta)
        config_hash = _config_hash(task, backbone, lang_info, dirs, seed, hp)
        result = _run_task(
            model,
            params,
            task,
            data,
            hp=hp,
            seed=seed,
            setup=setup,
            pad_id=int(tokenizer.pad_token_id),
            checkpoint_dir=checkpoint_dir,
            config_hash=config_hash,
        )
    load_state_into(params, result.best_state)
    model.to("cpu")
    with atomic_dir(out_dir, TASK_OUTPUT, inputs) as tmp:
        model.save_adapter(str(tmp), task, with_head=True, use_safetensors=True)
        meta = _metadata(task, seed, backbone, lang_info, data, hp, result)
        meta["wall_time_s"] = round(time.perf_counter() - started, 2)
        finish_adapter_folder(tmp, meta)  # adds the checksums and the .bin twins
    remove_checkpoint(checkpoint_dir, config_hash)
    _report(task, seed, result, data.valid.rows(), out_dir)
    return out_dir


def _metadata(
    task: str,
    seed: int,
    backbone: dict,
    lang_info: dict,
    data: _TaskData,
    hp: dict[str, Any],
    result: LoopResult,
) -> dict[str, Any]:
    """metadata.json of a task adapter: inputs with checksums, settings and the run."""
    batch_size, grad_accum = int(hp["batch_size"]), int(hp["grad_accum"])
    return {
        "kind": "task_adapter",
        "task": task,
        "adapter_name": task,
        "backbone": backbone,
        "seed": seed,
        "lang_adapter": lang_info,
        "labels": data.labels,
        "data": {
            split: {
                "dir": str(data.dirs[split]),
                "checksum": data_checksum(data.dirs[split]),
                "rows": rows,
            }
            for split, rows in (("train", data.train.n_rows), ("validation", data.valid.n_rows))
        },
        "train_features": len(data.train),
        "validation_features": data.valid.n_features,
        "hparams": hp,
        "steps": result.steps,
        "epochs": round(result.steps * batch_size * grad_accum / len(data.train), 3),
        "metric": TASK_METRIC[task],
        "best_metric": result.best_score,
        "best_step": result.best_step,
        "eval_history": result.history,
        "resumed_from_step": result.resumed_from_step,
        "nonfinite_steps": result.nonfinite_steps,
        "skipped_steps": result.skipped_steps,
        "train_seconds": round(result.train_seconds, 2),
        "versions": versions(),
        "created_utc": utc_now(),
    }


# The building blocks of :func:`train_task_adapter`, public for the arms that train task
# adapters their own way (``langarith.tlr`` cycles language adapters): the same code, so
# that an arm's one-language case is this trainer, bit for bit.
TaskData = _TaskData
split_dirs = _split_dirs
task_hparams = _task_hparams
encode_task_data = _encode
feature_dir = _feature_dir
add_task_head = _add_head
task_schedule = _schedule
task_loop_config = _loop_config
lang_adapter_meta = _lang_adapter_meta
report_task_adapter = _report
task_adapter_metadata = _metadata
