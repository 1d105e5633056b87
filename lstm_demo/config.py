"""Typed settings: preprocessing, tokenizer, model, training, presets and the app's environment.

Every run saves its full `RunConfig` as JSON, so a stored run is enough to rebuild its
preprocessing, tokenizer and model exactly. The environment is read here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENCODERS = ("lstm", "gru", "rnn")
POOLINGS = ("last", "mean", "max", "attention")
EMBEDDING_INITS = ("uniform", "normal")
TOKENIZER_KINDS = ("word", "bpe", "wordpiece")
PACKINGS = ("auto", "padded", "paired", "packed")
TRAINING_PLACES = ("process", "thread")  # where the app's worker runs a training (AppSettings.training)
MONITORS = ("accuracy", "macro_f1", "loss")  # validation figures that can choose the epoch (loss: lowest)
MAX_PATH_CHARS = 4096  # longest file path an option may hold (Linux's PATH_MAX)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PreprocessConfig:
    lowercase: bool = True  # fold case before tokenizing
    strip_accents: bool = True  # "café" -> "cafe" (NFD, combining marks dropped)
    remove_stopwords: bool = False  # drop English stop words (a fixed list shipped with the package)
    stem: bool = False  # Snowball (Porter2) English stemmer on every word
    max_length: int = 128  # tokens kept per text; longer texts are cut at the end

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {self.max_length}")


@dataclass(frozen=True)
class TokenizerConfig:
    kind: str = "word"  # word | bpe | wordpiece
    vocab_size: int = 30000  # upper bound on the vocabulary, special tokens included
    min_frequency: int = 1  # a word (or merge) must occur this often in the training split

    def __post_init__(self) -> None:
        if self.kind not in TOKENIZER_KINDS:
            raise ValueError(f"tokenizer kind must be one of {TOKENIZER_KINDS}, got {self.kind!r}")
        if self.vocab_size < 4:
            raise ValueError(f"vocab_size must be at least 4, got {self.vocab_size}")
        if self.min_frequency < 1:
            raise ValueError(f"min_frequency must be at least 1, got {self.min_frequency}")


@dataclass(frozen=True)
class ModelConfig:
    encoder: str = "lstm"  # lstm | gru | rnn (vanilla tanh RNN)
    embedding_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    embedding_dropout: float = 0.2  # dropout on word vectors (Keras' LSTM `dropout`)
    # one embedding-dropout mask per text, the same at every step (Gal & Ghahramani 2016; what
    # Keras' LSTM `dropout` does) instead of a fresh mask per token
    variational_dropout: bool = False
    dropout: float = 0.0  # between stacked layers and before the output layer
    recurrent_dropout: float = 0.2  # DropConnect on hidden-to-hidden weights (keeps cuDNN/oneDNN kernels)
    pooling: str = "last"  # last | mean | max | attention
    embedding_init: str = "uniform"  # uniform: Keras' U(-0.05, 0.05) | normal: N(0, 1), PyTorch's default
    vocab_size: int = 0  # filled from the trained tokenizer
    num_classes: int = 0  # filled from the labels

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.embedding_init not in EMBEDDING_INITS:
            raise ValueError(f"embedding_init must be one of {EMBEDDING_INITS}, got {self.embedding_init!r}")
        for name in ("embedding_dim", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("embedding_dropout", "dropout", "recurrent_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 0  # epochs without validation improvement before stopping; 0 never stops early
    monitor: str = (
        "accuracy"  # validation metric for early stopping and best weights: accuracy | macro_f1 | loss
    )
    grad_clip: float = 5.0  # max gradient norm; 0 disables clipping
    class_weights: bool = False  # weight the loss by inverse class frequency
    label_smoothing: float = 0.0
    word_dropout: float = 0.0  # share of training tokens replaced by [UNK] each step (regularises small data)
    ema_decay: float = 0.0  # exponential moving average of the weights (validated and kept); 0 turns it off
    # adversarial training (Miyato et al. 2017): each step also trains on the embeddings pushed along
    # their loss gradient by this share of each text's embedding norm; 0 turns it off
    adversarial: float = 0.0
    seed: int = 13
    val_fraction: float = 0.1  # stratified share of the training table held out for validation
    # after validation has chosen the epoch count, train tokenizer and model again on all training
    # rows (the held-out share included) and keep that model; not with a separate validation file
    refit: bool = False
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    mixed_precision: bool = True  # bf16/fp16 autocast on CUDA only
    packing: str = "auto"  # auto | padded | paired | packed: how variable lengths reach the recurrent kernel
    log_every: int = 20  # steps between progress reports inside an epoch
    # processes that train together (torchrun, DistributedDataParallel): one per GPU on CUDA, CPU
    # ranks otherwise; each trains on its share of every batch, so the schedule stays the same
    nproc: int = 1
    budget: float = 0.0  # seconds the `auto` preset searches settings before it trains; 0: no search
    # pretrained word vectors the embedding starts from (`vectors.py`): a word2vec/GloVe text file, or
    # NAME.npy beside NAME.vocab (one word per row); "" for none. Options from the app name a file in
    # its vectors folder; the run stores the resolved path
    vectors: str = ""
    freeze_vectors: bool = False  # keep the pretrained rows as read (no gradient), else fine-tune them
    vectors_sha256: str = ""  # the vectors' fingerprint, taken when the run is prepared; one given must match

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be at least 1")
        if self.nproc < 1:
            raise ValueError(f"nproc must be at least 1, got {self.nproc}")
        if not 0.0 < self.val_fraction < 0.9:
            raise ValueError(f"val_fraction must be in (0, 0.9), got {self.val_fraction}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if self.packing not in PACKINGS:
            raise ValueError(f"packing must be one of {PACKINGS}, got {self.packing!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be at least 1, got {self.log_every}")
        if self.patience < 0:
            raise ValueError(f"patience must be 0 (never stop early) or more, got {self.patience}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must not be negative, got {self.weight_decay}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.adversarial < 0:
            raise ValueError(f"adversarial must not be negative, got {self.adversarial}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        if not 0 < self.learning_rate <= 10:
            raise ValueError(f"learning_rate must be in (0, 10], got {self.learning_rate}")
        if not 0 <= self.weight_decay <= 10:
            raise ValueError(f"weight_decay must be in [0, 10], got {self.weight_decay}")
        if not 0 <= self.adversarial <= 10:
            raise ValueError(f"adversarial must be in [0, 10], got {self.adversarial}")
        if not 0 <= self.grad_clip <= 1e6:
            raise ValueError(f"grad_clip must be in [0, 1e6] (0 turns it off), got {self.grad_clip}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if not self.patience <= 1000 or not self.log_every <= 10**6:
            raise ValueError("patience must be at most 1000 and log_every at most 1,000,000")
        if not 0 <= self.budget < math.inf:
            raise ValueError(f"budget must be a finite number of seconds, 0 or more, got {self.budget}")
        if len(self.vectors) > MAX_PATH_CHARS or "\0" in self.vectors:
            raise ValueError(f"vectors must be a file path of at most {MAX_PATH_CHARS} characters")
        if (self.freeze_vectors or self.vectors_sha256) and not self.vectors:
            raise ValueError("freeze_vectors and vectors_sha256 need a vectors file (train.vectors)")
        if self.vectors_sha256 and not _SHA256.fullmatch(self.vectors_sha256):
            raise ValueError(
                f"vectors_sha256 must be 64 hexadecimal digits, got {self.vectors_sha256[:80]!r}"
            )


@dataclass(frozen=True)
class RunConfig:
    """Everything a saved run needs to be rebuilt: preprocessing, tokenizer, model, training, labels."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "default"
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    def to_stored_dict(self) -> dict[str, Any]:
        """`to_dict` for what is stored, shown and exported: the vectors file by its name alone, as the
        app's vectors folder knows it, never a server path (its fingerprint still says which file)."""
        d = self.to_dict()
        d["train"]["vectors"] = Path(self.train.vectors).name if self.train.vectors else ""
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Rebuild from `to_dict` output; unknown keys are rejected so a corrupt file cannot pass."""
        if not isinstance(d, dict):
            raise ValueError(f"a run configuration must be a JSON object, not {type(d).__name__}")
        parts = {
            "preprocess": PreprocessConfig,
            "tokenizer": TokenizerConfig,
            "model": ModelConfig,
            "train": TrainConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in parts:
                kwargs[key] = _build(parts[key], value)
            elif key == "labels":
                kwargs[key] = tuple(str(v) for v in value)
            elif key in {f.name for f in fields(cls)}:
                kwargs[key] = value
            else:
                raise ValueError(f"unknown configuration key {key!r}")
        return cls(**kwargs)


def _build(kind: type, value: dict[str, Any]) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{kind.__name__} must be an object")
    names = {f.name for f in fields(kind)}
    unknown = set(value) - names
    if unknown:
        raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
    return kind(**value)


# Presets. `seed` is the design notes' Keras model; `default` was chosen on ../shared/datasets
# (see benchmarks/README.md for the sweep); `fast` trains the example data in seconds on a CPU.
PRESETS: dict[str, RunConfig] = {
    "seed": RunConfig(
        preset="seed",
        preprocess=PreprocessConfig(lowercase=True, strip_accents=False, max_length=128),
        tokenizer=TokenizerConfig(kind="word", vocab_size=30000, min_frequency=1),
        model=ModelConfig(
            encoder="lstm",
            embedding_dim=128,
            hidden_size=128,
            num_layers=1,
            bidirectional=False,
            embedding_dropout=0.2,
            variational_dropout=True,  # Keras draws its LSTM `dropout` mask once per sequence
            dropout=0.0,
            recurrent_dropout=0.2,
            pooling="last",
        ),
        train=TrainConfig(batch_size=64, epochs=10, learning_rate=1e-3, patience=0, grad_clip=0.0),
    ),
    "default": RunConfig(
        preset="default",
        preprocess=PreprocessConfig(lowercase=True, strip_accents=True, max_length=128),
        tokenizer=TokenizerConfig(kind="word", vocab_size=30000, min_frequency=1),
        model=ModelConfig(
            encoder="lstm",
            embedding_dim=128,
            hidden_size=128,
            num_layers=1,
            bidirectional=True,
            embedding_dropout=0.3,
            dropout=0.3,
            recurrent_dropout=0.2,
            pooling="max",
        ),
        train=TrainConfig(
            batch_size=32, epochs=12, learning_rate=2e-3, patience=4, ema_decay=0.995, adversarial=0.2
        ),
    ),
    "fast": RunConfig(
        preset="fast",
        preprocess=PreprocessConfig(lowercase=True, strip_accents=True, max_length=64),
        tokenizer=TokenizerConfig(kind="word", vocab_size=5000, min_frequency=1),
        model=ModelConfig(
            encoder="lstm",
            embedding_dim=48,
            hidden_size=48,
            bidirectional=False,
            embedding_dropout=0.1,
            dropout=0.1,
            recurrent_dropout=0.0,
            pooling="max",
        ),
        train=TrainConfig(batch_size=16, epochs=8, learning_rate=5e-3, patience=0),
    ),
}
# `auto`: the data-adapted `default` as the first trial of a search within the budget (see search.py)
PRESETS["auto"] = replace(
    PRESETS["default"], preset="auto", train=replace(PRESETS["default"].train, budget=600.0)
)


def preset(name: str, **overrides: Any) -> RunConfig:
    """A preset with overrides given as `section__field=value` (e.g. `train__epochs=3`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return override(PRESETS[name], **overrides)


def override(cfg: RunConfig, **overrides: Any) -> RunConfig:
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if "__" in key:
            section, name = key.split("__", 1)
            sections.setdefault(section, {})[name] = value
        else:
            top[key] = value
    for section, values in sections.items():
        current = getattr(cfg, section, None)
        if current is None or not dataclasses.is_dataclass(current):
            raise ValueError(f"unknown configuration section {section!r}")
        known = {f.name for f in fields(current)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown option {section}.{name}")
            values[name] = _typed(f"{section}.{name}", getattr(current, name), value)
        top[section] = replace(current, **values)
    return replace(cfg, **top)


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _typed(option: str, current: Any, value: Any) -> Any:
    """`value` as the type the option already has (an int is a valid float); anything else is refused,
    so a command line's or an HTTP request's "maybe" never reaches a switch as a truthy string."""
    kind = type(current)
    if kind not in _KINDS:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ValueError(f"{option} must be {_KINDS[kind]}, got {value!r}")
    return value


def _env_bool(env: dict[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _env_number(env: dict[str, str], names: tuple[str, ...], cast: type, default: float | int) -> Any:
    """The first of `names` that is set, as a number; a malformed value names its variable."""
    for name in names:
        value = env.get(name)
        if value:
            try:
                return cast(value)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {value!r}") from None
    return default


class LimitError(ValueError):
    """A request over one of the app's limits; the message names the limit, the value and its variable."""


# name -> (default, environment variable, what it bounds). `Limits` is built from this table, the
# README's configuration table lists the same rows, and a test checks that the two agree.
LIMIT_TABLE: dict[str, tuple[float | int, str, str]] = {
    "upload_mb": (50.0, "LSTM_DEMO_MAX_UPLOAD_MB", "largest uploaded table or bundle to read, in MB"),
    "rows": (500_000, "LSTM_DEMO_MAX_ROWS", "most rows read from a table"),
    "columns": (1_000, "LSTM_DEMO_MAX_COLUMNS", "most columns in a table (refused after its header)"),
    "text_chars": (20_000, "LSTM_DEMO_MAX_TEXT_CHARS", "longest text to predict or explain, in characters"),
    "batch_rows": (100_000, "LSTM_DEMO_MAX_BATCH_ROWS", "most texts in one batch prediction"),
    "max_length": (1_024, "LSTM_DEMO_MAX_LENGTH", "largest `preprocess__max_length` (tokens kept per text)"),
    "vocab_size": (200_000, "LSTM_DEMO_MAX_VOCAB", "largest tokenizer vocabulary"),
    "embedding_dim": (1_024, "LSTM_DEMO_MAX_EMBEDDING_DIM", "largest embedding size"),
    "hidden_size": (1_024, "LSTM_DEMO_MAX_HIDDEN_SIZE", "largest hidden size"),
    "num_layers": (8, "LSTM_DEMO_MAX_LAYERS", "most stacked recurrent layers"),
    "classes": (1_000, "LSTM_DEMO_MAX_CLASSES", "most classes (distinct labels)"),
    "model_mb": (1_024.0, "LSTM_DEMO_MAX_MODEL_MB", "largest model, as float32 parameter memory in MB"),
    "epochs": (500, "LSTM_DEMO_MAX_EPOCHS", "most training epochs"),
    "batch_size": (4_096, "LSTM_DEMO_MAX_BATCH_SIZE", "largest training batch"),
    "ig_steps": (500, "LSTM_DEMO_MAX_IG_STEPS", "most integration steps for an explanation"),
    "faithfulness_texts": (2_000, "LSTM_DEMO_MAX_FAITHFULNESS_TEXTS", "most texts in a faithfulness check"),
    "parallel_uploads": (2, "LSTM_DEMO_MAX_PARALLEL_UPLOADS", "uploads parsed at the same time"),
    "search_seconds": (86_400.0, "LSTM_DEMO_MAX_SEARCH_SECONDS", "longest `auto` search budget, in seconds"),
    "nproc": (4, "LSTM_DEMO_MAX_NPROC", "most processes (torchrun ranks, GPUs) one training starts"),
    "estimate_seconds": (
        5.0,
        "LSTM_DEMO_MAX_ESTIMATE_SECONDS",
        "longest time an estimate before Start spends timing training steps, in seconds",
    ),
    "vectors_mb": (
        1_024.0,
        "LSTM_DEMO_MAX_VECTORS_MB",
        "largest pretrained vectors file (`train.vectors`), in MB",
    ),
    "shelf_mb": (
        4_096.0,
        "LSTM_DEMO_MAX_SHELF_MB",
        "most MB the app's vectors folder may hold after an upload from the Train tab",
    ),
}


@dataclass(frozen=True)
class Limits:
    """Upper bounds on everything a person or a file can ask for, checked at every door (UI, HTTP API,
    CLI, bundle import) before any work or allocation. Defaults suit a shared 2-core server; each is
    overridable by its environment variable (`LIMIT_TABLE`)."""

    upload_mb: float = 50.0
    rows: int = 500_000
    columns: int = 1_000
    text_chars: int = 20_000
    batch_rows: int = 100_000
    max_length: int = 1_024
    vocab_size: int = 200_000
    embedding_dim: int = 1_024
    hidden_size: int = 1_024
    num_layers: int = 8
    classes: int = 1_000
    model_mb: float = 1_024.0
    epochs: int = 500
    batch_size: int = 4_096
    ig_steps: int = 500
    faithfulness_texts: int = 2_000
    parallel_uploads: int = 2
    search_seconds: float = 86_400.0
    nproc: int = 4
    estimate_seconds: float = 5.0
    vectors_mb: float = 1_024.0
    shelf_mb: float = 4_096.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{LIMIT_TABLE[f.name][1]} must be a positive number, got {value!r}")

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 2**20)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Limits:
        values = {}
        for f in fields(cls):
            default, variable, _ = LIMIT_TABLE[f.name]
            values[f.name] = _env_number(env, (variable,), type(default), default)
        return cls(**values)

    def check(self, name: str, value: float, what: str | None = None) -> None:
        """Refuse `value` above the limit `name` (NaN too), naming the variable that raises it."""
        bound = getattr(self, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not value <= bound:
            raise LimitError(
                f"{what or name} is {value!r}, over the limit of {bound:,} (set {LIMIT_TABLE[name][1]} to change it)"
            )

    def check_config(self, cfg: RunConfig) -> None:
        """Every size in a run's configuration against the limits, and the model's parameter memory."""
        self.check("max_length", cfg.preprocess.max_length, "preprocess.max_length")
        self.check("vocab_size", cfg.tokenizer.vocab_size, "tokenizer.vocab_size")
        if cfg.model.vocab_size:
            self.check("vocab_size", cfg.model.vocab_size, "model.vocab_size")
        self.check("embedding_dim", cfg.model.embedding_dim, "model.embedding_dim")
        self.check("hidden_size", cfg.model.hidden_size, "model.hidden_size")
        self.check("num_layers", cfg.model.num_layers, "model.num_layers")
        self.check("classes", cfg.model.num_classes, "the number of classes")
        self.check("epochs", cfg.train.epochs, "train.epochs")
        self.check("batch_size", cfg.train.batch_size, "train.batch_size")
        self.check("nproc", cfg.train.nproc, "train.nproc (processes)")
        self.check("search_seconds", cfg.train.budget, "train.budget (seconds of search)")
        self.check(
            "model_mb", round(model_megabytes(cfg.model, cfg.tokenizer.vocab_size), 1), "the model (MB)"
        )


_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def parse_budget(value: str | float, limits: Limits | None = None) -> float:
    """Seconds from `600`, `"90s"`, `"10m"` or `"1.5h"`, positive and within the search limit."""
    if isinstance(value, bool):
        raise ValueError(f"a search budget must be a duration such as 10m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _BUDGET.match(str(value))
        if match is None:
            raise ValueError(f"a search budget is a number of seconds or e.g. 90s, 10m, 1h; got {value!r}")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a search budget must be a positive number of seconds, got {value!r}")
    (limits or Limits()).check("search_seconds", seconds, "the search budget (seconds)")
    return seconds


def model_megabytes(model: ModelConfig, vocab_size: int | None = None) -> float:
    """Float32 parameter memory of a model of this configuration, in MB, computed from its sizes alone
    (nothing is built), so an oversized request is refused before any allocation."""
    vocab = model.vocab_size or vocab_size or 0
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[model.encoder]
    d, h, n = model.directions, model.hidden_size, model.num_layers
    params = vocab * model.embedding_dim
    for layer in range(n):
        width = model.embedding_dim if layer == 0 else h * d
        params += d * gates * h * (width + h + 2)
    features = h * d
    if model.pooling == "attention":
        params += features + 1
    params += features * max(model.num_classes, 1) + max(model.num_classes, 1)
    return params * 4 / 2**20


@dataclass(frozen=True)
class AppSettings:
    """Settings read from the environment (the README's configuration table lists each one)."""

    home: Path  # LSTM_DEMO_HOME: runs, database, uploads
    db_url: str  # LSTM_DEMO_DB_URL: SQLAlchemy URL; default sqlite file in home
    host: str  # GRADIO_SERVER_NAME / LSTM_DEMO_HOST
    port: int  # GRADIO_SERVER_PORT / LSTM_DEMO_PORT
    auth: tuple[str, str] | None  # LSTM_DEMO_USERNAME + LSTM_DEMO_PASSWORD
    device: str  # LSTM_DEMO_DEVICE: auto | cpu | cuda | cuda:N | mps
    share: bool  # LSTM_DEMO_SHARE: Gradio public share link, off unless asked for
    limits: Limits = field(default_factory=Limits)  # LSTM_DEMO_MAX_*: see LIMIT_TABLE
    # LSTM_DEMO_TRAINING: where the app's trainings run. `process`: each in a child process (`job`),
    # so one that exhausts memory takes down only itself; `thread`: in this process (a child pays
    # for importing torch again, seconds that tests of the queue need not wait)
    training: str = "process"
    # LSTM_DEMO_TRAINING_NICE: how much lower a training child's CPU priority is than the app's (the
    # `nice` increment, 0-19): the child uses every core, and the app's predictions, each a few
    # milliseconds of work, must not wait behind it for a time slice
    training_nice: int = 10

    def __post_init__(self) -> None:
        if self.training not in TRAINING_PLACES:
            raise ValueError(f"LSTM_DEMO_TRAINING must be one of {TRAINING_PLACES}, got {self.training!r}")
        if not (isinstance(self.training_nice, int) and 0 <= self.training_nice <= 19):
            raise ValueError(
                f"LSTM_DEMO_TRAINING_NICE must be a whole number from 0 to 19, got {self.training_nice!r}"
            )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AppSettings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("LSTM_DEMO_HOME") or Path.home() / ".lstm-demo").expanduser()
        db_url = env.get("LSTM_DEMO_DB_URL") or f"sqlite:///{home / 'lstm-demo.sqlite3'}"
        user, password = env.get("LSTM_DEMO_USERNAME"), env.get("LSTM_DEMO_PASSWORD")
        if bool(user) != bool(password):
            raise ValueError("set both LSTM_DEMO_USERNAME and LSTM_DEMO_PASSWORD, or neither")
        return cls(
            home=home,
            db_url=db_url,
            host=env.get("GRADIO_SERVER_NAME") or env.get("LSTM_DEMO_HOST") or "127.0.0.1",
            port=_env_number(env, ("GRADIO_SERVER_PORT", "LSTM_DEMO_PORT"), int, 7860),
            auth=(user, password) if user and password else None,
            device=env.get("LSTM_DEMO_DEVICE") or "auto",
            share=_env_bool(env, "LSTM_DEMO_SHARE", False),
            limits=Limits.from_env(env),
            training=env.get("LSTM_DEMO_TRAINING") or "process",
            training_nice=_env_number(env, ("LSTM_DEMO_TRAINING_NICE",), int, 10),
        )

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def vectors_dir(self) -> Path:
        """The only folder a `train.vectors` option from the app (UI, HTTP API) may name a file in."""
        return self.home / "vectors"
