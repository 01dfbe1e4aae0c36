"""Typed settings of what the workflow trains: demo backbones, language and task adapters.

Each kind of training has one frozen dataclass whose fields are the keys the config may
set, with their defaults: the one definition of both, which the training code
(``langarith.train``, ``langarith.backbone``) builds its settings from.
:meth:`from_mapping` builds one from a config section and refuses, with one sentence
naming the key and where it is, what would otherwise fail hours later inside a job: an
unknown (misspelt) key, a value of the wrong type (``true`` or ``20.5`` steps), or one
out of range (``lr: -1``, ``lr: .nan``, ``max_steps: 1e12``). :meth:`as_dict` gives back
the plain mapping the training functions take today (same keys, same values: a value is
stored as written, an ``int`` stays an ``int``), so switching them over changes no
hash and no number.

Volatile keys: ``stop_after_steps``, ``checkpoint_every``, ``eval_batch_size`` and
``max_nonfinite_in_row`` (of both adapter kinds) only steer *how* a run executes, not
*what* it computes (a run either ends with the same weights or stops); the
training code leaves them out of a checkpoint's config hash (``VOLATILE_KEYS`` here,
re-exported as ``VOLATILE_HPARAMS`` by ``langarith.training.hparams``), so changing
them resumes a run instead of restarting it. Every other key changes the result.

The module imports only the standard library and :mod:`langarith` so that
``langarith --help`` and the config check stay fast.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Self

from langarith import LangarithError

#: Keys that do not change a run's result (see the module docstring).
VOLATILE_KEYS = frozenset(
    {"stop_after_steps", "checkpoint_every", "eval_batch_size", "max_nonfinite_in_row"}
)

#: Upper bound of every count (steps, sizes, rows): larger values are typos (``1e12``).
MAX_COUNT = 10**9
#: Upper bound of a token budget: more text than any Wikipedia holds.
MAX_TOKENS = 10**12
#: Seeds are 0 to 2^32-1: paths write them as ``seed<N>`` and NumPy takes 32 bits.
MAX_SEED = 2**32 - 1
#: A learning rate above 1 (or a weight decay above 1) is a typo, not a setting.
MAX_LR = 1.0
#: Largest bottleneck reduction factor and gradient-clipping norm accepted.
MAX_REDUCTION = 65536
MAX_GRAD_NORM = 1e6

#: A check returns what a value should be, or ``None`` when the value is fine.
Check = Callable[[Any], str | None]


class SettingsError(LangarithError):
    """Settings are invalid; ``problems`` holds one sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# ----------------------------------------------------------------------------- checks


def _is_number(value: Any) -> bool:
    """int or float but not bool: YAML's ``true`` must never pass as 1."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def count(low: int = 1, high: int = MAX_COUNT, *, optional: bool = False) -> Check:
    """A whole number in [low, high] (``null`` too when optional)."""
    expected = f"a whole number from {low} to {high:,}" + (" or null" if optional else "")

    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return expected
        return None

    return check


def seed() -> Check:
    """A seed: a whole number from 0 to :data:`MAX_SEED`."""
    return count(0, MAX_SEED)


def number(
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> Check:
    """A finite number between ``low`` and ``high`` (each bound open or closed)."""
    if high == math.inf:
        expected = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        expected = f"a number in {left}{low:g}, {high:g}{right}"
    expected += " or null" if optional else ""

    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if not _is_number(value) or not math.isfinite(value):
            return expected
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return None if above and below else expected

    return check


def flag() -> Check:
    """true or false."""
    return lambda value: None if isinstance(value, bool) else "true or false"


def text(choices: tuple[str, ...] = ()) -> Check:
    """A non-empty string, one of ``choices`` when given."""
    expected = f"one of {', '.join(choices)}" if choices else "a non-empty string"

    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not value or (choices and value not in choices):
            return expected
        return None

    return check


def weights() -> Check:
    """A mapping of language code to a whole number >= 0 (pre-training shares)."""
    expected = "a mapping of language code to a whole number >= 0"
    share = count(0)

    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return expected
        bad = [k for k, v in value.items() if not isinstance(k, str) or share(v)]
        return expected if bad else None

    return check


def setting(default: Any, check: Check, doc: str) -> Any:
    """A dataclass field with its check and a one-line description (what the schema says)."""
    if isinstance(default, Mapping):
        copy = dict(default)
        return field(default_factory=lambda: dict(copy), metadata={"check": check, "doc": doc})
    return field(default=default, metadata={"check": check, "doc": doc})


def required(check: Check, doc: str) -> Any:
    """A dataclass field without a default: the config must set it."""
    return field(metadata={"check": check, "doc": doc})


def nested(kind: type[Settings], doc: str) -> Any:
    """A field holding another settings object, given as a mapping in the config."""
    return field(default_factory=kind, metadata={"nested": kind, "doc": doc})


def show_value(value: Any) -> str:
    """A value as the user wrote it in YAML (true, null, .nan), not as Python prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e6:
        return f"{value:g}"
    return repr(value)


