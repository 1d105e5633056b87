"""Classification metrics from label indices: hand-computed cases, absent classes, scikit-learn agreement."""

from __future__ import annotations

import random

import pytest

from lstm_demo.metrics import classification_report


def test_classification_report_on_a_hand_computed_example():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    r = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert r["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows: true class, columns: predicted
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["n"] == 6 and r["labels"] == ["a", "b", "c"]
    a, b, c = (r["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((1.0, 2 / 3, 0.8, 3))
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == pytest.approx((0.5, 1.0, 2 / 3, 1))
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_a_class_absent_from_both_sides_does_not_lower_macro_f1():
    full = classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])
    with_absent = classification_report([0, 1, 1], [0, 1, 0], ["a", "b", "never"])
    assert with_absent["macro_f1"] == pytest.approx(full["macro_f1"])
    assert with_absent["per_class"]["never"]["support"] == 0
    # a class that is predicted but never present counts, with F1 0
    wrong = classification_report([0, 0], [0, 1], ["a", "b"])
    assert wrong["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_classification_report_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(3)
    y_true = [rng.randrange(4) for _ in range(200)]
    y_pred = [t if rng.random() < 0.6 else rng.randrange(4) for t in y_true]
    r = classification_report(y_true, y_pred, list("abcd"))
    assert r["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert r["macro_f1"] == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro"))
    assert r["confusion"] == metrics.confusion_matrix(y_true, y_pred).tolist()


def test_classification_report_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        classification_report([0, 1], [0], ["a", "b"])
