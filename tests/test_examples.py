"""The one-click examples: the shipped review sentences and the generated long-range task."""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from lstm_demo import examples
from lstm_demo.config import AppSettings, preset
from lstm_demo.data import read_table
from lstm_demo.examples import (
    DISTRACTORS,
    EXAMPLES,
    KEYS,
    LONG_RANGE_LENGTH,
    LONG_RANGE_OVERRIDES,
    example_path,
    make_long_range,
    write_long_range_csv,
)

REVIEW_CLASSES = ("negative", "neutral", "positive")
NEGATION = re.compile(r"\b(not|never|no|nothing|neither)\b|n't", re.IGNORECASE)


def test_shipped_reviews_read_as_an_upload_would() -> None:
    table = read_table(example_path("movie_reviews"))
    assert table.text_column == "text" and table.label_column == "label"
    assert table.classes == REVIEW_CLASSES
    assert len(table.texts) >= 300 and table.dropped_empty == 0
    counts = table.label_counts()
    assert max(counts.values()) - min(counts.values()) <= 0.1 * len(table.texts)  # roughly balanced
    assert len(set(table.texts)) == len(table.texts)  # no duplicates to leak between splits
    assert all(5 <= len(text.split()) <= 30 for text in table.texts)
    # negation occurs in every class, so no class is told apart by "not" alone
    negated = Counter(
        label for text, label in zip(table.texts, table.labels, strict=True) if NEGATION.search(text)
    )
    assert all(negated[c] >= 20 for c in REVIEW_CLASSES), negated


def test_every_shipped_example_exists_and_generated_ones_have_a_generator() -> None:
    for name, example in EXAMPLES.items():
        assert example.name == name and example.title and example.description
        assert (example.path is None) != (example.generator is None)
        if example.path is not None:
            assert example.path.is_file()
        preset(example.preset, **example.overrides)  # the suggested settings are valid


def test_generated_example_is_written_once_into_the_given_directory(tmp_path: Path) -> None:
    path = example_path("long_range", tmp_path)
    assert path.parent == tmp_path
    table = read_table(path)
    assert len(table.texts) == 2000 and len(table.classes) == 4
    mtime = path.stat().st_mtime_ns
    assert example_path("long_range", tmp_path) == path and path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("name", "directory", "error"),
    [("nope", None, ValueError), ("long_range", None, ValueError)],
    ids=["unknown-name", "generated-without-directory"],
)
def test_example_path_refuses(name: str, directory: Path | None, error: type[Exception]) -> None:
    with pytest.raises(error, match=name):
        example_path(name, directory)


def test_missing_shipped_file_names_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = examples.Example("gone", "Gone", "d", tmp_path / "gone.csv")
    monkeypatch.setitem(EXAMPLES, "gone", moved)
    with pytest.raises(FileNotFoundError, match="assets/examples"):
        example_path("gone")


def test_long_range_is_deterministic_per_seed() -> None:
    assert make_long_range(200, seed=3) == make_long_range(200, seed=3)
    assert make_long_range(200, seed=3) != make_long_range(200, seed=4)


@pytest.mark.parametrize("length", [4, 12, LONG_RANGE_LENGTH])
def test_long_range_label_is_the_two_keys_in_order(length: int) -> None:
    rows = make_long_range(400, length, seed=1)
    assert Counter(label for _, label in rows) == {f"{a}-{b}": 100 for a in KEYS for b in KEYS}
    window = max(1, length // 6)
    for text, label in rows:
        words = text.split()
        assert len(words) == length
        keys = [(i, w) for i, w in enumerate(words) if w in KEYS]
        assert [w for _, w in keys] == label.split("-")  # exactly two keys, in the label's order
        assert keys[0][0] < window and length // 2 <= keys[1][0] < length // 2 + window
        assert all(w in DISTRACTORS for w in words if w not in KEYS)


def test_long_range_csv_round_trips(tmp_path: Path) -> None:
    path = write_long_range_csv(tmp_path / "sub" / "lr.csv", n=50, length=10, seed=2)
    with path.open(encoding="utf-8", newline="") as f:
        assert [tuple(r) for r in csv.reader(f)] == [("text", "label"), *make_long_range(50, 10, 2)]


@pytest.mark.slow
def test_lstm_remembers_across_the_text_where_a_vanilla_rnn_cannot(tmp_path: Path) -> None:
    from lstm_demo.service import Service

    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home")}))
    data = example_path("long_range", tmp_path)
    accuracy, seconds = {}, {}
    try:
        for encoder in ("lstm", "rnn"):
            start = time.perf_counter()
            overrides = {**LONG_RANGE_OVERRIDES, "model__encoder": encoder, "train__device": "cpu"}
            *_, last = svc.train(data, preset_name=EXAMPLES["long_range"].preset, overrides=overrides)
            assert last.run is not None and last.run.status == "completed"
            accuracy[encoder] = last.progress.result.val["accuracy"]
            seconds[encoder] = time.perf_counter() - start
    finally:
        svc.shutdown()
    print(f"validation accuracy {accuracy}, seconds {seconds}")
    assert accuracy["lstm"] >= 0.95
    # Four balanced classes: chance is 0.25, and knowing only the recent (second) key gives 0.5.
    assert accuracy["rnn"] <= 0.65
