"""The background training worker: one training at a time per device, the others queued in order.

The service owns one and is its only caller (`Service.submit`, `follow`, `cancel`): a prepared run
(its row already `queued` in the store) becomes a `Job` that trains in a lane thread, so prediction
and explanation keep answering while a model trains, and a person who closes the page does not stop
the training. No gradio and no torch here.

With a `job.SharedQueue` the queue is the run store, shared by every replica of the app: a submitted
run's job folder is written where every replica reads it, and each lane claims the oldest run its
device fits (`Store.claim_next`), whichever replica submitted it. A housekeeping thread renews the
lease of each run trained here, stops one whose cancel was asked on any replica, follows in the
store the runs submitted here but trained elsewhere, and gives up on runs whose replica went silent
(`Store.expire_leases`).
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
        queue: Any = None,
    ) -> None:
        """`execute(prepared, should_stop)` trains and yields events whose `.progress` is a `train.Progress`
        and whose last one carries `.run`; `cancel_queued(run_id)` records a run cancelled before it
        started; `device_of(prepared)` names the device whose lane the run waits in; `describe(error)`
        words a failure for the job's followers (it logs what it does not show); with `queue` (a
        `job.SharedQueue`), the runs wait in the store every replica shares, not in this process."""
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
        self._queue = queue
        self._claimed: set[str] = set()  # runs this replica's lanes claimed and have not finished
        self._submissions = 0  # bumped on each submit, so an idle lane looks at the store at once
        if queue is not None:
            with self._lock:
                for device in queue.devices:
                    self._start_lane(device)
                self._threads["housekeeping"] = self._start_thread("train-housekeeping", self._housekeep)

    # ------------------------------------------------------------------ submitting and cancelling

    def submit(self, prepared: Any, owner_session: str | None = None) -> Job:
        """Queue a prepared run behind the others on its device; returns its job at once."""
        device = self._device_of(prepared)
        job = Job(run_id=prepared.run_id, device=device, prepared=prepared, owner_session=owner_session)
        with self._lock:
            if self._closing:
                raise RuntimeError("the training worker is shutting down")
            self._jobs[job.run_id] = job
            if self._queue is None:
                self._queues.setdefault(device, deque()).append(job)
            self._start_lane(device)
        if self._queue is not None:
            self._enqueue(job)
        with self._lock:
            self._submissions += 1
            self._lock.notify_all()
        return job

    def _enqueue(self, job: Job) -> None:
        try:
            self._queue.enqueue(job.prepared)
        except BaseException as e:  # the run cannot reach the queue: it ends here, said to the caller
            with self._lock:
                self._jobs.pop(job.run_id, None)
            self._queue.discard(job.run_id)
            self._queue.store.finish_run(job.run_id, status="failed", error=self._describe(e))
            raise

    def _start_lane(self, device: str) -> None:
        """A lane for `device` unless it has one (the caller holds the lock)."""
        if device not in self._threads:
            lane = self._lane if self._queue is None else self._claiming_lane
            self._threads[device] = self._start_thread(f"train-{device}", lane, device)

    @staticmethod
    def _start_thread(name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        return thread

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued run at once or ask a running one to stop; False when it is not active here
        (with a shared queue: on any replica)."""
        if self._queue is not None:
            return self._cancel_shared(run_id)
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

    def _cancel_shared(self, run_id: str, running: bool = True) -> bool:
        """Through the store: a waiting run ends here at once; a running one is stopped by the replica
        that trains it (this one at once, another at its next look at the store)."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None and job.finished:
                return False
            if job is not None and run_id in self._claimed:
                job._stop.set()
                return True
        status = self._queue.store.request_cancel(run_id, running=running)
        if status == "queued":
            if job is None:
                if self._cancel_queued is not None:
                    self._cancel_queued(run_id)
            else:
                job._stop.set()
                self._end_queued(job)
            self._queue.discard(run_id)
        return status in ("queued", "running") if running else status == "queued"

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
            if self._running.get(job.device) is job or job.status == "running":
                return 0
            if self._queue is None:
                queue = self._queues.get(job.device, deque())
                return queue.index(job) + 1 if job in queue else None
        return self._queue.store.place_in_queue(run_id)

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

    def _claiming_lane(self, device: str) -> None:
        """Claim from the shared queue what `device` can train, one run at a time, until closing."""
        queue = self._queue
        while True:
            with self._lock:
                if self._closing:
                    return
                seen = self._submissions
            try:
                run_id = queue.store.claim_next(queue.replica, [device], queue.lease)
            except Exception:  # the database is away: try again at the next look
                log.exception("could not claim a run for %s", device)
                run_id = None
            if run_id is None:
                self._idle(seen, queue.poll)
                continue
            job = self._hold(run_id, device)
            if job is None:  # claimed as this replica began to shut down: another one trains it
                queue.store.release_run(run_id, queue.replica)
                return
            try:
                self._run_claimed(job, device)
            finally:
                queue.discard(run_id)
                with self._lock:
                    self._claimed.discard(run_id)
                    self._running.pop(device, None)
                self._forget_old()

    def _hold(self, run_id: str, device: str) -> Job | None:
        """The job of a run just claimed, now running on `device`'s lane; None when closing."""
        with self._lock:
            if self._closing:
                return None
            job = self._jobs.get(run_id)
            if job is None:  # submitted by another replica: this one follows it from now on
                job = self._jobs[run_id] = Job(run_id=run_id, device=device, prepared=None)
            self._claimed.add(run_id)
            self._running[device] = job
            return job

    def _idle(self, seen: int, seconds: float) -> None:
        """Wait until a run is submitted here after the `seen`th, closing begins, or `seconds` pass."""
        with self._lock:
            self._lock.wait_for(lambda: self._closing or self._submissions != seen, seconds)

    def _run_claimed(self, job: Job, device: str) -> None:
        if job.prepared is None:
            try:
                job.prepared = self._queue.load(job.run_id)
            except Exception as e:  # its job folder is gone or unreadable: the run cannot train
                error = f"its job folder could not be read: {self._describe(e)}"
                run = self._queue.store.finish_run(job.run_id, status="failed", error=error)
                job._update(status="failed", error=error, run=run)
                return
        job.prepared.device = device  # the lane `claim_next` found it fits
        self._run(job)

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

    # ------------------------------------------------------------------ sharing the queue

    def _housekeep(self) -> None:
        queue = self._queue
        renewed = expired = time.monotonic()
        while True:
            with self._lock:
                if self._lock.wait_for(lambda: self._closing, queue.poll):
                    return
            now = time.monotonic()
            try:
                self._stop_cancelled()
                if now - renewed >= queue.renew_every:
                    renewed = now
                    self._renew()
                if now - expired >= queue.expire_every:
                    expired = now
                    queue.store.expire_leases()
                self._follow_elsewhere()
            except Exception:  # the database is away: the next round tries again
                log.exception("the training queue's housekeeping failed")

    def _trained_here(self) -> dict[str, Job]:
        with self._lock:
            return {rid: self._jobs[rid] for rid in self._claimed if rid in self._jobs}

    def _stop_cancelled(self) -> None:
        """Stop the runs trained here whose cancel was asked on any replica."""
        jobs = self._trained_here()
        for run_id in self._queue.store.cancel_requests(list(jobs)) if jobs else ():
            jobs[run_id]._stop.set()

    def _renew(self) -> None:
        """Hold the runs trained here; one taken away (its lease expired) stops, as its result
        would overwrite the `interrupted` every replica already shows."""
        store, replica = self._queue.store, self._queue.replica
        for run_id, job in self._trained_here().items():
            if not store.renew_lease(run_id, replica, self._queue.lease) and not job.finished:
                summary = store.summaries([run_id]).get(run_id)
                if summary is None or summary.status == "interrupted":
                    log.warning("run %s: this replica lost its lease; stopping its training", run_id)
                    job._stop.set()

    def _follow_elsewhere(self) -> None:
        """Bring the jobs submitted here but claimed by another replica up to date from the store."""
        with self._lock:
            jobs = {
                rid: job for rid, job in self._jobs.items() if not job.finished and rid not in self._claimed
            }
        if not jobs:
            return
        for run_id, run in self._queue.store.summaries(list(jobs)).items():
            job = jobs[run_id]
            if run.status in FINISHED_STATUSES:
                job._update(status=run.status, run=run, error=run.error, prepared=None)
            elif run.status != job.status:
                job._update(status=run.status)

    def shutdown(self, *, cancel: bool = True, timeout: float | None = 30.0) -> None:
        """Stop taking work; with `cancel`, cancel the queued runs and ask the running ones to stop
        (with a shared queue: the runs submitted here that no replica has claimed yet)."""
        if self._queue is not None:
            self._shutdown_shared(cancel, timeout)
            return
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

    def _shutdown_shared(self, cancel: bool, timeout: float | None) -> None:
        with self._lock:
            self._closing = True
            waiting = [
                rid for rid, job in self._jobs.items() if not job.finished and rid not in self._claimed
            ]
            running = list(self._running.values())
            threads = [*self._threads.values()]
            self._lock.notify_all()
        if cancel:
            for run_id in waiting:
                try:
                    self._cancel_shared(run_id, running=False)
                except Exception:
                    log.exception("could not cancel run %s at shutdown", run_id)
            for job in running:
                job._stop.set()
        for thread in threads:
            thread.join(timeout)


def _logged(error: BaseException) -> str:
    log.error("a training failed", exc_info=error)
    return str(error) or type(error).__name__
