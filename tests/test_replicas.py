"""Several app replicas sharing one run queue: claims, leases and giving up on a silent replica.

Runs on SQLite always and on PostgreSQL when LSTM_DEMO_TEST_PG_URL is set (see conftest.py).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from test_store import _dead_pid, _sql

from lstm_demo import liveness
from lstm_demo.config import AppSettings
from lstm_demo.store import LEASE_EXPIRED, MetricPoint, Store, StoreError

ROOT = Path(__file__).parents[1]

# A replica's worker, reduced to its claims: waits for the start signal, then claims until the
# queue is empty and prints what it got.
CLAIMER = """
import json, random, sys, time
from pathlib import Path
from lstm_demo import liveness
from lstm_demo.config import AppSettings
from lstm_demo.store import Store

url, folder = sys.argv[1], Path(sys.argv[2])
replica = liveness.replica_id()
store = Store(url)
(folder / f"ready-{len(list(folder.iterdir()))}-{random.random()}").touch()
while not (folder / "go").exists():
    time.sleep(0.005)
claimed = []
while (run_id := store.claim_next(replica, None, 60)) is not None:
    claimed.append(run_id)
    time.sleep(random.random() / 200)
print(json.dumps({"replica": replica, "claimed": claimed}))
"""


def _queue(store: Store, n: int, device: str = "auto") -> list[str]:
    """`n` runs submitted to the shared queue, oldest first."""
    ids = [
        store.create_run(config={"train": {"device": device}}, preset="fast", dataset_id=None).id
        for _ in range(n)
    ]
    for run_id in ids:
        store.submit_run(run_id)
    return ids


def _claims(store_url: str) -> dict[str, str | None]:
    return dict(_sql(store_url, "SELECT id, claimed_by FROM runs"))


def test_two_processes_claim_each_queued_run_exactly_once(store: Store, store_url: str, tmp_path: Path):
    queued = _queue(store, 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, store_url, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()  # both start claiming at once
    results = [json.loads(c.communicate(timeout=120)[0]) for c in claimers]

    claimed = [run_id for r in results for run_id in r["claimed"]]
    assert sorted(claimed) == sorted(queued)  # every run, none twice
    owners = _claims(store_url)
    for result in results:
        assert all(owners[run_id] == result["replica"] for run_id in result["claimed"])
    assert {s.status for s in store.list_runs()} == {"running"}


def test_a_claim_takes_the_oldest_queued_run_and_holds_it(store: Store, store_url: str) -> None:
    first, second = _queue(store, 2)
    before = datetime.now(timezone.utc)
    assert store.claim_next("replica-a", None, 60) == first
    assert store.claim_next("replica-b", None, 60) == second
    assert store.claim_next("replica-a", None, 60) is None

    run = store.get_run(first).summary
    assert run.status == "running" and run.started >= before
    (lease,) = _sql(store_url, "SELECT lease_until FROM runs WHERE id = :id", id=first)[0]
    lease = lease if isinstance(lease, datetime) else datetime.fromisoformat(lease)
    lease = lease.replace(tzinfo=lease.tzinfo or timezone.utc)
    assert timedelta(seconds=50) < lease - before < timedelta(seconds=70)
    assert _claims(store_url) == {first: "replica-a", second: "replica-b"}


def test_only_submitted_runs_are_claimed_and_a_cancel_takes_a_waiting_run_off_the_queue(
    store: Store,
) -> None:
    # the command line's run: queued by its own process, which trains it; never any replica's
    mine = store.create_run(config={}, preset="fast", dataset_id=None).id
    first, second, third = _queue(store, 3)
    assert [store.place_in_queue(r) for r in (mine, first, second, third)] == [None, 1, 2, 3]
    assert store.request_cancel(second) == "queued"
    assert store.place_in_queue(third) == 2
    assert store.claim_next("replica-a", None, 60) == first
    assert store.claim_next("replica-a", None, 60) == third
    assert store.claim_next("replica-a", None, 60) is None
    assert store.get_run(second).summary.status == "queued"  # the canceller records the end
    assert store.cancel_requests([first, second, third]) == {second}


def test_a_cancel_of_a_running_run_is_a_request_its_replica_reads(store: Store) -> None:
    running, waiting = _queue(store, 2)
    store.claim_next("replica-a", None, 60)
    assert store.request_cancel(waiting, running=False) == "queued"  # a shutdown takes the waiting only
    assert store.request_cancel(running, running=False) == "running"
    assert store.cancel_requests([running]) == set()
    assert store.request_cancel(running) == "running"
    assert store.cancel_requests([running, waiting]) == {running, waiting}
    store.finish_run(running, status="cancelled")
    assert store.request_cancel(running) == "cancelled"
    with pytest.raises(StoreError, match="no run"):
        store.request_cancel("nosuchrun")
    with pytest.raises(StoreError, match="only a queued run"):
        store.submit_run(running)


def test_a_submitted_run_outlives_its_replica_and_an_unsubmitted_one_does_not(
    store: Store, store_url: str
) -> None:
    submitted = _queue(store, 1)[0]
    unsubmitted = store.create_run(config={}, preset="fast", dataset_id=None).id
    _sql(store_url, "UPDATE runs SET pid = :dead", dead=_dead_pid())  # their creator is gone
    assert store.expire_leases() == [unsubmitted]
    assert store.claim_next("replica-b", None, 60) == submitted  # another replica trains it
    assert {r.id: r.status for r in store.list_runs()} == {
        submitted: "running",
        unsubmitted: "interrupted",
    }


def test_a_claim_skips_a_run_another_transaction_holds(store: Store, store_url: str) -> None:
    if store.backend == "sqlite":
        pytest.skip("SQLite has no row locks: its one writer at a time makes claims wait in turn")
    import psycopg  # the postgres extra, there whenever a PostgreSQL URL is

    first, second = _queue(store, 2)
    conninfo = make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)
    claimed: list[str | None] = []
    with psycopg.connect(conninfo) as other:  # a replica in the middle of claiming `first`
        other.execute("SELECT id FROM runs WHERE id = %s FOR UPDATE", (first,))
        claim = threading.Thread(target=lambda: claimed.append(store.claim_next("replica-b", None, 60)))
        claim.start()
        claim.join(timeout=30)  # a claim that waited for the lock would still be waiting here
        other.rollback()
    claim.join()
    assert claimed == [second]
    assert store.claim_next("replica-b", None, 60) == first


@pytest.mark.parametrize(
    ("asked", "devices", "claimed"),
    [
        ("auto", ["cpu"], True),
        ("cpu", ["cpu"], True),
        ("cpu", ["cuda:0"], False),
        ("cuda", ["cpu"], False),
        ("cuda", ["cpu", "cuda:1"], True),
        ("cuda:1", ["cuda:0"], False),
        ("cuda:1", ["cuda:0", "cuda:1"], True),
        ("mps", ["cpu"], False),
        ("cuda", None, True),  # a replica that names no devices takes every run
        (None, ["cpu"], True),  # a configuration without a device means auto
    ],
)
def test_a_replica_claims_only_runs_its_devices_can_train(
    store: Store, asked: str | None, devices: list[str] | None, claimed: bool
) -> None:
    config = {"train": {"device": asked}} if asked else {"train": {}}
    run = store.create_run(config=config, preset="fast", dataset_id=None)
    store.submit_run(run.id)
    assert store.claim_next("replica-a", devices, 60) == (run.id if claimed else None)
    assert store.get_run(run.id).summary.status == ("running" if claimed else "queued")


def test_an_expired_lease_interrupts_the_run_and_a_renewed_one_does_not(store: Store, store_url: str) -> None:
    silent, renewed = _queue(store, 2)
    assert store.claim_next("replica-a", None, 60) == silent
    assert store.claim_next("replica-b", None, 60) == renewed
    store.add_metric(silent, MetricPoint(epoch=1, step=5, kind="step", train_loss=0.7))
    # a lease, not the process, decides: replica-b's training process looks dead from here
    _sql(store_url, "UPDATE runs SET pid = :dead WHERE id = :id", dead=_dead_pid(), id=renewed)

    assert store.renew_lease(renewed, "replica-b", 600)
    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    assert store.expire_leases(now=later) == [silent]
    assert store.expire_leases(now=later) == []

    gone = store.get_run(silent)
    assert (gone.summary.status, gone.summary.error) == ("interrupted", LEASE_EXPIRED)
    assert (
        gone.summary.started <= gone.summary.finished <= datetime.now(timezone.utc)
    )  # its last sign of life
    assert len(gone.curve) == 1  # its curve is kept
    assert store.get_run(renewed).summary.status == "running"
    assert not store.renew_lease(silent, "replica-a", 60)  # taken from it: its trainer stops


def test_a_lease_ends_by_the_database_clock(store: Store) -> None:
    (run,) = _queue(store, 1)
    store.claim_next("replica-a", None, 0.05)
    time.sleep(0.3)
    assert store.expire_leases() == [run]


def test_only_the_claiming_replica_renews_and_only_while_running(store: Store) -> None:
    (run,) = _queue(store, 1)
    assert not store.renew_lease(run, "replica-a", 60)  # queued: nobody holds it yet
    store.claim_next("replica-a", None, 60)
    assert not store.renew_lease(run, "replica-b", 60)
    assert store.renew_lease(run, "replica-a", 60)
    store.finish_run(run, status="completed")
    assert not store.renew_lease(run, "replica-a", 60)
    far = datetime.now(timezone.utc) + timedelta(days=1)
    assert store.expire_leases(now=far) == [] and store.get_run(run).summary.status == "completed"


def test_a_claimed_run_given_back_waits_for_the_next_claim(store: Store) -> None:
    (run,) = _queue(store, 1)
    store.claim_next("replica-a", None, 60)
    assert not store.release_run(run, "replica-b")  # not its claim
    assert store.release_run(run, "replica-a")
    summary = store.get_run(run).summary
    assert (summary.status, summary.started) == ("queued", None)
    assert store.claim_next("replica-b", None, 60) == run


@pytest.mark.parametrize("seconds", [0, -1.0, math.nan, math.inf, "60"])
def test_a_lease_must_last_a_positive_finite_time(store: Store, seconds: object) -> None:
    (run,) = _queue(store, 1)
    with pytest.raises(StoreError, match="lease"):
        store.claim_next("replica-a", None, seconds)
    assert store.get_run(run).summary.status == "queued"
    with pytest.raises(StoreError, match="lease"):
        store.renew_lease(run, "replica-a", seconds)


def test_replica_ids_are_unique_and_name_their_host_and_process() -> None:
    first, second = liveness.replica_id(), liveness.replica_id()
    assert first != second
    host, pid, _ = first.rsplit(":", 2)
    assert host == liveness.HOST[:200] and int(pid) == os.getpid() and len(first) <= 255


def test_the_compose_file_points_every_replica_at_one_database_and_one_home() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    apps = {name: s for name, s in compose["services"].items() if name.startswith("app")}
    assert len(apps) >= 2

    def settings(service: dict) -> AppSettings:  # ${VAR:-default} as compose reads it with VAR unset
        env = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in service["environment"].items()}
        return AppSettings.from_env(env)

    homes = {(s.home, s.db_url) for s in map(settings, apps.values())}
    ((home, db_url),) = homes  # one database and one home for all
    url = make_url(db_url)
    assert url.get_backend_name() == "postgresql" and url.host in compose["services"]
    mounts = {v for s in apps.values() for v in s["volumes"] if v.endswith(f":{home}")}
    assert len(mounts) == 1 and mounts.pop().split(":")[0] in compose["volumes"]  # a shared named volume
    ports = [p.split(":")[0] for s in apps.values() for p in s["ports"]]
    assert len(set(ports)) == len(ports)


# One app replica: a `Service` of its own, as `lstm-demo serve` holds one, on the shared database and
# home. It counts the trainings it launches, waits for the start signal, submits its runs, waits
# until every run of both replicas has ended, then predicts each and prints what it saw.
REPLICA = """
import json, random, sys, time
from pathlib import Path
from lstm_demo import job
from lstm_demo.config import AppSettings
from lstm_demo.service import Service

