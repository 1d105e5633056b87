"""Classification metrics from plain label indices: accuracy, macro-F1, per-class figures, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    `confusion[i][j]` counts examples of true class i predicted as class j. A class that is
    never predicted and never present gets F1 0 and does not count towards the macro average
    only when it has no support *and* no predictions (so a test set missing a class is fair).
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    n = len(labels)
    confusion = [[0] * n for _ in range(n)]
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[t][p] += 1
    per_class = {}
    f1s = []
    for i, label in enumerate(labels):
        tp = confusion[i][i]
        support = sum(confusion[i])
        predicted = sum(row[i] for row in confusion)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support or predicted:
            f1s.append(f1)
    total = len(y_true)
    correct = sum(confusion[i][i] for i in range(n))
    return {
        "accuracy": correct / total if total else 0.0,
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
        "n": total,
        "per_class": per_class,
        "confusion": confusion,
        "labels": list(labels),
    }
