"""The background training worker: one training at a time per device, the others queued in order.

The service owns one and is its only caller (`Service.submit`, `follow`, `cancel`): a prepared run
(its row already `queued` in the store) becomes a `Job` that trains in a lane thread, so prediction
and explanation keep answering while a model trains, and a person who closes the page does not stop
the training. No gradio and no torch here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .names import FINISHED_STATUSES

log = logging.getLogger(__name__)

ShouldStop = Callable[[], bool]
# service.execute(prepared, should_stop) -> Iterator[TrainEvent]
Execute = Callable[[Any, ShouldStop], Iterator[Any]]
KEEP_FINISHED = 200  # finished jobs remembered for late followers; older ones are in the store only


@dataclass(eq=False)
class Job:
    """One submitted training: its status and every report so far. Read it; the worker writes it."""

    run_id: str
    device: str
    prepared: Any = field(repr=False)  # the PreparedRun; released once the job ends
    owner_session: str | None = None  # the browser session that submitted it, when one did
    status: str = "queued"  # one of names.RUN_STATUSES
    error: str | None = None
    last: Any = None  # the latest TrainEvent
    run: Any = None  # the final RunSummary (completed or cancelled by the trainer)
    submitted: float = field(default_factory=time.time)
    version: int = 0  # bumped on every change, so followers can wait for the next one
    _history: list[Any] = field(default_factory=list, repr=False)  # Progress of step/epoch reports
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def cancel_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def progress(self) -> Any:
        """The latest `train.Progress`, or None before the first report."""
        return None if self.last is None else self.last.progress

    def history(self) -> list[Any]:
        """The step and epoch reports so far (a copy), for drawing curves."""
        with self._changed:
            return list(self._history)

    def wait(self, version: int, timeout: float | None = None) -> int:
        """Block until the job changes past `version` (or it ends, or `timeout`); returns the version."""
        with self._changed:
            self._changed.wait_for(lambda: self.version > version or self.finished, timeout)
            return self.version

    def follow(self, interval: float = 0.5, heartbeat: float | None = None) -> Iterator[Job]:
        """Yield this job after each change, at most once per `interval` seconds, and last when it ends.

        With `heartbeat`, also yield after that many quiet seconds (a queued job's place in line
        moves without the job itself changing).
        """
        seen = -1
        while True:
            seen = self.wait(seen, heartbeat)
            yield self
            if self.finished:
                return
            time.sleep(interval)  # gather a few reports into one update

    def _update(self, **changes: Any) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(self, key, value)
            self.version += 1
            self._changed.notify_all()

    def _report(self, event: Any) -> None:
        with self._changed:
            self.last = event
            progress = event.progress  # the curves are the validated pass's; a refit has none
            if (
                getattr(progress, "kind", None) in ("step", "epoch")
                and getattr(progress, "phase", "train") == "train"
            ):
                self._history.append(progress)
            self.version += 1
            self._changed.notify_all()


class TrainingWorker:
    """Runs submitted trainings in background threads: one lane (thread) per device, FIFO within it."""

    def __init__(
        self,
        execute: Execute,
        *,
        cancel_queued: Callable[[str], Any] | None = None,
        device_of: Callable[[Any], str] | None = None,
        describe: Callable[[BaseException], str] | None = None,
    ) -> None:
        """`execute(prepared, should_stop)` trains and yields events whose `.progress` is a `train.Progress`
        and whose last one carries `.run`; `cancel_queued(run_id)` records a run cancelled before it
        started; `device_of(prepared)` names the device whose lane the run waits in; `describe(error)`
        words a failure for the job's followers (it logs what it does not show)."""
        self._execute = execute
        self._cancel_queued = cancel_queued
        self._describe = describe or _logged
        self._device_of = device_of or (lambda prepared: str(prepared.config.train.device))
        self._lock = threading.Condition()
        self._queues: dict[str, deque[Job]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._running: dict[str, Job] = {}  # device -> job
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._closing = False

    # ------------------------------------------------------------------ submitting and cancelling

    def submit(self, prepared: Any, owner_session: str | None = None) -> Job:
        """Queue a prepared run behind the others on its device; returns its job at once."""
        device = self._device_of(prepared)
        job = Job(run_id=prepared.run_id, device=device, prepared=prepared, owner_session=owner_session)
        with self._lock:
            if self._closing:
                raise RuntimeError("the training worker is shutting down")
            self._jobs[job.run_id] = job
            self._queues.setdefault(device, deque()).append(job)
            if device not in self._threads:
                thread = threading.Thread(
                    target=self._lane, args=(device,), name=f"train-{device}", daemon=True
                )
                self._threads[device] = thread
                thread.start()
            self._lock.notify_all()
        return job

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued run at once or ask a running one to stop; False when it is not active here."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None or job.finished:
                return False
            queue = self._queues.get(job.device, deque())
            queued = job in queue
            if queued:
                queue.remove(job)
            job._stop.set()
        if queued:
            self._end_queued(job)
        return True

    def _end_queued(self, job: Job) -> None:
        error = None
        if self._cancel_queued is not None:
            try:
                self._cancel_queued(job.run_id)
            except Exception as e:  # the store refused: say so on the job rather than lose the cancel
                log.exception("could not record the cancellation of run %s", job.run_id)
                error = f"cancelled, but the run could not be updated: {e}"
        job._update(status="cancelled", error=error, prepared=None)
        self._forget_old()

    # ------------------------------------------------------------------ reading

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def active(self, owner_session: str | None = None) -> Job | None:
        """The newest queued or running job (of that session, when one is named)."""
        with self._lock:
            for job in reversed(self._jobs.values()):
                if not job.finished and (owner_session is None or job.owner_session == owner_session):
                    return job
        return None

    def position(self, run_id: str) -> int | None:
        """0 while running, 1 for the next in line on its device, ...; None when not active."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None or job.finished:
                return None
            if self._running.get(job.device) is job:
                return 0
            queue = self._queues.get(job.device, deque())
            return queue.index(job) + 1 if job in queue else None

    # ------------------------------------------------------------------ the lanes

    def _lane(self, device: str) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._queues[device] or self._closing)
                if not self._queues[device]:
                    return  # closing and nothing left
                job = self._queues[device].popleft()
                self._running[device] = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running.pop(device, None)
                self._forget_old()

    def _run(self, job: Job) -> None:
        job._update(status="running")
        last = None
        try:
            for event in self._execute(job.prepared, job._stop.is_set):
                last = event
                job._report(event)
        except Exception as e:  # a run that cannot start or fails midway ends alone; the queue moves on
            job._update(status="failed", error=self._describe(e), prepared=None)
            return
        run = getattr(last, "run", None)
        kind = getattr(getattr(last, "progress", None), "kind", None)
        if run is not None:
            status = run.status
        elif kind == "cancelled":
            status = "cancelled"
        else:
            status = "failed"
        error = getattr(run, "error", None)
        if status == "failed" and error is None:
            error = "training stopped without a result"
        job._update(status=status, run=run, error=error, prepared=None)

    def _forget_old(self) -> None:
        with self._lock:
            finished = [rid for rid, job in self._jobs.items() if job.finished]
            for rid in finished[: max(0, len(finished) - KEEP_FINISHED)]:
                del self._jobs[rid]

    def shutdown(self, *, cancel: bool = True, timeout: float | None = 30.0) -> None:
        """Stop taking work; with `cancel`, cancel the queued runs and ask the running ones to stop."""
        with self._lock:
            self._closing = True
            queued = [job for q in self._queues.values() for job in q] if cancel else []
            for q in self._queues.values():
                if cancel:
                    q.clear()
            running = list(self._running.values())
            threads = list(self._threads.values())
            self._lock.notify_all()
        for job in queued:
            job._stop.set()
            self._end_queued(job)
        if cancel:
            for job in running:
                job._stop.set()
        for thread in threads:
            thread.join(timeout)


def _logged(error: BaseException) -> str:
    log.error("a training failed", exc_info=error)
    return str(error) or type(error).__name__