home, url, csv, folder, mine, total = sys.argv[1:7]
folder, launched, launch = Path(folder), [], job.launch
job.launch = lambda spec, *a, **k: launched.append(Path(spec).parent.name[1:-4]) or launch(spec, *a, **k)
env = {"LSTM_DEMO_HOME": home, "LSTM_DEMO_DB_URL": url, "LSTM_DEMO_DEVICE": "cpu"}
svc = Service(AppSettings.from_env(env))
tiny = {"model__embedding_dim": 8, "model__hidden_size": 8, "train__epochs": 1}
(folder / f"ready-{random.random()}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)
submitted = [svc.submit(svc.prepare(csv, preset_name="fast", overrides=tiny)).run_id for _ in range(int(mine))]
deadline = time.monotonic() + 300
while True:
    runs = svc.runs()
    if len(runs) == int(total) and all(r.status not in ("queued", "running") for r in runs):
        break
    assert time.monotonic() < deadline, [(r.id, r.status) for r in runs]
    time.sleep(0.1)
predicted = {r.id: svc.predict(r.id, ["great fun"])[0].label for r in runs}
svc.shutdown()
print(json.dumps({"submitted": submitted, "launched": launched, "predicted": predicted}))
"""


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("LSTM_DEMO_TEST_PG_URL"), reason="needs LSTM_DEMO_TEST_PG_URL")
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_app_processes_train_each_run_once_and_both_predict_every_run(store_url: str, tmp_path: Path):
    from helpers import LABELS, write_toy_csv

    csv = write_toy_csv(tmp_path / "toy.csv", n=40)
    home, signals = tmp_path / "home", tmp_path / "signals"
    signals.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [str(home), store_url, str(csv), str(signals), "3", "6"]
    replicas = [
        subprocess.Popen([sys.executable, "-c", REPLICA, *args], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(signals.glob("ready-*"))) < 2:
            assert time.monotonic() < deadline and all(r.poll() is None for r in replicas)
            time.sleep(0.05)
        (signals / "go").touch()  # both submit at once
        results = [json.loads(r.communicate(timeout=300)[0]) for r in replicas]
    finally:
        for r in replicas:
            r.kill()
    assert all(r.returncode == 0 for r in replicas)

    runs = sorted(run_id for r in results for run_id in r["submitted"])
    assert len(runs) == 6
    assert sorted(run_id for r in results for run_id in r["launched"]) == runs  # each trained once
    with Store(store_url) as store:
        assert {s.id: s.status for s in store.list_runs()} == dict.fromkeys(runs, "completed")
        for run_id in runs:
            assert len([p for p in store.get_run(run_id).curve if p.kind == "epoch"]) == 1
    claimers = {owner for _, owner in _sql(store_url, "SELECT id, claimed_by FROM runs")}
    assert len(claimers) <= 2 and None not in claimers  # every run claimed, by one of the replicas
    for result in results:  # each replica predicts every run, whichever trained it
        assert sorted(result["predicted"]) == runs and set(result["predicted"].values()) <= set(LABELS)