_show = show_value


# ----------------------------------------------------------------------------- base


class Settings:
    """Shared behaviour of the settings dataclasses: build from a mapping, give one back."""

    #: What the settings configure, for messages ("language-adapter training").
    what: ClassVar[str] = "settings"

    @classmethod
    def allowed_keys(cls) -> list[str]:
        """The keys a config may set, in declaration order."""
        return [f.name for f in fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every key's default as the plain value the schema states (required keys left out)."""
        out: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if "nested" in f.metadata:
                out[f.name] = f.metadata["nested"].defaults()
            elif f.default is not MISSING:
                out[f.name] = f.default
            elif f.default_factory is not MISSING:
                out[f.name] = f.default_factory()
        return out

    @classmethod
    def problems(cls, mapping: Mapping[str, Any], where: str) -> list[str]:
        """Unknown keys and bad values of ``mapping``, one sentence each (no cross-checks)."""
        if not isinstance(mapping, Mapping):
            return [f"{where} is {_show(mapping)}; it must be a mapping of {cls.what} keys"]
        found = [unknown_key_message(key, where, cls.allowed_keys()) for key in mapping]
        found = [message for message in found if message]
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in mapping:
                continue
            value = mapping[f.name]
            if "nested" in f.metadata:
                found += f.metadata["nested"].problems(value, f"{where}.{f.name}")
                continue
            expected = f.metadata["check"](value)
            if expected:
                found.append(f"{where}.{f.name} is {_show(value)}; it must be {expected}")
        return found

    def cross_problems(self, where: str) -> list[str]:
        """Problems that involve more than one key (none by default)."""
        return []

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *, where: str) -> Self:
        """Settings from a config section, its missing keys taken from the defaults.

        ``where`` names the section in messages (``"language_adapter.training"``).
        Raises :class:`SettingsError` listing every problem found.
        """
        mapping = {} if mapping is None else mapping
        found = cls.problems(mapping, where)
        missing = [
            f"{where} needs {f.name} ({f.metadata['doc']})"
            for f in fields(cls)  # type: ignore[arg-type]
            if f.default is MISSING and f.default_factory is MISSING and f.name not in mapping
        ]
        if found or missing:
            raise SettingsError(found + missing)
        values = {
            key: (
                fld.metadata["nested"].from_mapping(mapping[key], where=f"{where}.{key}")
                if "nested" in fld.metadata
                else mapping[key]
            )
            for fld in fields(cls)  # type: ignore[arg-type]
            if (key := fld.name) in mapping
        }
        settings = cls(**values)
        cross = settings.cross_problems(where)
        if cross:
            raise SettingsError(cross)
        return settings

    def as_dict(self) -> dict[str, Any]:
        """The plain mapping the training code takes: every key, nested settings as dicts."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.as_dict() if isinstance(value, Settings) else _plain(value)
        return out


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def unknown_key_message(key: Any, where: str, allowed: list[str]) -> str | None:
    """'unknown key ...; did you mean ...? allowed: ...' or None when ``key`` is allowed.

    ``where`` is the dotted place of the mapping; empty for the config's top level.
    """
    if key in allowed:
        return None
    place = f"in {where}" if where else "at the top level of the config"
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"unknown key {key!r} {place}{hint} allowed: {', '.join(allowed)}"


def _warmup_problems(settings: Any, where: str) -> list[str]:
    """The training code takes warm-up as a count or a ratio, never both."""
    if settings.warmup_steps and settings.warmup_ratio:
        return [
            f"{where} sets both warmup_steps ({settings.warmup_steps}) and warmup_ratio "
            f"({settings.warmup_ratio}); use one of them"
        ]
    return []


def _precision_problems(settings: Any, where: str) -> list[str]:
    """fp16 and bf16 exclude each other (the training code refuses both)."""
    if settings.fp16 and settings.bf16:
        return [f"{where} sets both fp16 and bf16 to true; choose at most one"]
    return []


# ----------------------------------------------------------------------------- adapters


@dataclass(frozen=True)
class LanguageAdapterConfig(Settings):
    """``language_adapter.adapter_config``: the MAD-X language adapter and its shared init.

    ``architecture`` is a key of ``adapters.ADAPTER_CONFIG_MAP`` (checked when the
    adapter is built); ``init_seed`` seeds the one θ_init of each backbone.
    """

    what: ClassVar[str] = "language-adapter config"

    architecture: str = setting("seq_bn_inv", text(), "adapters config name (MAD-X invertible)")
    reduction_factor: int | float = setting(
        2, number(0, MAX_REDUCTION, low_open=True), "hidden size / bottleneck size"
    )
    non_linearity: str = setting("gelu_new", text(), "activation inside the bottleneck")
    init_seed: int = setting(0, seed(), "seed of the shared initialisation θ_init")


@dataclass(frozen=True)
class TaskAdapterConfig(Settings):
    """``task_adapter.adapter_config``: the task adapter's bottleneck (Pfeiffer, as MAD-X).

    The defaults are the authors' released setting (``mklimasz/language-arithmetic``,
    ``examples/pytorch/lang-arithmetic/lang_adapter.py``: ``pfeiffer``, reduction factor
    16, ``gelu_new``); ``seq_bn`` is the ``pfeiffer`` config's name in ``adapters``.
    """

    what: ClassVar[str] = "task-adapter config"

    architecture: str = setting("seq_bn", text(), "adapters config name (Pfeiffer bottleneck)")
    reduction_factor: int | float = setting(
        16, number(0, MAX_REDUCTION, low_open=True), "hidden size / bottleneck size"
    )
    non_linearity: str = setting("gelu_new", text(), "activation inside the bottleneck")


@dataclass(frozen=True)
class LanguageAdapterSettings(Settings):
    """``language_adapter.training`` (+ ``per_language``): MLM training of a language adapter.

    ``as_dict()`` is the ``hparams`` of ``train_language_adapter``.
    """

    what: ClassVar[str] = "language-adapter training"

    max_steps: int = setting(1000, count(), "optimizer steps")
    batch_size: int = setting(16, count(), "blocks per micro-batch")
    grad_accum: int = setting(1, count(), "micro-batches per step (effective batch)")
    lr: float = setting(1e-4, number(0, MAX_LR, low_open=True), "peak learning rate (AdamW)")
    warmup_steps: int = setting(0, count(0), "linear warm-up steps (or warmup_ratio)")
    warmup_ratio: float = setting(
        0.0, number(0, 1, high_open=True), "warm-up as a fraction of max_steps"
    )
    weight_decay: float = setting(0.0, number(0, 1), "AdamW weight decay")
    max_grad_norm: float | None = setting(
        1.0,
        number(0, MAX_GRAD_NORM, low_open=True, optional=True),
        "gradient clipping (null: none)",
    )
    block_size: int = setting(128, count(), "tokens per packed block incl. [CLS] and [SEP]")
    mlm_probability: float = setting(
        0.15, number(0, 1, low_open=True, high_open=True), "share of tokens masked"
    )
    max_train_tokens: int | None = setting(
        None,
        count(1, MAX_TOKENS, optional=True),
        "token budget in whitespace tokens: a prefix of the token file (null: all)",
    )
    eval_every: int = setting(100, count(0), "steps between validations (0: at the end)")
    max_eval_blocks: int = setting(
        64, count(), "validation: the first N blocks of the held-out documents, fixed"
    )
    eval_batch_size: int | None = setting(
        None, count(optional=True), "validation batch (null: batch_size); volatile"
    )
    checkpoint_every: int = setting(
        100, count(0), "steps between resumable checkpoints (0: none); volatile"
    )
    fp16: bool = setting(False, flag(), "fp16 autocast on CUDA (ignored on CPU)")
    bf16: bool = setting(False, flag(), "bf16 autocast on CUDA (ignored on CPU)")
    max_nonfinite_in_row: int = setting(
        100, count(), "fp16/bf16: skipped non-finite steps in a row that stop the run; volatile"
    )
    stop_after_steps: int | None = setting(
        None, count(optional=True), "test hook: stop after N steps; volatile"
    )

    def cross_problems(self, where: str) -> list[str]:
        return _warmup_problems(self, where) + _precision_problems(self, where)


@dataclass(frozen=True)
class TaskAdapterSettings(Settings):
    """``task_adapter`` training (+ ``per_task``) and its ``adapter_config``.

    ``as_dict()`` is the ``hparams`` of ``train_task_adapter``, ``adapter_config``
    included as the training code receives it.
    """

    what: ClassVar[str] = "task-adapter training"

    adapter_config: TaskAdapterConfig = nested(TaskAdapterConfig, "the task adapter's bottleneck")
    epochs: int = setting(1, count(), "training epochs, used when max_steps is null")
    max_steps: int | None = setting(
        None, count(optional=True), "optimizer steps (overrides epochs)"
    )
    batch_size: int = setting(16, count(), "examples per micro-batch")
    grad_accum: int = setting(1, count(), "micro-batches per step (effective batch)")
    lr: float = setting(1e-4, number(0, MAX_LR, low_open=True), "peak learning rate (AdamW)")
    warmup_steps: int = setting(0, count(0), "linear warm-up steps (or warmup_ratio)")
    warmup_ratio: float = setting(
        0.0, number(0, 1, high_open=True), "warm-up as a fraction of the training steps"
    )
    weight_decay: float = setting(0.0, number(0, 1), "AdamW weight decay")
    max_grad_norm: float | None = setting(
        1.0,
        number(0, MAX_GRAD_NORM, low_open=True, optional=True),
        "gradient clipping (null: none)",
    )
    max_length: int | None = setting(
        None, count(optional=True), "tokens per example (null: ner 128, nli 128, qa 384, dp 256)"
    )
    doc_stride: int = setting(128, count(), "QA: overlap of context windows")
    max_answer_len: int = setting(30, count(), "QA: longest answer in post-processing")
    max_train_rows: int | None = setting(
        None, count(optional=True), "use only the first N training rows"
    )
    max_eval_rows: int | None = setting(
        None, count(optional=True), "use only the first N validation rows"
    )
    eval_every: int = setting(500, count(0), "steps between validations (0: at the end)")
    eval_every_epochs: int | None = setting(
        None, count(optional=True), "validate every N epochs (overrides eval_every)"
    )
    early_stopping_patience: int | None = setting(
        None,
        count(optional=True),
        "stop after N validations in a row without a better metric (null: never)",
    )
    eval_batch_size: int | None = setting(
        None, count(optional=True), "validation batch (null: 2 * batch_size); volatile"
    )
    checkpoint_every: int = setting(
        500, count(0), "steps between resumable checkpoints (0: none); volatile"
    )
    fp16: bool = setting(False, flag(), "fp16 autocast on CUDA (ignored on CPU)")
    bf16: bool = setting(False, flag(), "bf16 autocast on CUDA (ignored on CPU)")
    max_nonfinite_in_row: int = setting(
        100, count(), "fp16/bf16: skipped non-finite steps in a row that stop the run; volatile"
    )
    stop_after_steps: int | None = setting(
        None, count(optional=True), "test hook: stop after N steps; volatile"
    )

    def cross_problems(self, where: str) -> list[str]:
        return _warmup_problems(self, where) + _precision_problems(self, where)


# ----------------------------------------------------------------------------- backbone


@dataclass(frozen=True)
class DemoBackboneSettings(Settings):
    """``models[i].demo``: a small backbone built offline and pre-trained on demo corpora.

    ``as_dict()`` holds every key; :meth:`spec` is the ``spec`` that
    ``build_demo_backbone`` takes (``arch`` and ``seed`` are its own arguments).
    """

    what: ClassVar[str] = "demo backbone"

    arch: str = required(text(("bert", "xlmr")), "bert or xlmr")
    seed: int = setting(0, seed(), "seed of the weights and the pre-training order")
    vocab_size: int = setting(4000, count(100), "target vocabulary of the trained tokenizer")
    min_frequency: int = setting(2, count(), "tokenizer: ignore rarer pairs/pieces")
    tokenizer_max_lines_per_lang: int = setting(
        20000, count(), "tokenizer: lines per language (equal shares)"
    )
    hidden_size: int = setting(64, count(8), "hidden size")
    num_layers: int = setting(2, count(), "transformer layers")
    num_heads: int = setting(4, count(), "attention heads (must divide hidden_size)")
    intermediate_size: int = setting(128, count(8), "feed-forward size")
    max_position_embeddings: int = setting(512, count(16), "usable positions")
    dropout: float = setting(0.1, number(0, 1, high_open=True), "hidden and attention dropout")
    pretrain_steps: int = setting(1000, count(0), "MLM pre-training steps")
    batch_size: int = setting(16, count(), "blocks per pre-training batch")
    seq_len: int = setting(128, count(8), "tokens per pre-training block")
    lr: float = setting(2e-3, number(0, MAX_LR, low_open=True), "peak learning rate (AdamW)")
    warmup_ratio: float = setting(
        0.06, number(0, 1, high_open=True), "warm-up as a fraction of pretrain_steps"
    )
    weight_decay: float = setting(0.01, number(0, 1), "AdamW weight decay")
    mlm_probability: float = setting(
        0.15, number(0, 1, low_open=True, high_open=True), "share of tokens masked"
    )
    pretrain_weights: dict[str, int] = setting(
        {}, weights(), "share of each language in pre-training batches (others 1; 0: unseen)"
    )

    def cross_problems(self, where: str) -> list[str]:
        if self.seq_len > self.max_position_embeddings:
            return [
                f"{where}.seq_len ({self.seq_len}) exceeds max_position_embeddings "
                f"({self.max_position_embeddings}); lower seq_len or raise the maximum"
            ]
        if self.hidden_size % self.num_heads:
            return [
                f"{where}.hidden_size ({self.hidden_size}) is not divisible by num_heads "
                f"({self.num_heads})"
            ]
        return []

    def spec(self) -> dict[str, Any]:
        """The ``spec`` of ``build_demo_backbone``: every key but ``arch`` and ``seed``."""
        return {k: v for k, v in self.as_dict().items() if k not in ("arch", "seed")}


# ----------------------------------------------------------------------------- from a config


def _checked_merge(
    kind: type[Settings], parts: list[tuple[Mapping[str, Any], str]]
) -> dict[str, Any]:
    """Check each section on its own (so a message names where a key was written), merge."""
    found = [p for mapping, where in parts for p in kind.problems(mapping or {}, where)]
    if found:
        raise SettingsError(found)
    merged: dict[str, Any] = {}
    for mapping, _ in parts:
        merged.update(mapping or {})
    return merged


def language_adapter_config(config: Mapping[str, Any]) -> LanguageAdapterConfig:
    """``language_adapter.adapter_config`` of a workflow config."""
    section = (config.get("language_adapter") or {}).get("adapter_config")
    return LanguageAdapterConfig.from_mapping(section, where="language_adapter.adapter_config")


def language_settings(
    config: Mapping[str, Any], lang: str | None = None, *, tokens: int | None = None
) -> LanguageAdapterSettings:
    """Training settings of ``lang``'s adapter: ``training``, its ``per_language`` on top.

    ``tokens`` is the budget of a token-budget adapter (``max_train_tokens``), as the
    budget rule sets it. Mirrors ``get_language_training`` of ``rules/common.smk``.
    """
    section = config.get("language_adapter") or {}
    parts = [(section.get("training") or {}, "language_adapter.training")]
    override = (section.get("per_language") or {}).get(lang) if lang is not None else None
    if override:
        parts.append((override, f"language_adapter.per_language.{lang}"))
    merged = _checked_merge(LanguageAdapterSettings, parts)
    if tokens is not None:
        merged["max_train_tokens"] = tokens
    where = parts[-1][1]
    return LanguageAdapterSettings.from_mapping(merged, where=where)


def task_settings(config: Mapping[str, Any], task: str | None = None) -> TaskAdapterSettings:
    """Training settings of ``task``'s adapter: ``training``, its ``per_task`` on top.

    ``adapter_config`` comes from ``task_adapter.adapter_config`` only, as in
    ``get_task_training`` of ``rules/common.smk``.
    """
    section = config.get("task_adapter") or {}
    parts = [(section.get("training") or {}, "task_adapter.training")]
    override = (section.get("per_task") or {}).get(task) if task is not None else None
    if override:
        parts.append((override, f"task_adapter.per_task.{task}"))
    for mapping, where in parts:
        if "adapter_config" in (mapping or {}):
            raise SettingsError(
                [f"{where}.adapter_config is not read there; set task_adapter.adapter_config"]
            )
    merged = _checked_merge(TaskAdapterSettings, parts)
    merged["adapter_config"] = section.get("adapter_config") or {}
    return TaskAdapterSettings.from_mapping(merged, where=parts[-1][1])


def _fullft_model(config: Mapping[str, Any], model: str | None) -> Mapping[str, Any]:
    """``fullft.per_model.<model>`` (empty without one): a backbone's own settings, e.g.
    XLM-R large's shorter MLM and warm-up (task-arithmetic-crosslingual Table 8)."""
    if model is None:
        return {}
    return ((config.get("fullft") or {}).get("per_model") or {}).get(model) or {}


