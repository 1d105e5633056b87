"""The TF-IDF + logistic regression yardstick: learns what is learnable, scores like the LSTM's metrics,
refuses what it cannot or may not fit, and gives the same answer twice."""

from __future__ import annotations

import random

import pytest

from lstm_demo.baseline import BaselineResult, fit_baseline, max_features
from lstm_demo.config import LimitError, Limits
from lstm_demo.metrics import classification_report

WEATHER = {"warm": "sunny", "wet": "rainy", "cold": "snowy"}


def _weather(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Texts whose class is given away by one word, among words shared by every class."""
    rng = random.Random(seed)
    filler = ["story", "number", "today", "again", "the", "hills", "town"]
    labels = [rng.choice(list(WEATHER)) for _ in range(n)]
    texts = [" ".join([*rng.sample(filler, 3), WEATHER[y]]) for y in labels]
    return texts, labels


def test_on_a_separable_set_it_beats_chance_on_validation_and_test() -> None:
    train, val, test = _weather(90, 1), _weather(30, 2), _weather(30, 3)
    result = fit_baseline(*train, val=val, test=test, seed=13)
    assert result.val_accuracy == 1.0 and result.test_accuracy == 1.0  # chance is a third
    assert result.val_macro_f1 == 1.0 and result.train_rows == 90 and result.features > 3
    assert result.seconds > 0


def test_macro_f1_is_the_lstm_metrics_own() -> None:
    # "maybe" is never in training: the baseline cannot predict it, and still has to be scored on it
    train = (["good film", "great film", "bad film", "awful film"], ["pos", "pos", "neg", "neg"])
    test = (["good day", "bad day", "great", "a film"], ["pos", "neg", "maybe", "pos"])
    result = fit_baseline(*train, test=test)
    assert result.val_accuracy is None and result.val_macro_f1 is None  # no validation split given
    texts, labels = test
    from lstm_demo.baseline import pipeline

    model = pipeline(13).fit(*train)
    names = sorted({*labels, *model.predict(texts)})
    expected = classification_report(
        [names.index(y) for y in labels], [names.index(y) for y in model.predict(texts)], names
    )
    assert (result.test_accuracy, result.test_macro_f1) == (expected["accuracy"], expected["macro_f1"])
    assert result.test_macro_f1 < result.test_accuracy  # the unpredictable class pulls macro-F1 down


def test_a_training_split_with_one_class_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="at least two classes in the training split; it has only 'pos'"):
        fit_baseline(["good", "great"], ["pos", "pos"], test=(["bad"], ["neg"]))
    with pytest.raises(ValueError, match="no rows"):
        fit_baseline([], [])


def test_texts_without_words_are_refused_plainly() -> None:
    with pytest.raises(ValueError, match="found no words"):
        fit_baseline(["!", "?"], ["a", "b"])


def test_more_rows_or_classes_than_the_limits_are_refused_before_fitting() -> None:
    small = Limits(rows=10, classes=2)
    texts, labels = _weather(11, 1)
    with pytest.raises(LimitError, match="training rows is 11, over the limit of 10"):
        fit_baseline(texts, labels, limits=small)
    with pytest.raises(LimitError, match="test rows is 11"):
        fit_baseline(texts[:10], labels[:10], test=(texts, labels), limits=small)
    with pytest.raises(LimitError, match="classes is 3, over the limit of 2"):
        fit_baseline(texts[:10], labels[:10], limits=Limits(classes=2))
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        fit_baseline(texts[:3], labels[:2])


def test_the_model_memory_limit_caps_the_features_it_learns() -> None:
    texts, labels = _weather(60, 1)
    tight = Limits(model_mb=8 * 3 * 24 * 5 / 2**20)  # room for 5 columns of 3 classes
    assert max_features(tight, 3) == 5
    assert fit_baseline(texts, labels, limits=tight).features == 5
    assert fit_baseline(texts, labels).features > 5


def test_the_same_seed_gives_the_same_result_and_to_dict_names_it_as_the_baseline() -> None:
    train, test = _weather(60, 1), _weather(20, 2)
    first, second = fit_baseline(*train, test=test, seed=3), fit_baseline(*train, test=test, seed=3)
    assert {k: v for k, v in first.to_dict().items() if k != "baseline_seconds"} == {
        k: v for k, v in second.to_dict().items() if k != "baseline_seconds"
    }
    assert set(first.to_dict()) == {f"baseline_{f}" for f in BaselineResult.__dataclass_fields__}
    assert first.to_dict()["baseline_test_accuracy"] == first.test_accuracy
