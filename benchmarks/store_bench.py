"""How fast the run database answers the two reads the web app makes most.

Fills a temporary SQLite file with 1,000 finished runs (one of them trained for 100 epochs, with
a validation point per epoch and step points in between), then times `list_runs()` of all of
them (the runs table) and `get_run()` of the 100-epoch run (a run's page, curve included).

    .venv/bin/python -m benchmarks.store_bench
    .venv/bin/python -m benchmarks.store_bench --url postgresql+psycopg://...   # an empty database
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lstm_demo.config import PRESETS
from lstm_demo.store import MetricPoint, Store


def _metrics(rng: random.Random) -> dict:
    acc = rng.uniform(0.5, 0.95)
    per_class = {str(c): {"precision": acc, "recall": acc, "f1": acc, "support": 50} for c in range(6)}
    confusion = [[rng.randrange(50) for _ in range(6)] for _ in range(6)]
    split = {"accuracy": acc, "macro_f1": acc - 0.02, "per_class": per_class, "confusion": confusion}
    return {"val": split, "test": split}


def fill(store: Store, runs: int, epochs: int, steps_per_epoch: int) -> str:
    """`runs` finished runs; returns the id of the one with `epochs` epochs of metrics."""
    rng = random.Random(0)
    dataset = store.add_dataset("reviews.csv", "0" * 64, 5000, "text", "label", {"neg": 2500, "pos": 2500})
    config = PRESETS["default"].to_dict()
    long_run = ""
    for i in range(runs):
        run = store.create_run(config=config, preset="default", dataset_id=dataset.id, name=f"run {i}")
        store.start_run(run.id, device="cpu")
        n_epochs = epochs if i == runs // 2 else 0
        for epoch in range(1, n_epochs + 1):
            for step in range(1, steps_per_epoch + 1):
                point = MetricPoint(epoch=epoch, step=step, kind="step", train_loss=rng.random())
                store.add_metric(run.id, point)
            store.add_metric(
                run.id,
                MetricPoint(
                    epoch=epoch,
                    step=steps_per_epoch,
                    kind="epoch",
                    train_loss=rng.random(),
                    val_loss=rng.random(),
                    val_accuracy=rng.random(),
                    val_macro_f1=rng.random(),
                    tokens_per_second=1e5,
                ),
            )
        if n_epochs:
            long_run = run.id
        store.finish_run(run.id, status="completed", metrics=_metrics(rng), best_epoch=1, epochs_run=1)
    return long_run


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm the pool and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--steps-per-epoch", type=int, default=5, help="step points between epoch points")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        with Store(url) as store:
            start = time.perf_counter()
            long_run = fill(store, args.runs, args.epochs, args.steps_per_epoch)
            fill_s = time.perf_counter() - start
            points = len(store.get_run(long_run).curve)
            list_ms = median_ms(lambda: store.list_runs(limit=args.runs), args.repeats)
            get_ms = median_ms(lambda: store.get_run(long_run), args.repeats)
            print(f"database: {store.url}")
            print(f"fill: {args.runs} runs + {points} metric points in {fill_s:.1f} s")
            print(f"list_runs() of {args.runs} runs: {list_ms:.1f} ms (median of {args.repeats})")
            print(f"get_run() of a {args.epochs}-epoch run ({points} points): {get_ms:.1f} ms")


if __name__ == "__main__":
    main()
