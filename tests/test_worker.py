"""The background training worker: order, one training at a time per device, cancel, failures.

The scheduling tests drive the worker with a scripted trainer whose steps the test releases one
by one, so "only one at a time" is checked at a moment the test controls, not by timing luck.
The last tests run real trainings through a real `Service` on a SQLite file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import THREAD, write_toy_csv

from lstm_demo.config import AppSettings, override
from lstm_demo.service import Service
from lstm_demo.worker import TrainingWorker

WAIT = 10.0  # seconds a test waits for something that should take milliseconds


def event(kind: str, status: str | None = None) -> SimpleNamespace:
    run = None if status is None else SimpleNamespace(status=status, error=None)
    return SimpleNamespace(progress=SimpleNamespace(kind=kind), run=run)


class Script:
    """A stand-in trainer: each run reports `start`, then waits until the test releases it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.cancelled_queued: list[str] = []

    def prepared(self, run_id: str, device: str = "cpu") -> SimpleNamespace:
        self.release[run_id] = threading.Event()
        return SimpleNamespace(run_id=run_id, config=SimpleNamespace(train=SimpleNamespace(device=device)))

    def execute(self, prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
        with self.lock:
            self.started.append(prepared.run_id)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            yield event("start")
            while not self.release[prepared.run_id].wait(0.01):
                if should_stop():
                    yield event("cancelled", "cancelled")
                    return
            yield event("epoch")
            yield event("done", "completed")
        finally:
            with self.lock:
                self.running -= 1

    def worker(self) -> TrainingWorker:
        return TrainingWorker(self.execute, cancel_queued=self.cancelled_queued.append)


def wait_for(condition: Any, what: str) -> None:
    done = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def script() -> Iterator[Script]:
    yield Script()


def test_runs_one_at_a_time_in_submission_order(script: Script) -> None:
    worker = script.worker()
    jobs = [worker.submit(script.prepared(f"run{i}")) for i in range(3)]
    wait_for(lambda: jobs[0].status == "running", "the first run to start")
    assert [worker.position(j.run_id) for j in jobs] == [0, 1, 2]
    assert [j.status for j in jobs] == ["running", "queued", "queued"]
    for i, job in enumerate(jobs):
        script.release[job.run_id].set()
        wait_for(lambda job=job: job.finished, f"run{i} to finish")
    assert script.started == ["run0", "run1", "run2"]
    assert script.most_at_once == 1
    assert [j.status for j in jobs] == ["completed"] * 3
    assert [len(j.history()) for j in jobs] == [1, 1, 1]  # the one epoch report each, for the curves
    worker.shutdown()


def test_each_device_has_its_own_lane(script: Script) -> None:
    worker = script.worker()
    cpu = worker.submit(script.prepared("on-cpu", "cpu"))
    gpu = worker.submit(script.prepared("on-gpu", "cuda:0"))
    wait_for(lambda: cpu.status == gpu.status == "running", "both devices to train at once")
    assert script.most_at_once == 2
    for job in (cpu, gpu):
        script.release[job.run_id].set()
    wait_for(lambda: cpu.finished and gpu.finished, "both to finish")
    worker.shutdown()


def test_cancel_a_queued_run_ends_it_at_once_and_it_never_starts(script: Script) -> None:
    worker = script.worker()
    first, second, third = (worker.submit(script.prepared(f"run{i}")) for i in range(3))
    wait_for(lambda: first.status == "running", "the first run to start")
    assert worker.cancel(second.run_id)
    assert second.status == "cancelled" and script.cancelled_queued == [second.run_id]
    assert worker.position(third.run_id) == 1  # moved up
    script.release[first.run_id].set()
    script.release[third.run_id].set()
    wait_for(lambda: third.finished, "the third run to finish")
    assert script.started == ["run0", "run2"]
    assert not worker.cancel(second.run_id)  # already over
    worker.shutdown()


def test_cancel_a_running_run_stops_it_and_the_next_one_starts(script: Script) -> None:
    worker = script.worker()
    first, second = worker.submit(script.prepared("run0")), worker.submit(script.prepared("run1"))
    wait_for(lambda: first.status == "running", "the first run to start")
    assert worker.cancel(first.run_id) and first.cancel_requested
    wait_for(lambda: first.finished, "the cancelled run to stop")
    assert first.status == "cancelled" and script.cancelled_queued == []  # the trainer recorded it
    wait_for(lambda: second.status == "running", "the next run to start")
    script.release[second.run_id].set()
    wait_for(lambda: second.finished, "the next run to finish")
    assert second.status == "completed"
    worker.shutdown()


def _completes(prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
    yield event("done", "completed")


def _cancelled_by_trainer(prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
    yield event("cancelled")


def _raises(prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
    yield event("start")
    raise RuntimeError("the GPU caught fire")


def _cannot_start(prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
    raise MemoryError("cannot allocate the model")
    yield  # a generator, as the service's execute is


def _ends_without_result(prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
    yield event("start")


@pytest.mark.parametrize(
    ("execute", "status", "error"),
    [
        (_completes, "completed", None),
        (_cancelled_by_trainer, "cancelled", None),
        (_raises, "failed", "the GPU caught fire"),
        (_cannot_start, "failed", "cannot allocate the model"),
        (_ends_without_result, "failed", "training stopped without a result"),
    ],
)
def test_how_a_run_ends_and_the_worker_keeps_serving(execute: Any, status: str, error: str | None) -> None:
    calls: list[str] = []

    def trainer(prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
        calls.append(prepared.run_id)
        if prepared.run_id == "first":
            yield from execute(prepared, should_stop)
        else:
            yield from _completes(prepared, should_stop)

    worker = TrainingWorker(trainer)
    device = SimpleNamespace(train=SimpleNamespace(device="cpu"))
    first = worker.submit(SimpleNamespace(run_id="first", config=device))
    after = worker.submit(SimpleNamespace(run_id="after", config=device))
    finals = list(first.follow(interval=0.0))
    assert finals[-1].status == status and first.error == error
    wait_for(lambda: after.finished, "the next run")
    assert after.status == "completed" and calls == ["first", "after"]
    worker.shutdown()


def test_cancel_while_the_model_is_being_built_stops_before_the_first_step() -> None:
    """A run reports nothing while its model is built; a cancel then is seen right after building."""
    building, built = threading.Event(), threading.Event()
    steps: list[int] = []

    def trainer(prepared: Any, should_stop: Any) -> Iterator[SimpleNamespace]:
        if should_stop():
            yield event("cancelled", "cancelled")
            return
        building.set()
        built.wait(WAIT)  # the model's construction, which cannot be interrupted
        if should_stop():
            yield event("cancelled", "cancelled")
            return
        steps.append(1)
        yield event("done", "completed")

    worker = TrainingWorker(trainer)
    job = worker.submit(
        SimpleNamespace(run_id="big", config=SimpleNamespace(train=SimpleNamespace(device="cpu")))
    )
    assert building.wait(WAIT)
    assert worker.cancel("big") and job.cancel_requested
    built.set()
    list(job.follow(interval=0.0))
    assert job.status == "cancelled" and steps == []
    worker.shutdown()


def test_active_is_the_newest_unfinished_job_of_a_session(script: Script) -> None:
    worker = script.worker()
    mine = worker.submit(script.prepared("mine"), owner_session="a")
    theirs = worker.submit(script.prepared("theirs"), owner_session="b")
    assert worker.active() is theirs and worker.active("a") is mine and worker.active("c") is None
    script.release["mine"].set()
    script.release["theirs"].set()
    wait_for(lambda: mine.finished and theirs.finished, "both runs")
    assert worker.active() is None
    worker.shutdown()


def test_shutdown_cancels_what_is_queued(script: Script) -> None:
    worker = script.worker()
    first, second = worker.submit(script.prepared("run0")), worker.submit(script.prepared("run1"))
    wait_for(lambda: first.status == "running", "the first run to start")
    worker.shutdown(cancel=True, timeout=WAIT)
    assert first.status == second.status == "cancelled"
    assert script.cancelled_queued == ["run1"]
    with pytest.raises(RuntimeError, match="shutting down"):
        worker.submit(script.prepared("late"))


# ------------------------------------------------------------------------ with the real service


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = Service(
        AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home"), "LSTM_DEMO_DEVICE": "cpu", **THREAD})
    )
    yield s
    s.shutdown()


def test_real_trainings_queue_cancel_and_fail_without_stopping_the_worker(
    service: Service, tmp_path: Path
) -> None:
    csv = write_toy_csv(tmp_path / "toy.csv", n=40)

    def prepare(name: str) -> Any:
        return service.prepare(csv, preset_name="fast", overrides={"train__epochs": 1}, name=name)

    broken = prepare("broken")
    # labels that do not cover the table: the service fails inside the training, as a bug would
    broken.config = override(broken.config, labels=("neg",), model__num_classes=1)
    jobs = {
        name: service.submit(p)
        for name, p in [("broken", broken)] + [(n, prepare(n)) for n in ("ok", "dropped")]
    }
    assert {r.id: r.status for r in service.runs()}[jobs["dropped"].run_id] == "queued"
    assert service.active_job() is jobs["dropped"]  # the newest one still waiting
    assert service.cancel(jobs["dropped"].run_id)
    for job in jobs.values():
        list(service.follow(job.run_id, interval=0.05))
    status = {r.name: (r.status, r.error) for r in service.runs()}
    assert status["broken"][0] == "failed" and "KeyError" in status["broken"][1]
    assert jobs["broken"].status == "failed"
    # what the page and the HTTP caller follow: an error id, not the exception's text
    assert (
        jobs["broken"].error.startswith("something went wrong (error id ")
        and "KeyError" not in jobs["broken"].error
    )
    assert status["ok"] == ("completed", None) and jobs["ok"].run.status == "completed"
    assert status["dropped"][0] == "cancelled"
    assert service.predict(jobs["ok"].run_id, ["great film"])[0].label in ("neg", "pos")
    assert service.active_job() is None
