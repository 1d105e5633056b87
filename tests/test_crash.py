"""A training process killed with SIGKILL mid-epoch loses nothing else: the database stays sound,
the run becomes `interrupted` at the next start with its finished epochs kept, other runs still predict."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import write_toy_csv

from lstm_demo.config import AppSettings
from lstm_demo.service import Service

# a real training in a child process, killed and restarted: slow, so with `make test-all`
pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"), pytest.mark.slow]


def _wait_for_a_running_run_with_an_epoch(svc: Service, deadline: float) -> str:
    while time.monotonic() < deadline:
        for run in svc.runs(status="running"):
            curve = svc.run(run.id).curve
            # at least one finished epoch, and a step report after it: we are inside the next epoch
            epochs = [p for p in curve if p.kind == "epoch"]
            if epochs and any(p.kind == "step" and p.epoch > epochs[-1].epoch for p in curve):
                return run.id
        time.sleep(0.05)
    raise AssertionError("the training never got past its first epoch")


def test_sigkill_mid_epoch_leaves_a_sound_database_and_an_interrupted_run(tmp_path: Path):
    home = tmp_path / "home"
    settings = AppSettings.from_env({"LSTM_DEMO_HOME": str(home)})
    svc = Service(settings)
    small = write_toy_csv(tmp_path / "small.csv", n=80, seed=0)
    *_, done = svc.train(small, preset_name="fast", overrides={"train__epochs": 2})
    other = done.run_id
    before = svc.predict(other, ["good fine nice", "bad awful poor"])

    big = write_toy_csv(tmp_path / "big.csv", n=3000, seed=1)
    env = {**os.environ, "LSTM_DEMO_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstm_demo.cli", "train", str(big), "--preset", "fast", "--epochs", "500"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        victim = _wait_for_a_running_run_with_an_epoch(svc, time.monotonic() + 120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    epochs_written = [p.epoch for p in svc.run(victim).curve if p.kind == "epoch"]
    svc.shutdown()

    restarted = Service(settings)  # the next start
    assert restarted.interrupted == [victim]
    assert restarted.store.integrity_check() == "ok"
    run = restarted.run(victim)
    assert run.summary.status == "interrupted"
    assert [p.epoch for p in run.curve if p.kind == "epoch"] == epochs_written  # finished epochs kept
    assert not (home / "runs" / victim).exists()  # no half-written model directory
    assert restarted.run(other).summary.status == "completed"
    after = restarted.predict(other, ["good fine nice", "bad awful poor"])
    assert [p.probabilities for p in after] == [p.probabilities for p in before]
