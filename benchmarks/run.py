"""The accuracy/speed benchmark: our presets against the peers a user would pick instead.

    python -m benchmarks.run [--quick] [--datasets sst2 trec] [--models default seed tfidf keras]
                             [--seeds 13 1 2 3 4]

Each model trains in its own subprocess (so peak memory is its own) on ../shared/datasets, on
this machine, in one run, once per seed: on 500 test questions one seed moves TREC by a point or
more, so a single run cannot tell two models apart. TF-IDF + logistic regression is deterministic
and runs once. SST-2 validates on its dev set; TREC on a seeded 10% of train (our presets) or a
fixed 10% (Keras). Prints one table per dataset (means over the seeds, and the accuracy range)
and the ratios against peers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = Path(
    os.environ.get("LSTM_DEMO_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)
OURS = ("default", "seed")
PEERS = ("tfidf", "keras")


def _read(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def _splits(ds: str) -> dict[str, tuple[list[str], list[str]]]:
    d = DATASETS / ds
    train, test = _read(d / "train.csv"), _read(d / "test.csv")
    if (d / "dev.csv").exists():
        return {"train": train, "val": _read(d / "dev.csv"), "test": test, "full": train}
    idx = list(range(len(train[0])))
    random.Random(13).shuffle(idx)
    cut = len(idx) // 10
    pick = lambda ids: ([train[0][i] for i in ids], [train[1][i] for i in ids])  # noqa: E731
    # "full": TF-IDF needs no validation data, so it trains on all of train (as the reference figures did)
    return {"train": pick(sorted(idx[cut:])), "val": pick(sorted(idx[:cut])), "test": test, "full": train}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_ours(ds: str, preset: str, epochs: int | None, seed: int) -> dict:
    from lstm_demo.config import AppSettings
    from lstm_demo.service import Service

    d = DATASETS / ds
    home = tempfile.mkdtemp(prefix="lstm-demo-bench-")
    svc = Service(
        AppSettings.from_env(
            {"LSTM_DEMO_HOME": home, "LSTM_DEMO_DEVICE": os.environ.get("LSTM_DEMO_DEVICE", "auto")}
        )
    )
    overrides = {"train__epochs": epochs, "train__seed": seed}
    kw: dict = {"test_path": d / "test.csv", "preset_name": preset, "overrides": overrides}
    if (d / "dev.csv").exists():
        kw["val_path"] = d / "dev.csv"
    result = None
    for event in svc.train(d / "train.csv", **kw):
        result = event.progress.result or result
    assert result is not None and result.test is not None
    return {
        "model": preset,
        "test_accuracy": result.test["accuracy"],
        "test_macro_f1": result.test["macro_f1"],
        "seconds_per_epoch": result.seconds_per_epoch,
        "tokens_per_second": result.tokens_per_second,
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": result.train_seconds,
        "device": result.device,
        "peak_memory_mb": _peak_mb(),
    }


def run_peer(ds: str, name: str, epochs: int | None, seed: int) -> dict:
    from benchmarks import peers

    s = _splits(ds)
    if name == "tfidf":
        r = peers.tfidf_logreg(*s["full"], *s["test"])
    else:
        r = peers.keras_lstm(*s["train"], *s["val"], *s["test"], epochs=epochs or 10, seed=seed)
    return {
        "model": r.name,
        "test_accuracy": r.test_accuracy,
        "test_macro_f1": r.test_macro_f1,
        "seconds_per_epoch": r.seconds_per_epoch,
        "tokens_per_second": r.tokens_per_second,
        "epochs": r.epochs,
        "train_seconds": r.train_seconds,
        "device": "cpu",
        "peak_memory_mb": _peak_mb(),
    }


def _one(ds: str, model: str, epochs: int | None, seed: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--one", ds, model, "--seed", str(seed)]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        return {"model": model, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["wall_seconds"] = time.perf_counter() - t
    return row


def _over_seeds(ds: str, model: str, epochs: int | None, seeds: list[int]) -> dict:
    """One row: the means over the seeds (TF-IDF: one run), with the accuracy range and each seed's."""
    runs = [_one(ds, model, epochs, seed) for seed in (seeds[:1] if model == "tfidf" else seeds)]
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    row = dict(runs[0])
    for key in ("test_accuracy", "test_macro_f1", "seconds_per_epoch", "tokens_per_second"):
        values = [r[key] for r in runs if r.get(key) is not None]
        row[key] = sum(values) / len(values) if values else None
    row["peak_memory_mb"] = max(r["peak_memory_mb"] for r in runs)
    row["accuracies"] = {seed: r["test_accuracy"] for seed, r in zip(seeds, runs, strict=False)}
    return row


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(ds: str, rows: list[dict]) -> None:
    by = {r["model"]: r for r in rows}
    tfidf, keras = by.get("tfidf-logreg"), by.get("keras-lstm")
    print(f"\n## {ds}\n")
    print(
        "| model | test acc % | range | macro-F1 % | s/epoch | tokens/s | peak MB | acc - tfidf | acc - keras | speed vs keras |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | error: {r['error']} |")
            continue
        acc = r["test_accuracy"]
        d_tfidf = (
            _fmt(100 * (acc - tfidf["test_accuracy"]), "+.1f") if tfidf and "error" not in tfidf else "-"
        )
        d_keras = (
            _fmt(100 * (acc - keras["test_accuracy"]), "+.1f") if keras and "error" not in keras else "-"
        )
        speed = "-"
        if keras and "error" not in keras and r.get("seconds_per_epoch") and keras.get("seconds_per_epoch"):
            speed = f"{keras['seconds_per_epoch'] / r['seconds_per_epoch']:.1f}x"
        accs = list(r.get("accuracies", {}).values())
        spread = f"{100 * min(accs):.1f}-{100 * max(accs):.1f}" if len(accs) > 1 else "-"
        print(
            f"| {r['model']} | {100 * acc:.1f} | {spread} | {100 * r['test_macro_f1']:.1f} | {_fmt(r.get('seconds_per_epoch'), '.2f')} "
            f"| {_fmt(r.get('tokens_per_second'), ',.0f')} | {r['peak_memory_mb']:.0f} | {d_tfidf} | {d_keras} | {speed} |"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["sst2", "trec"])
    p.add_argument("--models", nargs="+", default=[*OURS, *PEERS])
    p.add_argument("--epochs", type=int, help="override every model's epochs (a smoke run)")
    p.add_argument(
        "--seeds", nargs="+", type=int, default=[13, 1, 2, 3, 4], help="one run per seed, averaged"
    )
    p.add_argument("--seed", type=int, default=13, help=argparse.SUPPRESS)
    p.add_argument(
        "--quick", action="store_true", help="2 epochs each, TREC only: checks the harness, not the figures"
    )
    p.add_argument("--one", nargs=2, metavar=("DATASET", "MODEL"), help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="also print every row as JSON")
    args = p.parse_args(argv)
    if args.one:
        ds, model = args.one
        run = run_ours if model in OURS else run_peer
        row = run(ds, model, args.epochs, args.seed)
        print(json.dumps(row))
        return 0
    if args.quick:
        args.datasets, args.epochs, args.seeds = ["trec"], 2, args.seeds[:1]
    if not DATASETS.is_dir():
        print(f"benchmark data not found at {DATASETS} (set LSTM_DEMO_DATASETS)", file=sys.stderr)
        return 2
    import platform

    import torch

    print(
        f"# lstm-demo benchmark  {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"seeds {' '.join(map(str, args.seeds))}"
    )
    for ds in args.datasets:
        rows = [_over_seeds(ds, m, args.epochs, args.seeds) for m in args.models]
        print_table(ds, rows)
        if args.json:
            for r in rows:
                print(json.dumps({"dataset": ds, **r}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
