"""Tiny synthetic data for the engine tests: two classes with distinct vocabularies plus shared words."""

from __future__ import annotations

import csv
import random
from pathlib import Path

POSITIVE = ("great", "wonderful", "superb", "delightful", "brilliant", "charming", "moving", "fun")
NEGATIVE = ("awful", "boring", "dreadful", "tedious", "clumsy", "dull", "messy", "bland")
SHARED = ("the", "film", "was", "and", "really", "plot", "acting", "quite")
LABELS = ("neg", "pos")  # sorted, as `Table.classes` orders them


def toy_text(rng: random.Random, label: str) -> str:
    """A few words of the label's vocabulary mixed with shared words, 3 to 10 words long."""
    cue = POSITIVE if label == "pos" else NEGATIVE
    words = [rng.choice(cue) for _ in range(rng.randint(1, 4))]
    words += [rng.choice(SHARED) for _ in range(rng.randint(2, 6))]
    rng.shuffle(words)
    return " ".join(words)


def toy_rows(n: int = 80, seed: int = 0) -> list[tuple[str, str]]:
    """`n` balanced (text, label) rows, alternating labels."""
    rng = random.Random(seed)
    return [(toy_text(rng, LABELS[i % 2]), LABELS[i % 2]) for i in range(n)]


def write_toy_csv(path: str | Path, n: int = 80, seed: int = 0) -> Path:
    """A `text,label` CSV of `toy_rows(n, seed)`; returns its path."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(toy_rows(n, seed))
    return path


def toy_sequences(
    n: int, seed: int = 0, num_classes: int = 2, weights: tuple[float, ...] | None = None
) -> tuple[list[list[int]], list[int]]:
    """Token-id sequences for the training loop, skipping the tokenizer.

    Class c draws its cue ids from its own block of 5 ids (starting at 2, after [PAD] and [UNK]);
    ids from a shared block follow. Vocabulary size: `toy_vocab_size(num_classes)`.
    """
    rng = random.Random(seed)
    shared = range(2 + 5 * num_classes, 2 + 5 * num_classes + 5)
    seqs, ys = [], []
    for i in range(n):
        y = rng.choices(range(num_classes), weights=weights)[0] if weights else i % num_classes
        cue = range(2 + 5 * y, 2 + 5 * y + 5)
        ids = [rng.choice(cue) for _ in range(rng.randint(1, 3))]
        ids += [rng.choice(shared) for _ in range(rng.randint(1, 9))]
        rng.shuffle(ids)
        seqs.append(ids)
        ys.append(y)
    return seqs, ys


def toy_vocab_size(num_classes: int = 2) -> int:
    return 2 + 5 * num_classes + 5


# Trainings the app's queue runs stay in the test's process: a child process per training (the app's
# default, tested in test_job.py) would spend seconds importing torch again in every such test.
THREAD = {"LSTM_DEMO_TRAINING": "thread"}
