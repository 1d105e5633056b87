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

# The long-range task: the first word decides the label, everything after it is noise.
KEYS = {"alpha": "A", "omega": "B"}
DISTRACTORS = (
    "apple", "river", "stone", "cloud", "green", "table", "window", "music", "paper", "garden",
    "silver", "market", "candle", "forest", "bridge", "yellow", "pocket", "engine", "winter", "summer",
    "letter", "mirror", "basket", "orange", "rabbit", "castle", "planet", "copper", "ladder", "pencil",
    "island", "button", "carpet", "dragon", "feather", "harbor", "jacket", "kettle", "lemon", "meadow",
    "needle", "ocean", "pillow", "rocket", "saddle", "tunnel", "valley", "wagon", "violin", "tiger",
)  # fmt: skip
LONG_RANGE_LENGTH = 60  # words per text; a vanilla RNN loses the first word well before this
# Settings under which an LSTM learns the task and a vanilla RNN stays near chance (tests/test_examples.py):
# only the last hidden state reaches the classifier, and it reads the text left to right.
LONG_RANGE_OVERRIDES: dict[str, Any] = {
    "model__pooling": "last",
    "model__bidirectional": False,
    "train__epochs": 6,
}


@dataclass(frozen=True)
class Example:
    name: str  # key in EXAMPLES, stable: used in URLs and CLI arguments
    title: str  # the button's text
    description: str  # one or two sentences shown under the button
    path: Path | None  # shipped CSV, or None for a generated example
    generator: Callable[[Path], Path] | None = None  # writes the CSV at the given path and returns it
    preset: str = "fast"  # the preset to train it with
    overrides: Mapping[str, Any] = field(default_factory=dict)  # `section__field` overrides on the preset


def make_long_range(
    n: int = 2000, length: int = LONG_RANGE_LENGTH, seed: int = 0
) -> list[tuple[str, str]]:
    """`n` (text, label) rows, balanced: a key word ("alpha" -> A, "omega" -> B) and `length - 1`
    random distractor words. The label depends on the first word only, so a classifier that reads
    left to right must carry it across the whole text.

    Train it with pooling "last" and a unidirectional encoder (`LONG_RANGE_OVERRIDES`): mean or max
    pooling, attention or a backward direction would let the key reach the output without memory.
    """
    if n < 2 or length < 2:
        raise ValueError(f"need n >= 2 and length >= 2, got n={n}, length={length}")
    rng = random.Random(seed)
    keys = list(KEYS)
    rows = []
    for i in range(n):
        key = keys[i % len(keys)]
        words = [key] + [rng.choice(DISTRACTORS) for _ in range(length - 1)]
        rows.append((" ".join(words), KEYS[key]))
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
            "390 short review sentences written for this app, some with negation "
            "(\"not bad at all\", \"I didn't enjoy it\"). Trains in seconds on a CPU."
        ),
        path=ASSETS / "movie_reviews.csv",
    ),
    "long_range": Example(
        name="long_range",
        title="Remember the first word (LSTM vs vanilla RNN)",
        description=(
            f"Texts of {LONG_RANGE_LENGTH} words whose label depends only on the first word (alpha or omega). "
            "With last-state pooling an LSTM learns it and a vanilla RNN stays near chance: "
            "train both and look at the gates holding the first word."
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
