"""`default` against `auto --budget`, TF-IDF + logistic regression and fastText, per dataset.

    python -m benchmarks.auto_bench --budget 10m                       # sst2, trec, sms_spam
    python -m benchmarks.auto_bench --datasets sms_spam --rows 600     # a small imbalanced shape
    python -m benchmarks.auto_bench --vectors                          # + PPMI-SVD vectors row

Every model sees the same rows: the set's train split (with its dev split, where it has one); the
LSTM rows hold out their validation share from them as the app does with one uploaded file, and
the test split is read only to score. `--rows N` keeps a seeded N of the training rows, to build a
small shape from a large set. Rows of the table:

- `default`: the preset as shipped; `adapted`: the same after `adapt` read the data;
- `auto`: the `search` within `--budget`, then its configuration trained once more as a run
  (seconds: search and that run together);
- `+vectors`: `adapted` with its embedding initialised from PPMI-SVD vectors of the training text;
- `tfidf-logreg` and `fasttext` from `benchmarks.peers`.

Figures mean something only on an idle machine; `benchmarks/README.md` holds the measured ones.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers import DATASETS, _read, fasttext_available, fasttext_supervised, tfidf_logreg

SETS = ("sst2", "trec", "sms_spam")


@dataclass(frozen=True)
class Row:
    model: str
    accuracy: float
    macro_f1: float
    seconds: float  # to a model: tokenizer, training (and search) included
    note: str = ""


def load(folder: Path, rows: int | None, seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    texts, labels = _read(folder / "train.csv")
    if (folder / "dev.csv").exists():
        dev = _read(folder / "dev.csv")
        texts, labels = texts + dev[0], labels + dev[1]
    if rows is not None and rows < len(texts):
        keep = sorted(random.Random(seed).sample(range(len(texts)), rows))
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        # a class needs two rows, one to train on and one to validate on; the test keeps known classes
        counts = Counter(labels)
        texts, labels = _where(texts, labels, lambda y: counts[y] >= 2)
    test_texts, test_labels = _where(*_read(folder / "test.csv"), lambda y: y in set(labels))
    return texts, labels, test_texts, test_labels


def _where(texts: list[str], labels: list[str], keep) -> tuple[list[str], list[str]]:
    rows = [(x, y) for x, y in zip(texts, labels, strict=True) if keep(y)]
    return [x for x, _ in rows], [y for _, y in rows]


def fit(cfg, texts: Sequence[str], labels: Sequence[str], test_texts, test_labels, vectors=None) -> tuple:
    """Train `cfg` as a run would (stratified validation share, tokenizer on the training share);
    returns (test report, seconds, note)."""
    from lstm_demo.config import override
    from lstm_demo.data import stratified_split
    from lstm_demo.tokenization import TextEncoder
    from lstm_demo.train import evaluate, train
    from lstm_demo.vectors import lookup

    start = time.perf_counter()
    classes = tuple(sorted(set(labels)))
    index = {label: i for i, label in enumerate(classes)}
    train_idx, val_idx = stratified_split(labels, cfg.train.val_fraction, cfg.train.seed)
    encoder = TextEncoder.train([texts[i] for i in train_idx], cfg.preprocess, cfg.tokenizer)
    cfg = override(cfg, labels=classes, model__num_classes=len(classes), model__vocab_size=encoder.vocab_size)
    ids, y = encoder.encode_batch(list(texts)), [index[label] for label in labels]
    pretrained = None
    if vectors is not None:  # as a run with `train.vectors` starts its embedding (`vectors.for_run`)
        pretrained = lookup(vectors, [encoder.id_to_token(i) for i in range(encoder.vocab_size)])
    reports = train(
        cfg,
        [ids[i] for i in train_idx],
        [y[i] for i in train_idx],
        [ids[i] for i in val_idx],
        [y[i] for i in val_idx],
        pretrained=pretrained,
    )
    result = _last(reports).result
    note = pretrained.note if pretrained is not None else ""
    test = evaluate(
        result.model, encoder.encode_batch(list(test_texts)), [index[t] for t in test_labels], classes
    )
    return test, time.perf_counter() - start, note


def _last(reports):
    """The final report of a training (the one that holds its result)."""
    final = None
    for report in reports:
        final = report
    return final


def lstm_rows(args: argparse.Namespace, texts, labels, test_texts, test_labels) -> list[Row]:
    from lstm_demo.adapt import adapt
    from lstm_demo.config import preset
    from lstm_demo.search import parse_budget, run_search
    from lstm_demo.vectors import ppmi_svd

    epochs = {"train__epochs": args.epochs} if args.epochs else {}
    fixed = set(epochs)
    default = preset("default", train__seed=args.seed, **epochs)
    adapted, notes = adapt(default, texts, labels, fixed=fixed)
    rows = []
    for name, cfg in (("default", default), ("adapted", adapted)):
        test, seconds, _ = fit(cfg, texts, labels, test_texts, test_labels)
        rows.append(
            Row(
                name,
                test["accuracy"],
                test["macro_f1"],
                seconds,
                "; ".join(notes) if name == "adapted" else "",
            )
        )
    if args.vectors:
        start = time.perf_counter()
        vectors = ppmi_svd(texts, dim=adapted.model.embedding_dim, seed=args.seed)
        test, seconds, note = fit(adapted, texts, labels, test_texts, test_labels, vectors)
        rows.append(Row("+vectors", test["accuracy"], test["macro_f1"], time.perf_counter() - start, note))
    budget = parse_budget(args.budget)
    start = time.perf_counter()
    found = run_search(default, texts, labels, budget, fixed=fixed, max_trials=args.max_trials)
    test, _, _ = fit(found.config, texts, labels, test_texts, test_labels)
    rows.append(
        Row(
            f"auto {args.budget}",
            test["accuracy"],
            test["macro_f1"],
            time.perf_counter() - start,
            found.notes[-1],
        )
    )
    return rows


def peer_rows(texts, labels, test_texts, test_labels, seed: int) -> list[Row]:
    peers = [tfidf_logreg(texts, labels, test_texts, test_labels, seed=seed)]
    if fasttext_available():
        peers.append(fasttext_supervised(texts, labels, test_texts, test_labels, seed=seed))
    return [Row(p.name, p.test_accuracy, p.test_macro_f1, p.train_seconds) for p in peers]


def print_table(name: str, rows: list[Row], train_rows: int, test_rows: int) -> None:
    print(f"\n{name}: {train_rows} training rows, {test_rows} test rows")
    print("| model | test acc % | macro-F1 % | seconds | note |\n|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r.model} | {100 * r.accuracy:.1f} | {100 * r.macro_f1:.1f} | {r.seconds:.1f} | {r.note} |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETS), help="folders under ../shared/datasets")
    parser.add_argument("--data-dir", type=Path, default=DATASETS, help="where the dataset folders are")
    parser.add_argument("--budget", default="10m", help="the auto search's budget (600, 90s, 10m, 1h)")
    parser.add_argument("--max-trials", type=int, default=None, help="also stop the search after this many")
    parser.add_argument("--rows", type=int, default=None, help="keep a seeded N of the training rows")
    parser.add_argument("--epochs", type=int, default=None, help="cap every LSTM training (a quick check)")
    parser.add_argument("--vectors", action="store_true", help="add the PPMI-SVD vectors row")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    for name in args.datasets:
        texts, labels, test_texts, test_labels = load(args.data_dir / name, args.rows, args.seed)
        # the LSTM rows first: scikit-learn loads a second OpenMP runtime beside torch's (see peers.main)
        rows = lstm_rows(args, texts, labels, test_texts, test_labels)
        rows += peer_rows(texts, labels, test_texts, test_labels, args.seed)
        print_table(name, rows, len(texts), len(test_texts))


if __name__ == "__main__":
    main()
