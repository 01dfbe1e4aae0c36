"""The TLR task-adapter trainer: the active language adapter changes at every optimiser step.

Target language-ready task adapters (the seed ``target-language-ready-adapters.txt``)
keep MAD-X's frozen language adapters (LAs) but let the task adapter (TA) see the
target languages' LAs while it trains: with an ordered LA list [L_0 … L_K], optimiser
step s runs every micro-batch through ``Stack(L_{s mod (K+1)}, TA)``, the active LA's
invertible adapter included (``adapters`` applies the first adapter of the stack's
invertible adapter). Backbone and every LA stay frozen.

It is the core trainer (:func:`langarith.train.task_adapter.train_task_adapter`) with
two changes, built from the same public pieces so that K = 0 is that trainer bit for
bit (tested): the active stack is chosen per step, and the English validation score
that picks the best checkpoint is the mean over the variant's LAs (English data through
each of them; target data is never used to choose, the seed being silent). MAD-X 2.0
is ``leave_out``: the LAs are loaded and the TA is added without modules in those
layers.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from langarith import LangarithError, paths
from langarith.adapter_io import CONFIG_NAME, SAFE_WEIGHTS_NAME, TASK_OUTPUT, finish_adapter_folder
from langarith.backbone.folder import backbone_fingerprint, load_tokenizer
from langarith.data import iter_split, read_manifest
from langarith.data.formats import build_manifest
from langarith.io import (
    atomic_dir,
    check_replaceable,
    read_json,
    sha256_file,
    sha256_json,
    write_json,
)
from langarith.modeling import (
    LANG_ADAPTER_NAME,
    activate_task_stack,
    load_adapter_model,
    load_language_adapter,
)
from langarith.tlr.metrics import map_tags_to_o, o_mapped_labels
from langarith.train.task_adapter import (
    add_task_adapter,
    add_task_head,
    encode_task_data,
    feature_dir,
    lang_adapter_meta,
    report_task_adapter,
    split_dirs,
    task_adapter_metadata,
    task_hparams,
    task_loop_config,
    task_schedule,
)
from langarith.train.task_features import check_task, evaluate_chunks
from langarith.training.checkpoints import check_checkpoint_dir, remove_checkpoint
from langarith.training.hparams import hash_hparams
from langarith.training.inputs import data_checksum
from langarith.training.loop import (
    device_and_dtype,
    load_state_into,
    run_training_loop,
    trainable_parameters,
)
from langarith.training.seeding import EpochStream

__all__ = ["StepHook", "lang_slot", "last_layers", "train_tlr_job", "train_tlr_task_adapter"]

log = logging.getLogger(__name__)

#: ``hook(step, model)``: called once per optimiser step, before its first micro-batch,
#: with the model's stack already set (tests read ``model.active_adapters``).
StepHook = Callable[[int, Any], None]


def lang_slot(i: int) -> str:
    """The name of LA number ``i`` inside the model (the core's name for the first)."""
    return LANG_ADAPTER_NAME if i == 0 else f"{LANG_ADAPTER_NAME}{i}"


def last_layers(backbone_dir: Path | str, n: int = 1) -> list[int]:
    """The indices of the backbone's last ``n`` layers (MAD-X 2.0 leaves out the last)."""
    config = read_json(Path(backbone_dir) / "config.json", "Backbone config")
    layers = int(config.get("num_hidden_layers") or 0)
    if layers <= n:
        raise LangarithError(
            f"The backbone in {backbone_dir} has {layers} layer(s); leaving out the last "
            f"{n} would leave no adapter. Set tlr.leave_out_last: false."
        )
    return list(range(layers - n, layers))


def _saved_leave_out(adapter_dir: Path) -> set[int]:
    """The layers an adapter folder was saved without (its config's ``leave_out``)."""
    config = read_json(adapter_dir / CONFIG_NAME, "Adapter config")
    return {int(x) for x in ((config.get("config") or {}).get("leave_out") or [])}


def _check_lang_adapters(
    dirs: list[Path], backbone: dict, leave_out: list[int], task_leave_out: set[int]
) -> list[dict]:
    """Every "Bad input" of an LA list, before anything is trained; the LAs' metadata."""
    if not dirs:
        raise LangarithError(
            "The TLR task adapter has an empty language-adapter list; give at least one "
            "language adapter (the variant's languages)."
        )
    resolved = [d.resolve() for d in dirs]
    twice = sorted({str(d) for d in resolved if resolved.count(d) > 1})
    if twice:
        raise LangarithError(f"Language adapter(s) {twice} appear twice in the TLR list.")
    metas = []
    for d in dirs:
        meta = lang_adapter_meta(d, backbone)  # refuses an LA of another backbone
        if not (d / SAFE_WEIGHTS_NAME).exists():
            raise LangarithError(
                f"Language adapter {d} has no {SAFE_WEIGHTS_NAME}; train it first."
            )
        la_out = _saved_leave_out(d) | set(leave_out)
        if la_out != task_leave_out:
            raise LangarithError(
                f"Language adapter {d} leaves out layers {sorted(la_out)} but the task adapter "
                f"{sorted(task_leave_out)}; give both the same leave_out (tlr.leave_out_last)."
            )
        metas.append(meta)
    return metas


def _lang_info(i: int, adapter_dir: Path, meta: dict) -> dict[str, Any]:
    return {
        "dir": str(adapter_dir),
        "name": lang_slot(i),
        "language": meta.get("language"),
        "seed": meta.get("seed"),
        "weights_sha256": sha256_file(adapter_dir / SAFE_WEIGHTS_NAME),
    }


def _tlr_model(backbone_dir, dirs: list[Path], task: str, hp, labels, seed, leave_out):
    """Backbone + every frozen LA (``lang``, ``lang1``, …) + a new TA and head, built in
    the core's order (the LAs, then the seeded TA, then the head) so that one LA gives
    the core's model; ``Stack(lang, task)`` active."""
    model = load_adapter_model(backbone_dir)
    for i, adapter_dir in enumerate(dirs):
        load_language_adapter(model, adapter_dir, name=lang_slot(i), leave_out=leave_out or None)
    add_task_adapter(model, task, hp["adapter_config"], seed)
    add_task_head(model, task, labels)
    model.train_adapter(task)
    for name, param in model.named_parameters():
        param.requires_grad = f".{task}." in name or name.startswith(f"heads.{task}.")
    activate_task_stack(model, task, lang_slot(0))
    params = trainable_parameters(model)
    frozen = [n for n in params if any(f".{lang_slot(i)}." in n for i in range(len(dirs)))]
    if frozen:
        raise AssertionError(f"language adapters must stay frozen: {frozen[:3]}")
    return model, params


def _with_leave_out(hp: dict[str, Any], leave_out: list[int]) -> dict[str, Any]:
    """``hp`` with the left-out layers in the TA's adapter config (recorded in metadata,
    so that :func:`~langarith.train.task_adapter.task_adapter_init_state` rebuilds the
    same θ_init); unchanged when nothing is left out."""
    if not leave_out:
        return hp
    config = dict(hp["adapter_config"])
    config["leave_out"] = sorted(set(config.get("leave_out") or []) | set(leave_out))
    return {**hp, "adapter_config": config}


def _o_mapped_dirs(dirs: dict[str, Path], types: Sequence[str], tmp: Path) -> dict[str, Path]:
    """Copies of the NER ``train`` and ``validation`` splits with the entity ``types``
    read as O (tags and the manifest's label list), as data folders under ``tmp``."""
    out: dict[str, Path] = {}
    for split, folder in dirs.items():
        manifest = read_manifest(folder)
        labels = manifest.get("labels")
        if not labels:
            raise LangarithError(f"{folder} has no NER label list in its manifest.json.")
        target = tmp / split
        target.mkdir(parents=True)
        path = target / f"{split}.jsonl"
        rows = 0
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            for row in iter_split(folder, split):
                row = {**row, "ner_tags": map_tags_to_o(row["ner_tags"], types)}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                rows += 1
        entry = {"rows": rows, "sha256": sha256_file(path)}
        options = {**manifest.get("options", {}), "o_labels": list(types)}
        mapped = build_manifest(
            manifest["dataset"],
            manifest["language"],
            {split: entry},
            source=f"{manifest['source']} ({split}, {'/'.join(types)} read as O)",
            revision=str(manifest["revision"]),
            options=options,
            labels=o_mapped_labels(labels, types),
        )
        write_json(target / "manifest.json", mapped)
        out[split] = target
    return out


def train_tlr_task_adapter(
    backbone_dir: Path | str,
    lang_adapter_dirs: Sequence[Path | str],
    data_dirs: Path | str | dict[str, Path | str],
    task: str,
    out_dir: Path | str,
    *,
    seed: int,
    hparams: dict[str, Any] | None = None,
    leave_out: Sequence[int] = (),
    languages: Sequence[str] | None = None,
    checkpoint_dir: Path | str | None = None,
    step_hook: StepHook | None = None,
    o_labels: Sequence[str] = (),
) -> Path:
    """Train a ``task`` adapter + head cycling over the frozen LAs in ``lang_adapter_dirs``.

    Step s uses LA ``s mod len(lang_adapter_dirs)``; with one LA this is
    :func:`~langarith.train.task_adapter.train_task_adapter` exactly. ``leave_out``:
    layers without LA and TA modules (MAD-X 2.0: the last). ``languages`` names the LAs
    in metadata.json. ``o_labels`` (NER): entity types read as O in the training and
    validation data (``tlr.o_labels``: CoNLL-2003's MISC), so that the head predicts the
    test data's types only. Output as the core's: ``save_adapter(out_dir, task,
    with_head=True)`` + metadata.json (``tlr`` records the list, the schedule and the
    types read as O).
    """
    types = [str(t) for t in o_labels] if task == "ner" else []
    args = (backbone_dir, lang_adapter_dirs, data_dirs, task, out_dir)
    kwargs = {
        "seed": seed,
        "hparams": hparams,
        "leave_out": leave_out,
        "languages": languages,
        "checkpoint_dir": checkpoint_dir,
        "step_hook": step_hook,
    }
    if not types:
        return _train_tlr(*args, **kwargs)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out.name}.o-labels-"
    for stale in out.parent.glob(f"{prefix}*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=out.parent) as tmp:
        mapped = _o_mapped_dirs(split_dirs(data_dirs), types, Path(tmp))
        return _train_tlr(*args[:2], mapped, *args[3:], **kwargs, o_labels=types)


def _train_tlr(
    backbone_dir: Path | str,
    lang_adapter_dirs: Sequence[Path | str],
    data_dirs: Path | str | dict[str, Path | str],
    task: str,
    out_dir: Path | str,
    *,
    seed: int,
    hparams: dict[str, Any] | None,
    leave_out: Sequence[int],
    languages: Sequence[str] | None,
    checkpoint_dir: Path | str | None,
    step_hook: StepHook | None,
    o_labels: Sequence[str] = (),
) -> Path:
    """:func:`train_tlr_task_adapter` on data already read with ``o_labels`` as O."""
    check_task(task)
    leave_out = sorted({int(x) for x in leave_out})
    hp = _with_leave_out(task_hparams(task, hparams), leave_out)
    dirs = split_dirs(data_dirs)
    la_dirs, out_dir = [Path(d) for d in lang_adapter_dirs], Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    started = time.perf_counter()
    inputs = [Path(backbone_dir), *la_dirs, *dirs.values()]
    backbone = backbone_fingerprint(backbone_dir)
    task_leave_out = set(hp["adapter_config"].get("leave_out") or [])
    metas = _check_lang_adapters(la_dirs, backbone, leave_out, task_leave_out)
    if languages is not None and len(languages) != len(la_dirs):
        raise LangarithError(
            f"{len(languages)} language names for {len(la_dirs)} language adapters"
        )
    check_replaceable(out_dir, TASK_OUTPUT, [*inputs, *[d for d in [checkpoint_dir] if d]])
    check_checkpoint_dir(checkpoint_dir, [*inputs, out_dir])

    tokenizer = load_tokenizer(backbone_dir)
    infos = [_lang_info(i, d, m) for i, (d, m) in enumerate(zip(la_dirs, metas, strict=True))]
    with feature_dir(out_dir) as store_dir:
        data = encode_task_data(task, dirs, tokenizer, hp, store_dir)
        model, params = _tlr_model(backbone_dir, la_dirs, task, hp, data.labels, seed, leave_out)
        setup = device_and_dtype(bool(hp["fp16"]), bool(hp["bf16"]))
        model.to(setup.device)
        config_hash = sha256_json(
            {
                "kind": "tlr_task_adapter",
                "task": task,
                "backbone": backbone["config_sha256"],
                "lang_adapters": [info["weights_sha256"] for info in infos],
                "leave_out": leave_out,
                "data": {split: data_checksum(dirs[split]) for split in ("train", "validation")},
                "seed": seed,
                "hparams": hash_hparams(hp),
            }
        )
        batch_size, grad_accum = int(hp["batch_size"]), int(hp["grad_accum"])
        max_steps, eval_every = task_schedule(hp, len(data.train))
        stream = EpochStream(len(data.train), seed)
        pad_id = int(tokenizer.pad_token_id)
        n_langs = len(la_dirs)

        def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
            step = k // grad_accum
            activate_task_stack(model, task, lang_slot(step % n_langs))
            if step_hook is not None and k % grad_accum == 0:
                step_hook(step, model)
            indices = stream.indices(k * batch_size, batch_size)
            batch = {
                key: v.to(setup.device) for key, v in data.train.batch(indices, pad_id).items()
            }
            return model(**batch).loss, len(indices)

        def evaluate() -> dict[str, float]:
            runs = []
            for i in range(n_langs):
                activate_task_stack(model, task, lang_slot(i))
                runs.append(
                    evaluate_chunks(
                        model,
                        task,
                        data.valid.chunks(),
                        labels=data.labels,
                        batch_size=int(hp["eval_batch_size"] or 2 * batch_size),
                        device=setup.device,
                        max_answer_len=int(hp["max_answer_len"]),
                        pad_id=pad_id,
                    )
                )
            return {key: sum(run[key] for run in runs) / n_langs for key in runs[0]}

        result = run_training_loop(
            model,
            params,
            micro_batch_loss,
            evaluate,
            task_loop_config(hp, task, seed, max_steps, eval_every),
            setup=setup,
            checkpoint_dir=checkpoint_dir,
            config_hash=config_hash,
        )
    load_state_into(params, result.best_state)
    model.to("cpu")
    with atomic_dir(out_dir, TASK_OUTPUT, inputs) as tmp:
        model.save_adapter(str(tmp), task, with_head=True, use_safetensors=True)
        meta = task_adapter_metadata(task, seed, backbone, infos[0], data, hp, result)
        meta["tlr"] = {
            "languages": list(languages) if languages is not None else None,
            "lang_adapters": infos,
            "leave_out": leave_out,
            "schedule": "optimiser step s uses language adapter s mod K+1 (list order)",
            "checkpoint_selection": "mean English validation metric over the list's adapters",
            "o_labels": list(o_labels),
        }
        meta["wall_time_s"] = round(time.perf_counter() - started, 2)
        finish_adapter_folder(tmp, meta)
    remove_checkpoint(checkpoint_dir, config_hash)
    report_task_adapter(task, seed, result, data.valid.rows(), out_dir)
    return out_dir


def train_tlr_job(
    backbone_dir: Path | str,
    specs: Sequence[dict[str, Any]],
    data_dir: Path | str,
    task: str,
    *,
    seed: int,
    hparams: dict[str, Any] | None,
    leave_out_last: bool,
    checkpoints: bool = True,
    o_labels: Sequence[str] = (),
) -> list[Path]:
    """One workflow job: every TLR task adapter of a (model, task, seed), one after the
    other (``specs``: ``out``, ``lang_adapters``, ``languages`` each, from
    :func:`langarith.tlr.variants.train_specs`; ``o_labels``: NER types read as O). Each
    adapter keeps its own checkpoint (:func:`langarith.paths.checkpoint` of its folder),
    so a killed job resumes the adapter it was training."""
    leave_out = last_layers(backbone_dir) if leave_out_last else []
    done = []
    for spec in specs:
        out = Path(spec["out"])
        checkpoint = Path(paths.checkpoint(str(spec["out"]))) if checkpoints else None
        done.append(
            train_tlr_task_adapter(
                backbone_dir,
                [Path(d) for d in spec["lang_adapters"]],
                data_dir,
                task,
                out,
                seed=seed,
                hparams=hparams,
                leave_out=leave_out,
                languages=spec["languages"],
                checkpoint_dir=checkpoint,
                o_labels=o_labels,
            )
        )
    return done
