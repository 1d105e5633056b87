"""The benchmark's peer models: the linear baseline must learn what is trivially learnable."""

import pytest

pytest.importorskip("sklearn")

from benchmarks.peers import tfidf_logreg  # noqa: E402


def test_tfidf_logreg_separates_a_trivial_set() -> None:
    train_texts = [f"{word} story number {i}" for i in range(20) for word in ("sunny", "rainy", "snowy")]
    train_labels = [label for _ in range(20) for label in ("warm", "wet", "cold")]
    test_texts = ["a sunny day", "rainy again", "snowy hills", "so sunny"]
    test_labels = ["warm", "wet", "cold", "warm"]

    result = tfidf_logreg(train_texts, train_labels, test_texts, test_labels)

    assert result.name == "tfidf-logreg"
    assert result.test_accuracy == 1.0
    assert result.test_macro_f1 == 1.0
    assert result.epochs is None and result.seconds_per_epoch is None
    assert result.train_seconds > 0 and result.peak_memory_mb >= 0


def test_fasttext_separates_a_trivial_set_and_repeats_with_its_seed() -> None:
    pytest.importorskip("fasttext")
    from benchmarks.peers import fasttext_supervised

    train_texts = [f"{word} story number {i}" for i in range(30) for word in ("sunny", "rainy", "snowy")]
    train_labels = [label for _ in range(30) for label in ("warm", "wet spell", "cold")]
    test_texts = ["a sunny day", "rainy again", "snowy hills", "so sunny"]
    test_labels = ["warm", "wet spell", "cold", "warm"]  # a label with a space comes back whole

    first = fasttext_supervised(train_texts, train_labels, test_texts, test_labels)
    again = fasttext_supervised(train_texts, train_labels, test_texts, test_labels)

    assert first.name == "fasttext" and first.epochs == 25
    assert first.test_accuracy == 1.0 and first.test_macro_f1 == 1.0
    assert (again.test_accuracy, again.test_macro_f1) == (first.test_accuracy, first.test_macro_f1)
    assert first.train_seconds > 0 and first.tokens_per_second > 0
