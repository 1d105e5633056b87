"""The worker with the run store as the queue every replica shares: claims, leases, cancels.

Replicas here are two `Service`s (or workers) in one process on one SQLite file; the same code on
PostgreSQL, in two app processes, is `test_replicas.py::test_two_app_processes_...`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import LABELS, THREAD, write_toy_csv
from test_store import _sql
from test_worker import WAIT, Script, wait_for

from lstm_demo import job
from lstm_demo.config import AppSettings
from lstm_demo.job import SharedQueue
from lstm_demo.service import Service
from lstm_demo.store import LEASE_EXPIRED, Store
from lstm_demo.ui import train_tab
from lstm_demo.worker import TrainingWorker

TINY = {"model__embedding_dim": 8, "model__hidden_size": 8, "train__device": "cpu", "train__epochs": 1}
LONG = {**TINY, "train__epochs": 200, "train__batch_size": 4, "train__log_every": 1}
QUICK = {"poll": 0.02, "renew_every": 0.02, "expire_every": 0.02}  # housekeeping rounds, in seconds


def _settings(home: Path, **env: str) -> AppSettings:
    return AppSettings.from_env({"LSTM_DEMO_HOME": str(home), "LSTM_DEMO_DEVICE": "cpu", **env})


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    return write_toy_csv(tmp_path / "toy.csv", n=40)


def test_a_run_submitted_by_another_replica_trains_here_from_its_job_folder(tmp_path: Path, csv: Path):
    svc = Service(_settings(tmp_path / "home", **THREAD))
    try:
        # what another replica's `submit` leaves: the job folder in the shared home, the row submitted
        prepared = svc.prepare(csv, preset_name="fast", overrides=TINY)
        job.write_spec(prepared, svc.settings.runs_dir)
        svc.store.submit_run(prepared.run_id)
        wait_for(lambda: svc.job(prepared.run_id) is not None, "this replica to claim the run")
        list(svc.follow(prepared.run_id, interval=0.05))
        assert svc.job(prepared.run_id).status == "completed"
        assert svc.run(prepared.run_id).summary.status == "completed"
        assert svc.predict(prepared.run_id, ["great fun"])[0].label in LABELS
        folder = job.job_dir(svc.settings.runs_dir, prepared.run_id)
        wait_for(lambda: not folder.exists(), "its job folder to be removed")
    finally:
        svc.shutdown()


def test_a_cancel_asked_on_another_replica_stops_the_child_training_there(tmp_path: Path, csv: Path):
    home = tmp_path / "home"
    trainer = Service(_settings(home))  # trainings in child processes, the default
    other = None
    try:
        run_id = trainer.submit(trainer.prepare(csv, preset_name="fast", overrides=LONG)).run_id
        deadline = time.monotonic() + 120
        while not trainer.curves([run_id])[run_id]:  # its child is mid-epoch
            assert time.monotonic() < deadline, "the child stored no progress"
            time.sleep(0.05)
        other = Service(_settings(home))  # started after the claim: it trains nothing
        assert other.job(run_id) is None and other.position(run_id) is None
        assert other.cancel(run_id)
        list(trainer.follow(run_id, interval=0.05))
        assert trainer.job(run_id).status == "cancelled"
        assert other.run(run_id).summary.status == "cancelled"
        assert not other.cancel(run_id)  # over
    finally:
        for svc in (other, trainer):
            if svc is not None:
                svc.shutdown()


def _worker(
    store: Store,
    script: Script,
    replica: str = "replica-b",
    devices: tuple[str, ...] = ("cpu",),
    **kwargs: Any,
) -> TrainingWorker:
    """A replica's worker on `store` whose trainings are `script`'s (which records nothing)."""
    queue = SharedQueue(
        store=store,
        replica=replica,
        devices=devices,
        enqueue=lambda prepared: store.submit_run(prepared.run_id),
        load=lambda run_id: script.prepared(run_id),
        discard=lambda run_id: None,
        **QUICK,
    )

    def cancel_queued(run_id: str) -> None:
        script.cancelled_queued.append(run_id)
        store.finish_run(run_id, status="cancelled", error="cancelled before it started")

    return TrainingWorker(script.execute, cancel_queued=cancel_queued, queue=queue, **kwargs)


@pytest.fixture
def script() -> Iterator[Script]:
    yield Script()


def _run(store: Store) -> str:
    return store.create_run(config={"train": {"device": "cpu"}}, preset="fast", dataset_id=None).id


def test_the_housekeeping_gives_up_on_a_run_whose_replica_went_silent(store: Store, script: Script):
    run_id = _run(store)
    store.submit_run(run_id)
    assert store.claim_next("replica-a", None, 0.05) == run_id  # and replica-a dies
    worker = _worker(store, script)
    try:
        wait_for(lambda: store.get_run(run_id).summary.status == "interrupted", "the lease to expire")
        assert store.get_run(run_id).summary.error == LEASE_EXPIRED
        assert script.started == []  # nobody trains an interrupted run again
    finally:
        worker.shutdown(timeout=WAIT)


def test_the_claiming_replica_renews_its_lease_while_the_run_trains(
    store: Store, store_url: str, script: Script
):
    worker = _worker(store, script)
    try:
        job_ = worker.submit(script.prepared(_run(store)))
        wait_for(lambda: job_.status == "running", "the claim")

        def lease() -> Any:
            return _sql(store_url, "SELECT claimed_by, lease_until FROM runs")[0]

        claimed_by, first = lease()
        assert claimed_by == "replica-b"
        wait_for(lambda: lease()[1] != first, "a renewal")
        script.release[job_.run_id].set()
        wait_for(lambda: job_.finished, "the run to end")
        assert job_.status == "completed"
    finally:
        worker.shutdown(timeout=WAIT)


def test_a_job_submitted_here_follows_its_run_trained_by_another_replica(store: Store, script: Script):
    here, there = Script(), script
    # a replica whose only lane is a device the run does not ask for: another replica must train it
    submitter = _worker(store, here, "replica-a", devices=(), device_of=lambda prepared: "cuda:7")
    trainer = _worker(store, there)
    try:
        followed = submitter.submit(here.prepared(_run(store), "cpu"))
        wait_for(lambda: there.started == [followed.run_id], "the other replica to claim it")
        wait_for(lambda: followed.status == "running", "the submitter to see it running")
        assert submitter.position(followed.run_id) == 0
        there.release[followed.run_id].set()
        store.finish_run(followed.run_id, status="completed")  # what its real training records
        wait_for(lambda: followed.finished, "the submitter to see it end")
        assert followed.status == "completed" and followed.run.status == "completed"
        assert here.started == []
    finally:
        trainer.shutdown(timeout=WAIT)
        submitter.shutdown(timeout=WAIT)


def test_a_waiting_run_cancelled_on_another_replica_never_trains(store: Store, script: Script):
    submitter = _worker(store, script, "replica-a")
    other = _worker(store, Script(), "replica-c", devices=())  # trains nothing: it only cancels
    try:
        busy = submitter.submit(script.prepared(_run(store)))
        wait_for(lambda: busy.status == "running", "the first run to start")
        waiting = submitter.submit(script.prepared(_run(store)))
        assert submitter.position(waiting.run_id) == 1
        assert other.cancel(waiting.run_id)
        assert store.get_run(waiting.run_id).summary.status == "cancelled"
        wait_for(lambda: waiting.status == "cancelled", "the submitter to see the cancel")
        assert not other.cancel(waiting.run_id)  # over
        assert other.cancel(busy.run_id)  # running here: a request this replica reads
        wait_for(lambda: busy.finished, "the running run to stop")
        assert busy.status == "cancelled" and script.started == [busy.run_id]
    finally:
        other.shutdown(timeout=WAIT)
        submitter.shutdown(timeout=WAIT)


def test_a_page_on_the_submitting_replica_draws_the_curve_another_replica_trains(tmp_path: Path, csv: Path):
    """Only a run's status reaches the replica that submitted it; its live curve and epoch come from the
    points the training replica stores."""
    home = tmp_path / "home"
    submitter, trainer = Service(_settings(home, **THREAD)), Service(_settings(home, **THREAD))
    try:
        # two runs submitted on one replica: its lane trains one, the other replica claims the other
        runs = [
            submitter.submit(submitter.prepare(csv, preset_name="fast", overrides=LONG)) for _ in range(2)
        ]
        wait_for(lambda: any(trainer.job(j.run_id) is not None for j in runs), "the other replica's claim")
        followed = next(j for j in runs if trainer.job(j.run_id) is not None)
        updates = train_tab.follow(submitter, followed)
        deadline = time.monotonic() + 120
        for update in updates:
            if not isinstance(update.curves, dict):  # a figure, not a skip
                break
            assert time.monotonic() < deadline, "no curve reached the submitting replica"
        assert followed.history() == [] and followed.status == "running"  # nothing reported here
        assert f'data-run="{followed.run_id}"' in update.progress
        assert "running on another replica · epoch " in update.progress
        assert update.curves.data  # the stored points, drawn
        for job_ in runs:
            assert submitter.cancel(job_.run_id)  # the other's through the store, to its replica
        *_, last = updates
        assert followed.status == "cancelled" and "was cancelled" in last.message
    finally:
        trainer.shutdown()
        submitter.shutdown()


# A replica that submits two long trainings and then waits to be killed; its leases are short, so
# that the test need not wait out the default's 90 seconds.
DOOMED = """
import json, sys, time
from dataclasses import replace
from pathlib import Path
from lstm_demo import job
from lstm_demo.config import AppSettings
from lstm_demo.service import Service

