"""The yardstick shown beside every run: TF-IDF (word 1-2 grams, sublinear tf) + logistic regression,
fitted on exactly the run's training texts and scored on its validation and test splits, so a user
sees at a glance whether the LSTM earned its cost. The only module that imports scikit-learn.

The recipe is the one `benchmarks/peers.py` measures (see `benchmarks/README.md` for its figures);
scores use `metrics.classification_report`, the LSTM's own, so both columns mean the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .config import Limits
from .metrics import classification_report

C = 10.0  # inverse regularisation: the peers benchmark's choice, which reproduces the datasets' references
MAX_ITER = 1000
# float64 copies of the coefficient matrix L-BFGS holds at once: the weights, the gradient and its
# 10 pairs of history vectors, with room to spare; bounds the features against the model memory limit
LBFGS_COPIES = 24

Split = tuple[Sequence[str], Sequence[Any]]  # (texts, labels)


@dataclass(frozen=True)
class BaselineResult:
    val_accuracy: float | None  # None when the run has no validation split
    val_macro_f1: float | None
    test_accuracy: float | None  # None when the run has no test split
    test_macro_f1: float | None
    train_rows: int
    features: int  # TF-IDF columns the model learned weights for
    seconds: float  # fitting and scoring, wall time

    def to_dict(self) -> dict[str, Any]:
        """Flat keys beside the run's own (`baseline_val_accuracy`, ...), as the CLI's JSON shows them."""
        return {f"baseline_{key}": value for key, value in asdict(self).items()}


def pipeline(seed: int, max_features: int | None = None) -> Any:
    """The unfitted scikit-learn model: sublinear tf is what reproduces the datasets' reference figures."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=max_features),
        LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed),
    )


def max_features(limits: Limits, classes: int) -> int:
    """The most TF-IDF columns whose L-BFGS working set stays within the model memory limit."""
    return max(1, int(limits.model_mb * 2**20 / (8 * max(classes, 2) * LBFGS_COPIES)))


def _check(name: str, split: Split | None, limits: Limits) -> None:
    if split is None:
        return
    texts, labels = split
    if len(texts) != len(labels):
        raise ValueError(f"the {name} split has {len(texts)} texts but {len(labels)} labels")
    limits.check("rows", len(texts), f"the baseline's {name} rows")


def fit_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[Any],
    val: Split | None = None,
    test: Split | None = None,
    *,
    seed: int = 13,
    limits: Limits | None = None,
) -> BaselineResult:
    """Fit on the training split, score on the validation and test splits given (deterministic for a seed).

    Refuses more rows or classes than `limits` allow before any work, and a training split with
    fewer than two classes (there is nothing to separate).
    """
    limits = limits or Limits()
    for name, split in (("training", (train_texts, train_labels)), ("validation", val), ("test", test)):
        _check(name, split, limits)
    classes = sorted({str(y) for y in train_labels})
    limits.check("classes", len(classes), "the baseline's classes")
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "no rows"
        raise ValueError(f"the baseline needs at least two classes in the training split; it has {found}")
    start = time.perf_counter()
    model = pipeline(seed, max_features(limits, len(classes)))
    try:
        model.fit(list(train_texts), [str(y) for y in train_labels])
    except ValueError as err:  # scikit-learn's "empty vocabulary" when no text has a word in it
        raise ValueError(f"the baseline found no words in the training texts ({err})") from err
    scores = {name: _score(model, split) for name, split in (("val", val), ("test", test))}
    return BaselineResult(
        val_accuracy=scores["val"][0],
        val_macro_f1=scores["val"][1],
        test_accuracy=scores["test"][0],
        test_macro_f1=scores["test"][1],
        train_rows=len(train_texts),
        features=len(model[0].vocabulary_),
        seconds=time.perf_counter() - start,
    )


def _score(model: Any, split: Split | None) -> tuple[float | None, float | None]:
    """(accuracy, macro-F1) on a split, with the LSTM's metric code; (None, None) without the split."""
    if split is None or not len(split[0]):
        return None, None
    texts, labels = split
    truth = [str(y) for y in labels]
    predicted = [str(y) for y in model.predict(list(texts))]
    names = sorted({*truth, *predicted})  # a class absent from training is never predicted: still scored
    index = {name: i for i, name in enumerate(names)}
    report = classification_report([index[y] for y in truth], [index[y] for y in predicted], names)
    return report["accuracy"], report["macro_f1"]