def fullft_language_settings(
    config: Mapping[str, Any], lang: str | None = None, model: str | None = None
) -> LanguageAdapterSettings:
    """Full-model MLM settings of ``lang`` (task arithmetic with full fine-tuning):
    ``fullft.language.training``, its ``per_language`` on top, then the model's
    ``fullft.per_model.<model>.language.training``; the adapter's fields."""
    section = (config.get("fullft") or {}).get("language") or {}
    parts = [(section.get("training") or {}, "fullft.language.training")]
    override = (section.get("per_language") or {}).get(lang) if lang is not None else None
    if override:
        parts.append((override, f"fullft.language.per_language.{lang}"))
    own_model = (_fullft_model(config, model).get("language") or {}).get("training")
    if own_model:
        parts.append((own_model, f"fullft.per_model.{model}.language.training"))
    merged = _checked_merge(LanguageAdapterSettings, parts)
    return LanguageAdapterSettings.from_mapping(merged, where=parts[-1][1])


def fullft_task_settings(
    config: Mapping[str, Any], dataset: str | None = None, model: str | None = None
) -> TaskAdapterSettings:
    """Full fine-tuning settings of a ``fullft.datasets`` entry, each layer on top of the
    one before: ``fullft.task.training``, the dataset's ``training``, the model's
    ``fullft.per_model.<model>.task.training`` and its ``datasets.<dataset>.training``
    (``adapter_config`` is not read: no adapter)."""
    section = config.get("fullft") or {}
    parts = [((section.get("task") or {}).get("training") or {}, "fullft.task.training")]
    own = ((section.get("datasets") or {}).get(dataset) or {}).get("training") if dataset else None
    if own:
        parts.append((own, f"fullft.datasets.{dataset}.training"))
    per_model = _fullft_model(config, model)
    for where, mapping in (
        ("task.training", (per_model.get("task") or {}).get("training")),
        (
            f"datasets.{dataset}.training",
            ((per_model.get("datasets") or {}).get(dataset) or {}).get("training")
            if dataset
            else None,
        ),
    ):
        if mapping:
            parts.append((mapping, f"fullft.per_model.{model}.{where}"))
    merged = _checked_merge(TaskAdapterSettings, parts)
    if "adapter_config" in merged:
        raise SettingsError([f"{parts[-1][1]}.adapter_config: full fine-tuning has no adapter"])
    return TaskAdapterSettings.from_mapping(merged, where=parts[-1][1])


