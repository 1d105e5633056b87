"""The peer models a user would pick instead of this app, measured the same way.

1. TF-IDF over word 1-2 grams (sublinear tf) + logistic regression (C=10): the linear bar to beat,
   the very model the app trains beside every run (`lstm_demo.baseline`).
2. The design notes' Keras model, Keras 3 on the torch backend: word ids by frequency,
   pre-padded to the longest training text, Embedding(vocab, 128) -> LSTM(128, dropout 0.2,
   recurrent_dropout 0.2) -> Dense(softmax), Adam, categorical cross-entropy, batch 64.
3. fastText supervised (the `fasttext-numpy2` wheel): averaged word and word-bigram vectors into a
   linear softmax, 25 epochs, one thread so a seed repeats.

This is the only place keras and fasttext enter the project; each is imported inside its
function so the module itself needs neither (`pip install -e .[bench]`).

    .venv/bin/python -m benchmarks.peers                       # TREC, all peers, 10 Keras epochs
    .venv/bin/python -m benchmarks.peers --dataset sst2 --epochs 2
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lstm_demo import baseline

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
_WORD = re.compile(r"[^\W_]+")  # runs of letters/digits: everything else separates words


@dataclass
class PeerResult:
    name: str  # "tfidf-logreg", "keras-lstm" or "fasttext"
    test_accuracy: float  # 0..1
    test_macro_f1: float  # 0..1
    train_seconds: float  # wall time of fitting (keras: model.fit, validation passes included)
    seconds_per_epoch: float | None  # None for tfidf and fasttext
    tokens_per_second: float | None  # whitespace tokens of the train split x epochs / train_seconds
    peak_memory_mb: float  # peak RSS increase while fitting (ru_maxrss, high-water mark reset)
    epochs: int | None  # None for tfidf


def _max_rss_mb() -> float:
    import resource  # Unix only; imported here so the module still imports elsewhere

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


@contextmanager
def _peak_rss_increase() -> Iterator[list[float]]:
    """Yield a one-element list that holds, on exit, the peak RSS increase in MiB (ru_maxrss).

    ru_maxrss is the process's lifetime peak, so on Linux the high-water mark is first reset to
    the current RSS (writing 5 to /proc/self/clear_refs); elsewhere the figure is only a lower
    bound. A psutil sampling thread was tried and dropped: it fights the Keras loop for the GIL
    and roughly doubled the time per epoch.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    result = [0.0]
    base = _max_rss_mb()
    try:
        yield result
    finally:
        result[0] = _max_rss_mb() - base


def _scores(y_true: Sequence, y_pred: Sequence) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return float(accuracy_score(y_true, y_pred)), float(f1_score(y_true, y_pred, average="macro"))


def tfidf_logreg(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    test_texts: Sequence[str],
    test_labels: Sequence[str],
    *,
    seed: int = 13,
) -> PeerResult:
    """The app's baseline (`lstm_demo.baseline.pipeline`): TF-IDF (word 1-2 grams, sublinear tf) +
    logistic regression, C=10, timed and measured here."""
    model = baseline.pipeline(seed)
    with _peak_rss_increase() as peak_mb:
        start = time.perf_counter()
        model.fit(list(train_texts), list(train_labels))
        train_seconds = time.perf_counter() - start
    accuracy, macro_f1 = _scores(list(test_labels), model.predict(list(test_texts)))
    return PeerResult("tfidf-logreg", accuracy, macro_f1, train_seconds, None, None, peak_mb[0], None)


FASTTEXT_EPOCHS = 25
FASTTEXT_LABEL = "__label__"


def fasttext_available() -> bool:
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return False
    return True