home, csv, out, overrides = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
shared = job.shared_queue
job.shared_queue = lambda *a: replace(shared(*a), lease=4.0, renew_every=0.5, expire_every=0.5, poll=0.2)
svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": home, "LSTM_DEMO_DEVICE": "cpu"}))
ids = [svc.submit(svc.prepare(csv, preset_name="fast", overrides=overrides)).run_id for _ in range(2)]
out.write_text(" ".join(ids))
time.sleep(3600)
"""


@pytest.mark.slow
def test_a_replica_killed_mid_training_leaves_its_run_interrupted_and_another_trains_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """SIGKILL of a whole app process, not a simulated silence: its training child ends with it, the run
    ends `interrupted` (never `cancelled`: nobody cancelled it), and another replica trains the run that
    waited."""
    home, ids_file = tmp_path / "home", tmp_path / "ids"
    data = write_toy_csv(tmp_path / "long.csv", n=2000)
    long = {**TINY, "train__epochs": 100, "train__batch_size": 4, "train__log_every": 1}
    root = Path(__file__).parents[1]
    doomed = subprocess.Popen(
        [sys.executable, "-c", DOOMED, str(home), str(data), str(ids_file), json.dumps(long)],
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    other = None
    try:
        deadline = time.monotonic() + 120  # a process starting: torch to import, a file to read
        while not (ids_file.exists() and ids_file.read_text()):
            assert time.monotonic() < deadline and doomed.poll() is None, (
                "the doomed replica submitted nothing"
            )
            time.sleep(0.1)
        first, second = ids_file.read_text().split()
        with Store(_settings(home).db_url) as store:
            while not store.curves([first])[first]:  # its child process is mid-epoch
                assert time.monotonic() < deadline and doomed.poll() is None, "the first run never trained"
                time.sleep(0.1)
        shared = job.shared_queue
        monkeypatch.setattr(job, "shared_queue", lambda *a: replace(shared(*a), expire_every=0.5, poll=0.2))
        other = Service(_settings(home))
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        deadline = time.monotonic() + 60
        while (run := other.run(first).summary).status == "running":
            assert time.monotonic() < deadline, "the killed replica's run stayed running"
            time.sleep(0.2)
        # said by its child, whose reports no longer reach anyone, or else by the lease's end
        assert run.status == "interrupted" and run.error in (job.APP_GONE, LEASE_EXPIRED), run.error
        points = len(other.curves([first])[first])
        time.sleep(2.5)  # its child watched its launcher, and is gone: the curve stands still
        assert len(other.curves([first])[first]) == points
        deadline = time.monotonic() + 120
        while not other.curves([second])[second]:  # claimed here, and its child is mid-epoch
            assert time.monotonic() < deadline, "the waiting run never trained on the other replica"
            time.sleep(0.1)
        assert other.job(second) is not None
        assert other.cancel(second)
        list(other.follow(second, interval=0.05))
        assert other.run(second).summary.status == "cancelled"
    finally:
        if doomed.poll() is None:
            doomed.kill()
        if other is not None:
            other.shutdown()
