"""The example data behind the app's one-click buttons: a shipped CSV and a generated task.

Pure Python, no torch. `EXAMPLES` is the catalogue the UI lists; `example_path` gives the CSV
to train on, writing generated examples on first use. The shipped CSVs live in `assets/examples/`
at the repository root (one copy, not packaged): the app runs from a checkout, as the README says.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "examples"

# The long-range task (Hochreiter & Schmidhuber 1997, experiment 6a, "temporal order"): two key words
# among distractors; the label is the keys in the order they appear.
KEYS = ("alpha", "omega")
DISTRACTORS = (
    "apple", "river", "stone", "cloud", "green", "table", "window", "music", "paper", "garden",
    "silver", "market", "candle", "forest", "bridge", "yellow", "pocket", "engine", "winter", "summer",
    "letter", "mirror", "basket", "orange", "rabbit", "castle", "planet", "copper", "ladder", "pencil",
    "island", "button", "carpet", "dragon", "feather", "harbor", "jacket", "kettle", "lemon", "meadow",
    "needle", "ocean", "pillow", "rocket", "saddle", "tunnel", "valley", "wagon", "violin", "tiger",
)  # fmt: skip
LONG_RANGE_LENGTH = 60  # words per text: fits the `fast` preset's max_length of 64
# Train with these on the `fast` preset: only the state after the last word reaches the classifier,
# and it reads left to right, so the first key must be carried across the whole text.
LONG_RANGE_OVERRIDES: dict[str, Any] = {"model__pooling": "last", "model__bidirectional": False}


@dataclass(frozen=True)
class Example:
    name: str  # key in EXAMPLES, stable: used in URLs and CLI arguments
    title: str  # the button's text
    description: str  # one or two sentences shown under the button
    path: Path | None  # shipped CSV, or None for a generated example
    generator: Callable[[Path], Path] | None = None  # writes the CSV at the given path and returns it
    preset: str = "fast"  # the preset to train it with
    overrides: Mapping[str, Any] = field(default_factory=dict)  # `section__field` overrides on the preset


def make_long_range(n: int = 2000, length: int = LONG_RANGE_LENGTH, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (text, label) rows of `length` random distractor words with two key words put in:
    the first within the first sixth of the text, the second just after the middle. The label
    names the keys in order ("alpha-omega"); the four labels are balanced.

    Train it with pooling "last" and a unidirectional encoder (`LONG_RANGE_OVERRIDES`) on the
    `fast` preset: the first key must then survive half the text, and a write of the second key,
    in the recurrent state. An LSTM learns this (validation accuracy 0.97-1.0 over 9 seeds); a
    vanilla RNN stays near chance, 0.25, or at best learns the recent key alone, 0.5 (tests/test_examples.py). Mean or max pooling, attention or a backward direction would
    let the keys reach the output without that memory.
    """
    if n < 1 or length < 4:
        raise ValueError(f"need n >= 1 and length >= 4, got n={n}, length={length}")
    rng = random.Random(seed)
    window = max(1, length // 6)
    rows = []
    for i in range(n):
        first, second = KEYS[i % 2], KEYS[(i // 2) % 2]
        words = [rng.choice(DISTRACTORS) for _ in range(length)]
        words[rng.randrange(window)] = first
        words[length // 2 + rng.randrange(window)] = second
        rows.append((" ".join(words), f"{first}-{second}"))
    rng.shuffle(rows)
    return rows


def write_long_range_csv(
    path: str | os.PathLike[str], n: int = 2000, length: int = LONG_RANGE_LENGTH, seed: int = 0
) -> Path:
    """`make_long_range` written as a `text,label` CSV (UTF-8)."""
    return _write_csv(Path(path), make_long_range(n, length, seed))


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    tmp.replace(path)  # a reader never sees half a file
    return path


EXAMPLES: dict[str, Example] = {
    "movie_reviews": Example(
        name="movie_reviews",
        title="Movie reviews (positive / negative / neutral)",
        description=(
            "Short review sentences written for this app, some with negation "
            '("not bad at all", "I didn\'t enjoy it"); a small preset.'
        ),
        path=ASSETS / "movie_reviews.csv",
    ),
    "long_range": Example(
        name="long_range",
        title="Long-range memory: which came first? (LSTM vs vanilla RNN)",
        description=(
            f'{LONG_RANGE_LENGTH} random words with "alpha" or "omega" near the start and again past the '
            "middle; the label is the pair in order. With last-state pooling an LSTM learns it "
            "and a vanilla RNN (encoder rnn) stays at chance: compare them, then watch the gates hold the "
            "first key."
        ),
        path=None,
        generator=write_long_range_csv,
        overrides=LONG_RANGE_OVERRIDES,
    ),
}


def example_path(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """The CSV of example `name`. A generated example is written to `directory` on first use
    (e.g. the app's home); a shipped one is read where it is, in the checkout's `assets/`."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    example = EXAMPLES[name]
    if example.path is not None:
        if not example.path.is_file():
            raise FileNotFoundError(
                f"example data {example.path} is missing: the examples ship with the source checkout "
                "(assets/examples/), run the app from there"
            )
        return example.path
    if directory is None:
        raise ValueError(f"example {name!r} is generated: give a directory to write it to")
    path = Path(directory) / f"{name}.csv"
    if not path.is_file():
        assert example.generator is not None
        example.generator(path)
    return path
