"""Training past one thread of the app: `python -m benchmarks.ddp_bench`.

1. DDP overhead on the CPU: tokens/s of one `default` training on SST-2, as 2 torchrun ranks of 1
   thread each against 1 process of 2 threads (both through `job.launch`, as the app starts them).
2. Predict latency (median, p95) while a `default` training runs, the training in a thread of this
   process (as the app trained before `job`) against a child process, beside the idle figure.

Prints a Markdown table. Run it on a machine with nothing else running: on a shared one the
figures measure the neighbours. `--rows 400 --epochs 1 --seconds 3 --pairs 1` only shows that it
works.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lstm_demo import job
from lstm_demo.config import AppSettings
from lstm_demo.service import Service

SST2 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"
TEXT = "a stirring , funny and finally transporting re-imagining of beauty and the beast"


def _subset(rows: int | None, out: Path) -> Path:
    """SST-2's training table, or its first `rows` rows (a quick check)."""
    if rows is None:
        return SST2 / "train.csv"
    with open(SST2 / "train.csv", newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))[: rows + 1]
    with open(out, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(lines)
    return out


def _in_child(svc: Service, data: Path, overrides: dict, nproc: int, threads: int) -> dict:
    """One training through `job.launch`, each process with `threads` threads; its stored metrics."""
    prepared = svc.prepare(data, preset_name="default", overrides=overrides)
    spec = job.write_spec(prepared, svc.settings.runs_dir)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # torchrun keeps a value it is given
    began = time.perf_counter()
    run = job.reap(job.launch(spec, nproc, settings=svc.settings), prepared.run_id, svc.store)
    seconds = time.perf_counter() - began
    if run.status != "completed":
        raise RuntimeError(f"run {run.id} {run.status}: {run.error}")
    metrics = svc.load(run.id).metrics
    return {"tokens_per_second": metrics["tokens_per_second"], "seconds": seconds, "run": run}


def _latencies(predict: Callable[[], object], seconds: float) -> list[float]:
    """Milliseconds of back-to-back predictions for `seconds`."""
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        began = time.perf_counter()
        predict()
        out.append((time.perf_counter() - began) * 1000)
    return out


def _until_training(svc: Service, run_id: str) -> None:
    """Until the training has stored its first steps: a child first spends seconds importing torch."""
    while not svc.curves([run_id])[run_id]:
        time.sleep(0.1)


def _row(name: str, ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 20 else max(ms)
    return f"| predict, {name} | {statistics.median(ms):.1f} ms median, {p95:.1f} ms p95 ({len(ms)} calls) |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="train on the first N rows of SST-2 (a quick check)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="of predictions per setting")
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="trainings of each kind, taken in turn: the ratio is their median",
    )
    args = parser.parse_args()
    if not 1 <= args.pairs <= 20:
        parser.error(f"--pairs must be 1 to 20, not {args.pairs}")
    overrides = {"train__epochs": args.epochs, "train__device": "cpu"}

    with tempfile.TemporaryDirectory() as home:
        svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": home}))
        data = _subset(args.rows, Path(home) / "sst2.csv")
        # in turn, so that a slow spell of the machine weighs on both kinds alike
        pairs = [
            (
                _in_child(svc, data, overrides, nproc=1, threads=2),
                _in_child(svc, data, overrides, nproc=2, threads=1),
            )
            for _ in range(args.pairs)
        ]
        ratios = [two["tokens_per_second"] / one["tokens_per_second"] for one, two in pairs]
        one = pairs[0][0]

        def rates(k: int) -> str:
            return " / ".join(f"{p[k]['tokens_per_second']:,.0f}" for p in pairs) + " tokens/s"

        lines = [
            "| measure | figure |",
            "|---|---:|",
            f"| 1 process x 2 threads | {rates(0)} |",
            f"| 2 ranks x 1 thread (gloo) | {rates(1)} |",
            f"| 2 ranks against 1 process | {statistics.median(ratios):.0%} median "
            f"({' / '.join(f'{r:.0%}' for r in ratios)}) |",
        ]

        run_id = one["run"].id
        svc.predict(run_id, [TEXT])  # loaded and warm before any timing

        def predict() -> object:
            return svc.predict(run_id, [TEXT])

        lines.append(_row("idle", _latencies(predict, args.seconds)))
        # long enough to outlast the timing: the training is stopped when it is done
        busy = {**overrides, "train__epochs": 500}

        prepared = svc.prepare(data, preset_name="default", overrides=busy)
        stop = threading.Event()
        thread = threading.Thread(target=lambda: list(svc.execute(prepared, stop.is_set)), daemon=True)
        thread.start()
        _until_training(svc, prepared.run_id)
        lines.append(_row("training in a thread", _latencies(predict, args.seconds)))
        stop.set()
        thread.join()

        prepared = svc.prepare(data, preset_name="default", overrides=busy)
        os.environ["OMP_NUM_THREADS"] = "2"
        popen = job.launch(job.write_spec(prepared, svc.settings.runs_dir), settings=svc.settings)
        _until_training(svc, prepared.run_id)
        lines.append(_row("training in a child process", _latencies(predict, args.seconds)))
        job.stop(popen)
        job.reap(popen, prepared.run_id, svc.store, cancelled=True)
        svc.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
