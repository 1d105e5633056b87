"""Training in a process of its own: it records its run as an in-process training does, a cancel ends
it `cancelled`, and a child killed mid-epoch leaves its run marked and the next training running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import LABELS, write_toy_csv

from lstm_demo import job
from lstm_demo.config import AppSettings
from lstm_demo.service import Service

TINY = {"model__embedding_dim": 8, "model__hidden_size": 8, "train__device": "cpu"}
# long enough to be caught mid-epoch: many small steps, each reported and stored
LONG = {**TINY, "train__epochs": 200, "train__batch_size": 4, "train__log_every": 1}


@pytest.fixture
def app(tmp_path: Path):
    settings = AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home")})
    svc = Service(settings)
    csv = write_toy_csv(tmp_path / "train.csv", n=80, seed=0)
    yield svc, csv
    svc.close()


def _launch(svc: Service, csv: Path, overrides: dict, nproc: int = 1):
    prepared = svc.prepare(csv, preset_name="fast", overrides=overrides)
    spec = job.write_spec(prepared, svc.settings.runs_dir)
    return prepared.run_id, job.launch(spec, nproc, settings=svc.settings)


def _wait_for_a_step(svc: Service, run_id: str, timeout: float = 120.0) -> None:
    """Until the child has stored a step of its first epoch (it is then mid-epoch)."""
    deadline = time.monotonic() + timeout
    while not svc.curves([run_id])[run_id]:
        assert time.monotonic() < deadline, "the child stored no progress"
        time.sleep(0.05)
    assert svc.run(run_id).summary.status == "running"


def test_a_spec_gives_the_child_the_run_the_app_prepared(app):
    svc, csv = app
    prepared = svc.prepare(csv, preset_name="fast", overrides=TINY)
    back = job.read_spec(job.write_spec(prepared, svc.settings.runs_dir))
    assert back == prepared


@pytest.mark.slow  # two children, each importing torch: about 15 s on an idle 2-core machine
def test_a_child_killed_mid_epoch_leaves_its_run_failed_and_the_next_one_trains(app):
    svc, csv = app
    killed, popen = _launch(svc, csv, LONG)
    _wait_for_a_step(svc, killed)
    # it trains below the app's priority, so the app's predictions are not kept waiting for a core
    nice = os.getpriority(os.PRIO_PROCESS, popen.pid) - os.getpriority(os.PRIO_PROCESS, 0)
    assert nice == min(svc.settings.training_nice, 19 - os.getpriority(os.PRIO_PROCESS, 0))
    group = Path(f"/proc/{popen.pid}/autogroup")  # Linux schedules a session as one group: its nice too
    if Path("/proc/sys/kernel/sched_autogroup_enabled").exists() and group.exists():
        assert group.read_text().split()[-1] == str(svc.settings.training_nice)
    os.killpg(popen.pid, signal.SIGKILL)
    run = job.reap(popen, killed, svc.store)
    assert run.status == "failed" and "killed" in run.error and "memory" in run.error
    assert not job.job_dir(svc.settings.runs_dir, killed).exists()

    after, popen = _launch(svc, csv, {**TINY, "train__epochs": 8})
    run = job.reap(popen, after, svc.store)
    assert popen.returncode == 0 and run.status == "completed"
    assert svc.run(after).curve  # the child's progress reached the store
    assert svc.predict(after, ["great wonderful fun"])[0].label == LABELS[1]


@pytest.mark.slow
def test_sigterm_cancels_the_run_cleanly(app):
    svc, csv = app
    run_id, popen = _launch(svc, csv, LONG)
    _wait_for_a_step(svc, run_id)
    assert job.stop(popen) == 0  # it stopped on the flag, not by the SIGKILL after the grace period
    run = job.reap(popen, run_id, svc.store, cancelled=True)
    assert run.status == "cancelled" and run.error is None


@pytest.mark.slow
def test_a_cancel_asked_of_a_child_training_ends_its_run_cancelled(app):
    svc, csv = app
    prepared = svc.prepare(csv, preset_name="fast", overrides=LONG)
    asked = threading.Event()
    events = []
    for event in job.execute(svc.store, svc.settings, prepared, asked.is_set):
        events.append(event)
        if event.progress.kind == "step":  # cancel once it reports its first step
            asked.set()
    assert any(e.progress.kind == "step" for e in events[:-1])
    assert events[-1].progress.kind == "cancelled" and events[-1].run.status == "cancelled"


@pytest.mark.slow
def test_two_ranks_under_torchrun_train_one_ordinary_run(app):
    svc, csv = app
    prepared = svc.prepare(csv, preset_name="fast", overrides={**TINY, "train__epochs": 6, "train__nproc": 2})
    events = list(job.execute(svc.store, svc.settings, prepared))
    assert [e.progress.kind for e in events if e.progress.kind == "epoch"] == [
        "epoch"
    ] * 6  # live, from rank 0
    run_id, run = prepared.run_id, events[-1].run
    assert events[-1].progress.kind == "done" and run.status == "completed"
    detail = svc.run(run_id)
    assert detail.metrics["world_size"] == 2
    assert detail.curve  # rank 0 stored the curve
    # the saved model is an ordinary one: this process predicts with it, nothing distributed
    assert svc.predict(run_id, ["great wonderful fun"])[0].label == LABELS[1]


@pytest.mark.slow
def test_the_command_line_trains_across_two_processes(tmp_path):
    csv = write_toy_csv(tmp_path / "train.csv", n=80)
    env = {**os.environ, "LSTM_DEMO_HOME": str(tmp_path / "home")}
    args = ["train", str(csv), "--nproc", "2", "--preset", "fast", "--epochs", "3", "--json"]
    args += ["--set", "model__hidden_size=8", "--set", "model__embedding_dim=8", "--device", "cpu"]
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_demo.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "completed" and out["world_size"] == 2 and out["test_accuracy"] is None


def _ran(svc: Service, csv: Path, code: str):
    """A recorded `running` run whose process is a bare Python running `code` (no torch: fast)."""
    prepared = svc.prepare(csv, preset_name="fast", overrides=TINY)
    spec = job.write_spec(prepared, svc.settings.runs_dir)
    svc.store.start_run(prepared.run_id, device="cpu")
    popen = subprocess.Popen([sys.executable, "-c", code, str(spec)], start_new_session=True)
    return prepared.run_id, popen


def test_reap_marks_a_run_whose_process_was_killed_and_removes_its_job_folder(app, caplog):
    svc, csv = app
    run_id, popen = _ran(
        svc, csv, "import os, signal; print('last words'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    run = job.reap(popen, run_id, svc.store)
    assert run.status == "failed" and run.error == job.ended(-signal.SIGKILL)
    assert not job.job_dir(svc.settings.runs_dir, run_id).exists()
    assert "killed" in caplog.text  # the server log says what happened


def test_reap_leaves_a_run_that_recorded_its_own_end(app):
    svc, csv = app
    run_id, popen = _ran(svc, csv, "pass")
    svc.store.finish_run(run_id, status="cancelled")  # as a child that stopped on SIGTERM records it
    assert job.reap(popen, run_id, svc.store).status == "cancelled"


def test_reap_of_a_cancelled_child_that_had_to_be_killed_says_cancelled(app):
    svc, csv = app
    run_id, popen = _ran(svc, csv, "import time; time.sleep(60)")
    assert job.stop(popen, grace=0.5) == -signal.SIGTERM  # a bare Python ends on SIGTERM
    run = job.reap(popen, run_id, svc.store, cancelled=True)
    assert run.status == "cancelled"


@pytest.mark.parametrize(
    "code, words",
    [(-signal.SIGKILL, "ran out of memory"), (-signal.SIGSEGV, "crashed (SIGSEGV)"), (1, "exit status 1")],
)
def test_a_child_that_ended_without_a_result_is_described_plainly(code, words):
    assert words in job.ended(code)


def test_a_training_across_processes_is_not_run_in_the_apps_process(app):
    svc, csv = app
    prepared = svc.prepare(csv, preset_name="fast", overrides={**TINY, "train__nproc": 2})
    with pytest.raises(ValueError, match="torchrun"):
        list(svc.execute(prepared))
    assert svc.run(prepared.run_id).summary.status == "failed"


def test_more_processes_than_the_limit_are_refused(app):
    svc, csv = app
    too_many = svc.settings.limits.nproc + 1
    with pytest.raises(ValueError, match="LSTM_DEMO_MAX_NPROC"):
        svc.settings.limits.check_config(
            svc.prepare(csv, preset_name="fast", overrides={"train__nproc": too_many}).config
        )


@pytest.mark.parametrize(
    "training, nproc, in_child",
    [("process", 1, True), ("thread", 1, False), ("thread", 2, True)],
)
def test_the_queue_trains_in_a_child_unless_told_to_stay_in_the_app(
    tmp_path, monkeypatch, training, nproc, in_child
):
    settings = AppSettings.from_env(
        {"LSTM_DEMO_HOME": str(tmp_path / "home"), "LSTM_DEMO_TRAINING": training}
    )
    svc = Service(settings)
    children, here = [], []

    def child(store, settings, prepared, should_stop=None):
        children.append(prepared.run_id)
        return iter(())  # which door was taken is the question, not the training

    monkeypatch.setattr(job, "execute", child)
    monkeypatch.setattr(
        svc, "execute", lambda prepared, should_stop=None: here.append(prepared.run_id) or iter(())
    )
    csv = write_toy_csv(tmp_path / "train.csv", n=40)
    prepared = svc.prepare(csv, preset_name="fast", overrides={**TINY, "train__nproc": nproc})
    list(svc.follow(svc.submit(prepared).run_id, interval=0.05))
    assert (children, here) == (([prepared.run_id], []) if in_child else ([], [prepared.run_id]))
    svc.shutdown()


def test_more_processes_than_gpus_are_refused_before_a_run_is_recorded(app, monkeypatch):
    svc, csv = app
    import lstm_demo.service as service_module

    monkeypatch.setattr(
        service_module, "resolve_device", lambda name="auto": service_module.torch.device("cuda")
    )
    monkeypatch.setattr(service_module.torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="nproc is 2, but this machine has 1 GPU"):
        svc.prepare(csv, preset_name="fast", overrides={"train__device": "cuda", "train__nproc": 2})
    assert svc.runs() == []


def _children_running(module: str) -> list[int]:
    """Pids of this process's children whose command line runs `module` (Linux's /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and module.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_the_queue_survives_a_training_child_killed_mid_epoch(tmp_path):
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home")}))  # children: the default
    csv = write_toy_csv(tmp_path / "train.csv", n=80)
    try:
        killed = svc.submit(svc.prepare(csv, preset_name="fast", overrides=LONG))
        after = svc.submit(svc.prepare(csv, preset_name="fast", overrides={**TINY, "train__epochs": 4}))
        for state in svc.follow(killed.run_id, interval=0.05):
            if state.progress is not None and state.progress.kind == "step":
                (pid,) = _children_running("lstm_demo.job")
                os.kill(pid, signal.SIGKILL)
                break
        list(svc.follow(killed.run_id, interval=0.05))
        assert killed.status == "failed" and "killed" in killed.error
        assert svc.run(killed.run_id).summary.status == "failed"
        list(svc.follow(after.run_id, interval=0.05))  # the next one in line trained
        assert after.status == "completed" and svc.predict(after.run_id, ["great fun"])[0].label == LABELS[1]
    finally:
        svc.shutdown()
