"""One training as a process of its own: `python -m lstm_demo.job SPEC`, or one per rank under torchrun.

A training that exhausts memory then takes down only itself, and predictions no longer share its
interpreter. The app writes a job folder (`write_spec`: the run's prepared tables as JSON and a spec
naming the configuration and the split), `launch`es the child in its own process group and later
`reap`s it; `execute` does all three for the worker. With replicas the job folder is written when
the run is submitted, under the shared `LSTM_DEMO_HOME` (`shared_queue`), so whichever replica
claims the run launches the child from it. The database is the channel: the child records
its curve and its end in the run store as an in-process training does, so the Runs tab reads it the
same way, and its reports also come as JSON lines on its stdout for the Train tab's live view.
SIGTERM asks the child to stop after its current step (the run ends `cancelled`); a child that dies
without recording an end (SIGKILL, the kernel's OOM killer, a crash) leaves its run active until
`reap` marks it `failed` with the reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import liveness
from .config import LIMIT_TABLE, AppSettings, RunConfig
from .data import Table
from .names import ACTIVE_STATUSES
from .store import LEASE_SECONDS
from .train import FINAL, Progress

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .service import PreparedRun, TrainEvent
    from .store import RunSummary, Store

log = logging.getLogger(__name__)

SPEC = "spec.json"
LOG = "job.log"  # the child's output (but its reports); its tail reaches the server log when it fails
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL when a training is cancelled
# between `launch(progress=True)` and the child only (not a setting): rank 0 prints its reports
PROGRESS = "LSTM_DEMO_JOB_PROGRESS"
APP_GONE = "interrupted: the app that started the training ended (killed or crashed) while it ran"
_TABLES = ("table", "val_table", "test_table")  # the PreparedRun fields the child reads back


def job_dir(runs_dir: Path, run_id: str) -> Path:
    """Beside the run's model directory, which must not exist before the model is saved; `doctor`
    leaves a `.<id>.` entry alone while its run is active and removes it after."""
    return Path(runs_dir) / f".{run_id}.job"


def write_spec(prepared: PreparedRun, runs_dir: Path) -> Path:
    """The job folder of a prepared run: its tables as parsed (so the child reads exactly the rows
    the app validated, without parsing the upload again) and the spec; returns the spec's path."""
    folder = job_dir(runs_dir, prepared.run_id)
    folder.mkdir(mode=0o700, exist_ok=True)  # the uploaded texts: this user's only
    (folder / "input").mkdir(mode=0o700, exist_ok=True)
    tables = {}
    for name in _TABLES:
        table = getattr(prepared, name)
        if table is not None:
            tables[name] = f"input/{name}.json"
            (folder / tables[name]).write_text(json.dumps(asdict(table), ensure_ascii=False))
    spec = {
        "run_id": prepared.run_id,
        "config": prepared.config.to_dict(),
        "train_idx": prepared.train_idx,
        "val_idx": prepared.val_idx,
        "notes": prepared.notes,
        "device": prepared.device,
        "tables": tables,
    }
    path = folder / SPEC
    path.write_text(json.dumps(spec))
    return path


def read_spec(path: Path) -> PreparedRun:
    """The prepared run a spec describes, as the app held it."""
    from .service import PreparedRun  # the child's only way in; the app imports this module first

    path = Path(path)
    spec = json.loads(path.read_text())
    tables = {name: _table(path.parent / file) for name, file in spec["tables"].items()}
    return PreparedRun(
        run_id=spec["run_id"],
        config=RunConfig.from_dict(spec["config"]),
        train_idx=spec["train_idx"],
        val_idx=spec["val_idx"],
        notes=spec["notes"],
        device=spec["device"],
        **tables,
    )


def _table(path: Path) -> Table:
    values = json.loads(path.read_text())
    return Table(**{f.name: _tuples(values[f.name]) for f in fields(Table)})