def demo_backbone_settings(model: Mapping[str, Any], where: str) -> DemoBackboneSettings:
    """Settings of one ``models`` entry's ``demo`` spec (``where``: e.g. ``models[0].demo``)."""
    return DemoBackboneSettings.from_mapping(model.get("demo"), where=where)


__all__ = [
    "MAX_COUNT",
    "MAX_SEED",
    "MAX_TOKENS",
    "VOLATILE_KEYS",
    "DemoBackboneSettings",
    "LanguageAdapterConfig",
    "LanguageAdapterSettings",
    "Settings",
    "SettingsError",
    "TaskAdapterConfig",
    "TaskAdapterSettings",
    "demo_backbone_settings",
    "fullft_language_settings",
    "fullft_task_settings",
    "show_value",
    "language_adapter_config",
    "language_settings",
    "task_settings",
    "unknown_key_message",
    "XmodAddSettings",
    "XmodFinetuneSettings",
    "XmodPretrainSettings",
]


# ----------------------------------------------------------------------------- X-MOD arm


@dataclass(frozen=True)
class XmodPretrainSettings(Settings):
    """``xmod.pretrain``: MLM pre-training of the demo's tiny X-MOD and SHARED models.

    The paper: batch 2048, peak lr 7e-4, linear decay, 125k steps (195k/265k/269k for
    30/60/75 languages); the released checkpoints are used instead of re-training them.
    """

    what: ClassVar[str] = "X-MOD pre-training"

    seed: int = setting(0, seed(), "seed of the weights, the language draws and the masks")
    steps: int = setting(200, count(1), "optimizer steps (one language per batch)")
    batch_size: int = setting(16, count(), "blocks per batch")
    seq_len: int = setting(64, count(8), "tokens per block")
    lr: float = setting(2e-3, number(0, MAX_LR, low_open=True), "peak learning rate (AdamW)")
    warmup_ratio: float = setting(
        0.06, number(0, 1, high_open=True), "warm-up as a fraction of steps"
    )
    weight_decay: float = setting(0.01, number(0, 1), "AdamW weight decay")
    mlm_probability: float = setting(
        0.15, number(0, 1, low_open=True, high_open=True), "share of tokens masked"
    )
    alpha: float = setting(0.7, number(0, 1), "language sampling p_i ∝ n_i^alpha")
    init_from_base: bool = setting(
        False, flag(), "start the shared weights from the XLM-R-shaped base model (demo)"
    )


