"""What pretrained vectors give: `default` with and without PPMI-SVD vectors of the training text.

    python -m benchmarks.vectors_bench                                   # sst2, trec, sms_spam
    python -m benchmarks.vectors_bench --datasets sms_spam --rows 600    # a small shape
    python -m benchmarks.vectors_bench --freeze                          # + a frozen-vectors row

Each row is a run as `lstm-demo train TRAIN.csv --test TEST.csv [--vectors FILE]` makes it, through
the service (the data-adapted `default`, its validation share held out, the test split only scored):

- `default`: no vectors;
- `+vectors`: the embedding starts from `lstm_demo.vectors.ppmi_svd` vectors of the training rows'
  texts (no labels; the validation share's texts take part, as they would in any corpus the person
  brought), fine-tuned; `+frozen vectors` (with `--freeze`): the same, kept as read.

The vectors are as wide as the embedding the `default` run chose (adapt makes small data's
narrower), so the rows differ only in where the embedding starts. Figures mean something only on an
idle machine; `benchmarks/README.md` holds the measured ones.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.auto_bench import SETS, Row, load, print_table
from benchmarks.peers import DATASETS


def _write(path: Path, texts: Sequence[str], labels: Sequence[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def _run(svc: Any, train_csv: Path, test_csv: Path, name: str, overrides: dict[str, Any]) -> tuple[Row, Any]:
    """One run through the service; its row and its stored detail."""
    start = time.perf_counter()
    events = list(
        svc.train(train_csv, test_path=test_csv, preset_name="default", overrides=overrides, local=True)
    )
    seconds = time.perf_counter() - start
    detail = svc.run(events[-1].run_id)
    if detail.summary.status != "completed":
        raise SystemExit(f"{name}: the run {detail.summary.status}: {detail.summary.error}")
    test = detail.metrics["test"]
    note = next((n for n in detail.metrics.get("notes") or [] if n.startswith("pretrained vectors")), "")
    return Row(name, test["accuracy"], test["macro_f1"], seconds, note), detail


def vector_rows(args: argparse.Namespace, texts, labels, test_texts, test_labels, work: Path) -> list[Row]:
    from lstm_demo.config import AppSettings
    from lstm_demo.service import Service
    from lstm_demo.vectors import ppmi_svd, write_vectors

    train_csv = _write(work / "train.csv", texts, labels)
    test_csv = _write(work / "test.csv", test_texts, test_labels)
    svc = Service(
        AppSettings.from_env({"LSTM_DEMO_HOME": str(work / "home"), "LSTM_DEMO_TRAINING": "thread"})
    )
    base = {"train__seed": args.seed, **({"train__epochs": args.epochs} if args.epochs else {})}
    try:
        plain, detail = _run(svc, train_csv, test_csv, "default", base)
        dim = detail.config["model"]["embedding_dim"]
        start = time.perf_counter()
        vectors = write_vectors(ppmi_svd(texts, dim=dim, seed=args.seed), work / "ppmi.npy")
        built = time.perf_counter() - start
        rows = [plain]
        for name, freeze in (("+vectors", False), ("+frozen vectors", True))[: 2 if args.freeze else 1]:
            options = {**base, "train__vectors": str(vectors), "train__freeze_vectors": freeze}
            row, _ = _run(svc, train_csv, test_csv, name, options)
            rows.append(Row(row.model, row.accuracy, row.macro_f1, row.seconds + built, row.note))
        return rows
    finally:
        svc.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETS), help="folders under ../shared/datasets")
    parser.add_argument("--data-dir", type=Path, default=DATASETS, help="where the dataset folders are")
    parser.add_argument("--rows", type=int, default=None, help="keep a seeded N of the training rows")
    parser.add_argument("--epochs", type=int, default=None, help="cap every training (a quick check)")
    parser.add_argument("--freeze", action="store_true", help="add a row with the vectors frozen")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    for name in args.datasets:
        texts, labels, test_texts, test_labels = load(args.data_dir / name, args.rows, args.seed)
        with tempfile.TemporaryDirectory() as work:
            rows = vector_rows(args, texts, labels, test_texts, test_labels, Path(work))
        print_table(name, rows, len(texts), len(test_texts))


if __name__ == "__main__":
    main()
