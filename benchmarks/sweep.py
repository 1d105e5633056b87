"""One training of a preset with overrides on a shared dataset, as one JSON line (the preset sweep).

    OMP_NUM_THREADS=1 python -m benchmarks.sweep trec default '{"train__seed": 1}'
    OMP_NUM_THREADS=1 python -m benchmarks.sweep trec default '{"train__adversarial": 0.2}' --seeds 13 1 2 3 4 5

With `--seeds`, one line per seed (the seed set in the overrides), then one line with the means.

SST-2 validates on its dev set, TREC on a seeded 10% of train; both report test accuracy.
"""

from __future__ import annotations

import json
import sys
import tempfile

from benchmarks.run import DATASETS
from lstm_demo.config import AppSettings
from lstm_demo.service import Service


def main(argv: list[str]) -> None:
    seeds: list[int] = []
    if "--seeds" in argv:
        at = argv.index("--seeds")
        argv, seeds = argv[:at], [int(s) for s in argv[at + 1 :]]
    ds, preset = argv[0], argv[1]
    overrides = json.loads(argv[2]) if len(argv) > 2 else {}
    if not seeds:
        print(json.dumps(one(ds, preset, overrides)))
        return
    rows = [one(ds, preset, {**overrides, "train__seed": seed}) for seed in seeds]
    for row in rows:
        print(json.dumps(row), flush=True)
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in ("test_accuracy", "val_accuracy")}
    print(json.dumps({"dataset": ds, "preset": preset, "overrides": overrides, "seeds": seeds, "mean": mean}))


def one(ds: str, preset: str, overrides: dict) -> dict:
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": tempfile.mkdtemp(prefix="lstm-demo-sweep-")}))
    d = DATASETS / ds
    kw = {"test_path": d / "test.csv", "preset_name": preset, "overrides": overrides}
    if (d / "dev.csv").exists():
        kw["val_path"] = d / "dev.csv"
    result = None
    for event in svc.train(d / "train.csv", **kw):
        result = event.progress.result or result
    row = {
        "dataset": ds, "preset": preset, "overrides": overrides,
        "test_accuracy": round(result.test["accuracy"], 4), "test_macro_f1": round(result.test["macro_f1"], 4),
        "val_accuracy": round(result.val["accuracy"], 4), "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run, "seconds_per_epoch": round(result.seconds_per_epoch, 2),
    }  # fmt: skip
    svc.close()
    return row


if __name__ == "__main__":
    main(sys.argv[1:])