def fasttext_supervised(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    test_texts: Sequence[str],
    test_labels: Sequence[str],
    *,
    epochs: int = FASTTEXT_EPOCHS,
    seed: int = 13,
) -> PeerResult:
    """fastText supervised with word bigrams on lowercased words (fastText's own recipe for text
    classification); everything else is fastText's default. It reads its training set from a file,
    written to a temporary folder outside the timing."""
    import tempfile

    import fasttext

    def line(text: str) -> str:
        return " ".join(_words(text))

    index = {label: label.replace(" ", "_") for label in set(train_labels)}
    back = {FASTTEXT_LABEL + v: k for k, v in index.items()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.txt"
        path.write_text(
            "".join(
                f"{FASTTEXT_LABEL}{index[y]} {line(x)}\n"
                for x, y in zip(train_texts, train_labels, strict=True)
            ),
            encoding="utf-8",
        )
        with _peak_rss_increase() as peak_mb:
            start = time.perf_counter()
            model = fasttext.train_supervised(
                input=str(path), epoch=epochs, wordNgrams=2, thread=1, seed=seed, verbose=0
            )
            train_seconds = time.perf_counter() - start
    predicted, _ = model.predict([line(t) for t in test_texts])
    accuracy, macro_f1 = _scores(list(test_labels), [back[p[0]] for p in predicted])
    tokens = sum(len(text.split()) for text in train_texts) * epochs
    return PeerResult(
        "fasttext", accuracy, macro_f1, train_seconds, None, tokens / train_seconds, peak_mb[0], epochs
    )


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _word_index(texts: Sequence[str]) -> dict[str, int]:
    """Word -> id, 1 for the most frequent word (ties in first-seen order), as Keras' Tokenizer.

    0 is left for padding; words never seen in training are dropped from other texts, as the
    Tokenizer does without an oov_token.
    """
    counts = Counter(word for text in texts for word in _words(text))
    ranked = sorted(counts, key=lambda w: -counts[w])  # stable sort keeps first-seen order on ties
    return {word: i for i, word in enumerate(ranked, start=1)}


def _label_ids(labels: Sequence[str], classes: list[str], split: str) -> list[int]:
    index = {label: i for i, label in enumerate(classes)}
    unknown = sorted(set(labels) - index.keys())
    if unknown:
        raise ValueError(f"{split} labels not seen in training: {unknown[:5]}")
    return [index[label] for label in labels]


def keras_available() -> bool:
    """True when keras imports and runs on the torch backend."""
    os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError:
        return False
    return keras.backend.backend() == "torch"


def keras_lstm(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    val_texts: Sequence[str],
    val_labels: Sequence[str],
    test_texts: Sequence[str],
    test_labels: Sequence[str],
    *,
    epochs: int = 10,
    seed: int = 13,
) -> PeerResult:
    """The design notes' Keras LSTM; test scores are those after the last epoch (no early stopping).

    Seeds Python, NumPy and torch globally (keras.utils.set_random_seed); torch's thread
    settings are left as they are.
    """
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import numpy as np

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras was already imported with the {keras.backend.backend()!r} backend")
    keras.utils.set_random_seed(seed)

    word_index = _word_index(train_texts)
    classes = sorted(set(train_labels))

    def ids(texts: Sequence[str]) -> list[list[int]]:
        return [[word_index[w] for w in _words(t) if w in word_index] for t in texts]

    train_ids = ids(train_texts)
    maxlen = max(1, max(len(seq) for seq in train_ids))
    # pad_sequences defaults: 'pre' padding and 'pre' truncation (longer test texts lose their start)
    x_train = keras.utils.pad_sequences(train_ids, maxlen=maxlen)  # (N, T)
    x_val = keras.utils.pad_sequences(ids(val_texts), maxlen=maxlen)  # (Nv, T)
    x_test = keras.utils.pad_sequences(ids(test_texts), maxlen=maxlen)  # (Nt, T)
    y_train = keras.utils.to_categorical(_label_ids(train_labels, classes, "train"), len(classes))  # (N, C)
    y_val = keras.utils.to_categorical(_label_ids(val_labels, classes, "validation"), len(classes))
    y_test = _label_ids(test_labels, classes, "test")

    model = keras.Sequential(
        [
            keras.Input(shape=(maxlen,), dtype="int32"),
            keras.layers.Embedding(len(word_index) + 1, 128),  # (B, T, 128)
            keras.layers.LSTM(128, dropout=0.2, recurrent_dropout=0.2),  # (B, 128)
            keras.layers.Dense(len(classes), activation="softmax"),  # (B, C)
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

    epoch_seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            epoch_seconds.append(time.perf_counter() - self.start)

    with _peak_rss_increase() as peak_mb:
        start = time.perf_counter()
        model.fit(
            x_train,
            y_train,
            batch_size=64,
            epochs=epochs,
            validation_data=(x_val, y_val),
            callbacks=[EpochTimer()],
            verbose=0,
        )
        train_seconds = time.perf_counter() - start

    probs = model.predict(x_test, batch_size=256, verbose=0)  # (Nt, C)
    accuracy, macro_f1 = _scores(y_test, np.argmax(probs, axis=1).tolist())
    tokens = sum(len(text.split()) for text in train_texts) * epochs
    return PeerResult(
        name="keras-lstm",
        test_accuracy=accuracy,
        test_macro_f1=macro_f1,
        train_seconds=train_seconds,
        seconds_per_epoch=sum(epoch_seconds) / len(epoch_seconds),
        tokens_per_second=tokens / train_seconds,
        peak_memory_mb=peak_mb[0],
        epochs=epochs,
    )


def _read(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the peer models on a shared dataset.")
    parser.add_argument("--dataset", default="trec", help="folder under ../shared/datasets (trec, sst2)")
    parser.add_argument("--epochs", type=int, default=10, help="Keras epochs")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-fasttext", action="store_true")
    args = parser.parse_args(argv)

    folder = DATASETS / args.dataset
    train_x, train_y = _read(folder / "train.csv")
    test_x, test_y = _read(folder / "test.csv")
    if (folder / "dev.csv").exists():
        val_x, val_y = _read(folder / "dev.csv")
        fit_x, fit_y = train_x, train_y
    else:  # no dev split (TREC): Keras holds out a seeded 10% of train; TF-IDF, needing none, gets it all
        order = list(range(len(train_x)))
        random.Random(args.seed).shuffle(order)
        n_val = len(order) // 10
        val_x, val_y = [train_x[i] for i in order[:n_val]], [train_y[i] for i in order[:n_val]]
        fit_x, fit_y = [train_x[i] for i in order[n_val:]], [train_y[i] for i in order[n_val:]]
    print(
        f"{args.dataset}: train {len(fit_x)} (TF-IDF {len(train_x)}), validation {len(val_x)}, test {len(test_x)}"
    )

    results = []
    # Keras first: scikit-learn loads a second OpenMP runtime beside torch's, and Keras after it in the
    # same process ran slower (TREC, idle: 4.4 against 3.7 s/epoch). Clean timings: one process per peer.
    if args.skip_keras:
        pass
    elif keras_available():
        results.append(
            keras_lstm(fit_x, fit_y, val_x, val_y, test_x, test_y, epochs=args.epochs, seed=args.seed)
        )
    else:
        print("keras (torch backend) is not installed: skipping keras-lstm")
    results.insert(0, tfidf_logreg(train_x, train_y, test_x, test_y, seed=args.seed))
    if args.skip_fasttext:
        pass
    elif fasttext_available():  # like TF-IDF, it needs no validation split: all of train
        results.append(fasttext_supervised(train_x, train_y, test_x, test_y, seed=args.seed))
    else:
        print("fasttext is not installed (pip install fasttext-numpy2): skipping fasttext")
    for r in results:
        per_epoch = "-" if r.seconds_per_epoch is None else f"{r.seconds_per_epoch:.1f} s/epoch"
        tok_s = "-" if r.tokens_per_second is None else f"{r.tokens_per_second:,.0f} tok/s"
        print(
            f"{r.name:13s} acc {r.test_accuracy:.3f}  macro-F1 {r.test_macro_f1:.3f}  "
            f"train {r.train_seconds:.1f} s  {per_epoch}  {tok_s}  peak +{r.peak_memory_mb:.0f} MiB"
        )


if __name__ == "__main__":
    main()
