"""Defaults that read the data: a preset adjusted to the texts and labels it is about to train on.

`default` was chosen on two balanced sets of short sentences; on a small, long or imbalanced file
it can settle on the majority class. `adapt` looks at the training rows only (never a test file)
and returns a new `RunConfig` plus one plain sentence per change, for the run's summary. Options a
person set explicitly are passed in `fixed` and left alone.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .config import PRESETS, Limits, RunConfig, override

# the tokenizer's pre-tokenizer (`tokenization._pre_tokenizer`, Whitespace) cuts words this way, so
# this count is the word tokenizer's length before truncation; subword tokenizers cut finer
_TOKEN = re.compile(r"\w+|[^\w\s]+")
LENGTH_PERCENTILE = 95  # max_length keeps every token of this share of the training texts
SHORTEST_MAX_LENGTH = 16  # a floor, so a file of one-word labels still leaves room for a sentence
# a ceiling below the limit: a recurrent step per token makes long documents the slowest thing a
# CPU trains, and the first few hundred tokens of a review carry most of its label
LONGEST_MAX_LENGTH = 512
IMBALANCE_RATIO = 3.0  # largest class over smallest class from which the loss is weighted...
# ...when the largest class also holds this share of the rows: the data on which a model can collapse
# to the majority class. Many classes with one rare among them (TREC) are trained as the preset is,
# since weighting there cost accuracy and macro-F1 alike (benchmarks/README.md)
MAJORITY_SHARE = 0.5
SMALL_ROWS = 2_000  # fewer training rows than this get the small-data settings
# presets adapted when a run is prepared: `seed` stays the Keras model it reproduces and `fast` stays
# fast; `auto` adapts inside its search, whose first trial is the adapted defaults
ADAPTED_PRESETS = ("default",)


@dataclass(frozen=True)
class SmallData:
    """Settings for a file of a few hundred to a couple of thousand rows.

    A smaller model has fewer weights to fit from few examples; a smaller batch and a larger
    learning rate give it enough movement in few steps; the weight average must forget within
    about an epoch, or the averaged model validated early is still close to its random start.
    On few rows a model often predicts the largest class for several epochs before it finds the
    smaller ones, and validation ties at that figure meanwhile: patience long enough to outlast
    that plateau keeps early stopping from ending the run on it.
    """

    embedding_dim: int = 64
    hidden_size: int = 64
    batch_size: int = 16
    learning_rate: float = 5e-3
    epochs: int = 40
    patience: int = 10
    dropout: float = 0.3
    ema_floor: float = 0.9  # the weight average's decay, at least this and at most the preset's


SMALL = SmallData()


@dataclass(frozen=True)
class DataShape:
    """What `adapt` read from the data; also what the search builds its choices of length on."""

    rows: int
    length_percentiles: dict[int, int]  # percentile -> tokens (word pre-tokenizer)
    class_counts: dict[str, int]

    @property
    def imbalance(self) -> float:
        """Largest class count over the smallest (1.0 when balanced)."""
        counts = list(self.class_counts.values())
        return max(counts) / max(min(counts), 1)

    @property
    def majority_share(self) -> float:
        """The largest class's share of the rows."""
        return max(self.class_counts.values()) / max(sum(self.class_counts.values()), 1)

    @property
    def smallest_class(self) -> tuple[str, float]:
        """The rarest label and its share of the rows."""
        label = min(self.class_counts, key=lambda k: (self.class_counts[k], k))
        return label, self.class_counts[label] / max(self.rows, 1)


def token_lengths(texts: Sequence[str]) -> list[int]:
    return [len(_TOKEN.findall(t)) for t in texts]