def _tuples(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def environment(settings: AppSettings) -> dict[str, str]:
    """The child's environment: this one, with the app's settings as variables (they may have been
    built in code rather than read from the environment) and this package first on the path."""
    env = dict(os.environ)
    env |= {
        "LSTM_DEMO_HOME": str(settings.home),
        "LSTM_DEMO_DB_URL": settings.db_url,  # by the environment, never a file: it may hold a password
        "LSTM_DEMO_DEVICE": settings.device,
        "LSTM_DEMO_TRAINING_NICE": str(settings.training_nice),
    }
    env |= {variable: str(getattr(settings.limits, name)) for name, (_, variable, _) in LIMIT_TABLE.items()}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def command(spec: Path, nproc: int = 1) -> list[str]:
    """One process, or torchrun's `nproc` ranks on this machine (several machines: see the README)."""
    if nproc == 1:
        return [sys.executable, "-m", "lstm_demo.job", str(spec)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return [*torchrun, "-m", "lstm_demo.job", str(spec)]


def launch(
    spec: Path, nproc: int = 1, *, settings: AppSettings | None = None, progress: bool = False
) -> subprocess.Popen:
    """Start the training of a written spec in its own process group (a cancel signals the group, and
    a Ctrl-C in the app's terminal does not reach it); its output goes to the job folder's log. With
    `progress`, its reports come on its stdout instead, for `reports` to read."""
    spec = Path(spec)
    env = environment(settings) if settings is not None else dict(os.environ)
    if progress:
        env[PROGRESS] = "1"
    with open(spec.parent / LOG, "ab") as log_file:
        return subprocess.Popen(
            command(spec, nproc),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if progress else log_file,
            stderr=log_file,
            env=env,
            start_new_session=True,
        )


def reports(popen: subprocess.Popen) -> Iterator[Progress]:
    """The child's progress reports (without results: the model stays in the child), as it prints
    them, until it closes its output."""
    for line in popen.stdout:
        try:
            values = json.loads(line)
            yield Progress(**values)
        except (ValueError, TypeError):  # a library printed something: not ours to read
            log.debug("training output: %r", line)


def _reported(progress: Progress) -> bool:
    """Print a report for the app; False when the app is gone (the pipe it read closed with it)."""
    try:
        print(_report_line(progress), flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return False
    return True


def _report_line(progress: Progress) -> str:
    return json.dumps({f.name: getattr(progress, f.name) for f in fields(progress) if f.name != "result"})


def execute(
    store: Store, settings: AppSettings, prepared: PreparedRun, should_stop: Callable[[], bool] | None = None
) -> Iterator[TrainEvent]:
    """`Service.execute` with the training in a child process (`train.nproc` ranks under torchrun):
    the same events, the last holding the run; `should_stop` becomes SIGTERM, then SIGKILL. A child
    that ends without its final report raises, as a training in this process would have: the
    reason when it was killed, the child's own error (in the run and the server log) when it broke."""
    from .service import ServiceError, TrainEvent

    run_id = prepared.run_id
    spec = job_dir(settings.runs_dir, run_id) / SPEC
    if not spec.exists():  # a run from the shared queue has its spec written when it was submitted
        spec = write_spec(prepared, settings.runs_dir)
    popen = launch(spec, prepared.config.train.nproc, settings=settings, progress=True)
    cancelled = threading.Event()
    if should_stop is not None:
        threading.Thread(target=_cancel_when, args=(popen, should_stop, cancelled), daemon=True).start()
    last = None
    try:
        for last in reports(popen):
            if last.kind not in FINAL:
                yield TrainEvent(run_id, last)
    except BaseException:  # closed early (the worker shutting down) or broken: the child goes too
        cancelled.set()
        stop(popen)
        reap(popen, run_id, store, cancelled=True)
        raise
    run = reap(popen, run_id, store, cancelled=cancelled.is_set())
    if (last is None or last.kind not in FINAL) and run.status == "failed":
        if popen.returncode < 0:  # killed: the reason is `ended`'s, worded for the user
            raise ServiceError(run.error)
        raise RuntimeError(f"the training process failed: {run.error}")
    yield TrainEvent(run_id, _final(last, run, prepared), run)


@dataclass(frozen=True)
class SharedQueue:
    """The run store as the one queue of every replica, as the worker uses it (`shared_queue`)."""

    store: Any  # the replica's `Store`
    replica: str  # this replica's name in the store's claims (`liveness.replica_id`)
    devices: tuple[str, ...]  # the lanes this replica always runs, claiming what they can train
    enqueue: Callable[[Any], None]  # writes a prepared run's job folder, then submits its row
    load: Callable[[str], Any]  # the prepared run of a claimed id, read back from its job folder
    discard: Callable[[str], None]  # removes a run's job folder
    poll: float = 1.0  # seconds between two looks at the store when idle
    lease: float = LEASE_SECONDS  # seconds a claim holds a run without a renewal
    renew_every: float = 20.0  # seconds between lease renewals (well inside `lease`)
    expire_every: float = 30.0  # seconds between two sweeps for runs whose replica went silent


def shared_queue(store: Store, settings: AppSettings) -> SharedQueue:
    """The run store as the queue of every replica on it: a submitted run's job folder goes under the
    shared `LSTM_DEMO_HOME`, so whichever replica claims the run reads exactly what was submitted."""
    from .train import resolve_device

    try:
        device = str(resolve_device(settings.device))
        devices = ("cuda:0" if device == "cuda" else device,)  # `auto` and `cuda:0` share one lane
    except (ValueError, RuntimeError):  # a device this machine lacks: `prepare` says so per run
        devices = ()
    runs_dir = settings.runs_dir

    def enqueue(prepared: PreparedRun) -> None:
        write_spec(prepared, runs_dir)
        store.submit_run(prepared.run_id)

    return SharedQueue(
        store=store,
        replica=liveness.replica_id(),
        devices=devices,
        enqueue=enqueue,
        load=lambda run_id: read_spec(job_dir(runs_dir, run_id) / SPEC),
        discard=lambda run_id: shutil.rmtree(job_dir(runs_dir, run_id), ignore_errors=True),
    )


def _cancel_when(
    popen: subprocess.Popen, should_stop: Callable[[], bool], cancelled: threading.Event
) -> None:
    while popen.poll() is None:
        if should_stop():
            cancelled.set()
            stop(popen)
            return
        time.sleep(0.2)


def _final(last: Progress | None, run: RunSummary, prepared: PreparedRun) -> Progress:
    """The child's final report, or a cancelled one when it was stopped before printing its own."""
    if last is not None and last.kind in FINAL:
        return last
    if last is None:
        last = Progress("start", 0, prepared.config.train.epochs, 0, 0, 0.0)
    return replace(last, kind=run.status, message=run.status, eta_seconds=None)


def stop(popen: subprocess.Popen, grace: float = STOP_GRACE) -> int:
    """Cancel: SIGTERM to the process group (the run ends `cancelled` after its current step), then
    SIGKILL if it has not ended within `grace` seconds; returns the exit status."""
    _signal(popen, signal.SIGTERM)
    try:
        return popen.wait(grace)
    except subprocess.TimeoutExpired:
        _signal(popen, signal.SIGKILL)
        return popen.wait()


def _signal(popen: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass  # it ended already


def reap(popen: subprocess.Popen, run_id: str, store: Store, *, cancelled: bool = False) -> RunSummary:
    """Wait for the child, mark its run when the child could not (`cancelled`: the app asked it to
    stop), log its output when it failed, and remove its job folder; returns the run."""
    if popen.stdout is not None:  # unread reports: the child may wait on a full pipe
        popen.stdout.read()
    code = popen.wait()
    folder = Path(popen.args[-1]).parent  # the spec is the command's last argument
    run = store.get_run(run_id).summary
    if run.status in ACTIVE_STATUSES:
        status = "cancelled" if cancelled else "failed"
        run = store.finish_run(run_id, status=status, error=None if cancelled else ended(code))
    if code != 0 and not cancelled:
        log.error("training %s: %s; its output:\n%s", run_id, ended(code), _tail(folder / LOG))
    shutil.rmtree(folder, ignore_errors=True)
    return run


def ended(code: int) -> str:
    """How a training process ended without recording a result, in words a user can act on."""
    if code == -signal.SIGKILL:
        return (
            "the training process was killed, most often because the machine ran out of memory: "
            "try a smaller model, batch or vocabulary"
        )
    if code < 0:
        return f"the training process crashed ({signal.Signals(-code).name})"
    return f"the training process stopped (exit status {code}) before recording a result"


def _tail(path: Path, size: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return "(no output)"


# --------------------------------------------------------------------------- the child


def main(argv: list[str] | None = None) -> int:
    """Train the run a spec describes; exit status 0 when it completed or was cancelled."""
    parser = argparse.ArgumentParser(prog="python -m lstm_demo.job", description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    _exit_with_launcher()

    from . import distributed, execution
    from .store import Store
    from .train import resolve_device

    prepared = read_spec(args.spec)
    settings = AppSettings.from_env()
    _lower_priority(settings.training_nice)
    printing = os.environ.get(PROGRESS) == "1"
    group = distributed.init(resolve_device(prepared.device))
    try:
        if not group.is_main:  # only rank 0 writes the store and the model directory
            for _ in execution.train_rank(prepared, group.device, cancel.is_set, group):
                pass
            return 0
        store = Store(settings.db_url)
        try:
            events = execution.execute_run(
                store, settings, prepared, cancel.is_set, device=group.device, group=group
            )
            last = None
            for last in events:
                if printing and not _reported(last.progress):
                    try:
                        events.throw(execution.Interrupted(APP_GONE))
                    except execution.Interrupted:
                        return 1
        finally:
            store.close()
        return 0 if last is not None and last.run.status in ("completed", "cancelled") else 1
    finally:
        group.close()


def _lower_priority(nice: int) -> None:
    """The app's requests first; this process takes what the cores have left. Where Linux groups
    processes by session for scheduling (autogroup), this process started a session of its own, and
    only its group's nice weighs against the app's: both are lowered."""
    os.nice(nice)
    try:
        Path("/proc/self/autogroup").write_text(str(nice))
    except OSError:  # no autogroup (another system, or it is off): the process's nice is the one that counts
        pass


def _exit_with_launcher() -> None:
    """End when the process that started this one is gone (the app, or torchrun, killed): nobody is
    left to reap it or to cancel it."""
    launcher = os.getppid()

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