@dataclass(frozen=True)
class XmodAddSettings(Settings):
    """``xmod.adding``: a language added post hoc (own vocabulary, embeddings and modules).

    The paper: a 30k SentencePiece vocabulary, lr 1e-4, as many examples as a
    pre-trained language saw.
    """

    what: ClassVar[str] = "X-MOD language adding"

    seed: int = setting(0, seed(), "seed of new rows and modules, batch order and masks")
    steps: int = setting(60, count(1), "MLM steps on the added language")
    batch_size: int = setting(16, count(), "blocks per micro-batch")
    grad_accum: int = setting(1, count(), "micro-batches per step (paper: batch 2048)")
    seq_len: int = setting(64, count(8), "tokens per block")
    lr: float = setting(1e-4, number(0, MAX_LR, low_open=True), "learning rate (AdamW)")
    vocab_size: int = setting(30000, count(100), "the added language's own vocabulary")
    tokenizer_max_lines: int = setting(20000, count(), "corpus lines the tokenizer sees")
    mlm_probability: float = setting(
        0.15, number(0, 1, low_open=True, high_open=True), "share of tokens masked"
    )


@dataclass(frozen=True)
class XmodFinetuneSettings(Settings):
    """``xmod.finetune``: one grid point of English fine-tuning (embeddings and modules
    frozen). The paper's grid: lr {1e-4, 3e-4, 5e-4}, epochs {5, 10} (NER/NLI), {3, 5} QA."""

    what: ClassVar[str] = "X-MOD fine-tuning"

    epochs: float = setting(1, number(0, 1000, low_open=True), "passes over the English data")
    batch_size: int = setting(16, count(), "examples per batch")
    lr: float = setting(3e-4, number(0, MAX_LR, low_open=True), "peak learning rate (AdamW)")
    warmup_ratio: float = setting(0.1, number(0, 1, high_open=True), "warm-up fraction")
    max_length: int = setting(128, count(8), "tokens per example")
    max_train_rows: int | None = setting(
        None, count(optional=True), "English training rows used (null: all)"
    )
    max_eval_rows: int | None = setting(
        None, count(optional=True), "test rows scored per target (null: all, as the paper)"
    )