def percentile(values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile (an observed value, no interpolation); 0 for no values."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def describe(texts: Sequence[str], labels: Sequence[str]) -> DataShape:
    lengths = token_lengths(texts)
    return DataShape(
        rows=len(texts),
        length_percentiles={q: percentile(lengths, q) for q in (50, 90, LENGTH_PERCENTILE, 99)},
        class_counts=dict(sorted(Counter(labels).items())),
    )


def bounded_length(tokens: int, limits: Limits) -> int:
    """A max_length that keeps `tokens`, rounded up to a multiple of 8, within the floor and ceilings."""
    rounded = 8 * math.ceil(max(tokens, 1) / 8)
    return int(min(max(rounded, SHORTEST_MAX_LENGTH), LONGEST_MAX_LENGTH, limits.max_length))


def adapt(
    cfg: RunConfig,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    fixed: Collection[str] = (),
    limits: Limits | None = None,
) -> tuple[RunConfig, list[str]]:
    """`cfg` adjusted to the training rows `texts`/`labels`, and a note per change.

    `fixed`: options the person set (`section__field`, as `config.override` takes them), kept as set.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise ValueError("no training rows to adapt the settings to")
    limits = limits or Limits()
    shape = describe(texts, labels)
    changes: dict[str, object] = {}
    notes: list[str] = []

    def set_(key: str, value: object) -> bool:
        section, name = key.split("__", 1)
        if key in fixed or changes.get(key, getattr(getattr(cfg, section), name)) == value:
            return False
        changes[key] = value
        return True

    # grow max_length for long texts, never shorten it: a preset's length already costs short texts
    # nothing (batches are cut to their longest text), and shortening would cut the longest ones
    length = min(
        max(bounded_length(shape.length_percentiles[LENGTH_PERCENTILE], limits), cfg.preprocess.max_length),
        limits.max_length,
    )
    if set_("preprocess__max_length", length):
        notes.append(
            f"max_length {length}: {LENGTH_PERCENTILE}% of the training texts have at most "
            f"{shape.length_percentiles[LENGTH_PERCENTILE]} words"
        )

    imbalanced = shape.imbalance >= IMBALANCE_RATIO and shape.majority_share >= MAJORITY_SHARE
    if len(shape.class_counts) > 1 and imbalanced:
        label, share = shape.smallest_class
        weighted = set_("train__class_weights", True)
        by_f1 = set_("train__monitor", "macro_f1")
        if weighted or by_f1:
            what = " and ".join(
                part
                for part, on in (("weighting the loss", weighted), ("choosing the epoch by macro-F1", by_f1))
                if on
            )
            notes.append(f"classes are imbalanced ({share:.0%} {label}): {what}")

    if shape.rows < SMALL_ROWS:
        notes.extend(_small_data(cfg, shape.rows, set_))

    return override(cfg, **changes), notes


def explicit(base: RunConfig, cfg: RunConfig) -> set[str]:
    """The options (`section__field`) in which `cfg` differs from `base`: what a person set. An option
    set to the preset's own value cannot be told apart from the form echoing the preset, and adapts."""
    out = set()
    for section in ("preprocess", "tokenizer", "model", "train"):
        ours, theirs = getattr(cfg, section), getattr(base, section)
        out |= {f"{section}__{name}" for name in vars(ours) if getattr(ours, name) != getattr(theirs, name)}
    if cfg.train.vectors:  # the embedding is as wide as the vectors
        out.add("model__embedding_dim")
    return out


def for_run(
    cfg: RunConfig, texts: Sequence[str], labels: Sequence[str], limits: Limits
) -> tuple[RunConfig, list[str]]:
    """`adapt` for a run of an adapted preset, the options set apart from the preset kept; else `cfg`."""
    if cfg.preset not in ADAPTED_PRESETS:
        return cfg, []
    return adapt(cfg, texts, labels, fixed=explicit(PRESETS[cfg.preset], cfg), limits=limits)


def _small_data(cfg: RunConfig, rows: int, set_: Callable[[str, object], bool]) -> list[str]:
    """The small-data settings, each only where it goes the preset's way further (never a bigger model)."""
    changed = []
    for key, value in (
        ("model__embedding_dim", min(SMALL.embedding_dim, cfg.model.embedding_dim)),
        ("model__hidden_size", min(SMALL.hidden_size, cfg.model.hidden_size)),
        ("train__batch_size", min(SMALL.batch_size, cfg.train.batch_size)),
        ("train__learning_rate", max(SMALL.learning_rate, cfg.train.learning_rate)),
        ("train__epochs", max(SMALL.epochs, cfg.train.epochs)),
        (
            "train__patience",
            SMALL.patience if cfg.train.patience == 0 else max(SMALL.patience, cfg.train.patience),
        ),
        ("model__dropout", max(SMALL.dropout, cfg.model.dropout)),
        ("train__class_weights", True),
    ):
        if set_(key, value):
            changed.append(key.split("__", 1)[1])
    steps = math.ceil(rows * (1 - cfg.train.val_fraction) / min(SMALL.batch_size, cfg.train.batch_size))
    if cfg.train.ema_decay > 0:
        # forget within about one epoch of steps
        decay = round(min(cfg.train.ema_decay, max(SMALL.ema_floor, 1 - 1 / max(steps, 1))), 3)
        if set_("train__ema_decay", decay):
            changed.append("ema_decay")
    if not changed:
        return []
    return [
        f"small data ({rows} rows): a smaller model trained longer with patience, weighted by class "
        f"so it does not settle on the largest one ({', '.join(changed)})"
    ]
