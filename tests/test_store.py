"""The run database on a real SQLite file (and PostgreSQL when LSTM_DEMO_TEST_PG_URL is set)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from lstm_demo import liveness
from lstm_demo.store import MetricPoint, Store, StoreError
from lstm_demo.store.engine import make_engine, migrate
from lstm_demo.store.models import Base

METRICS = {
    "val": {
        "accuracy": 0.8,
        "macro_f1": 0.75,
        "per_class": {"pos": {"f1": 0.8}},
        "confusion": [[4, 1], [1, 4]],
    },
    "test": {
        "accuracy": 0.7,
        "macro_f1": 0.65,
        "per_class": {"pos": {"f1": 0.7}},
        "confusion": [[3, 2], [1, 4]],
    },
}


def _sql(url: str, statement: str, **params: object) -> list[tuple]:
    """Run raw SQL beside the store (through its own engine settings), as another program would."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _dataset(store: Store, fingerprint: str = "a" * 64, name: str = "reviews.csv"):
    return store.add_dataset(name, fingerprint, 10, "text", "label", {"neg": 4, "pos": 6})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- a run from start to end ------------------------------------------------------------------


def test_run_lifecycle(store: Store, store_url: str) -> None:
    ds = _dataset(store)
    run = store.create_run(
        config={"model": {"hidden_size": 8}}, preset="fast", dataset_id=ds.id, name="first"
    )
    assert run.status == "queued" and run.dataset_name == "reviews.csv"
    assert run.started is None and run.duration_seconds is None
    assert len(run.id) == 12

    store.start_run(run.id, device="cpu")
    points = [
        MetricPoint(epoch=1, step=5, kind="step", train_loss=0.9, tokens_per_second=1234.5),
        MetricPoint(
            epoch=1, step=10, kind="epoch", train_loss=0.7, val_loss=0.6, val_accuracy=0.7, val_macro_f1=0.6
        ),
        MetricPoint(
            epoch=2, step=20, kind="epoch", train_loss=0.5, val_loss=0.5, val_accuracy=0.8, extra={"lr": 1e-3}
        ),
    ]
    for p in points:
        store.add_metric(run.id, p)
    assert store.get_run(run.id).summary.status == "running"

    trained = {"model": {"hidden_size": 8, "vocab_size": 120}}  # what only the data told, with the result
    done = store.finish_run(
        run.id,
        status="completed",
        metrics=METRICS,
        best_epoch=2,
        epochs_run=2,
        model_dir="/m/x",
        config=trained,
    )
    assert done.status == "completed" and done.best_epoch == 2
    assert done.val_accuracy == 0.8 and done.test_macro_f1 == 0.65  # the float columns lists sort by
    assert done.started <= done.finished and done.duration_seconds >= 0

    detail = store.get_run(run.id)
    assert detail.config == trained
    assert detail.metrics == METRICS
    assert detail.curve == tuple(points)
    assert detail.dataset == ds and detail.summary == store.list_runs()[0]
    assert store.curves([run.id]) == {run.id: tuple(points)}
    assert store.model_dirs() == {run.id: "/m/x"}

    deleted = store.delete_run(run.id)
    assert deleted.id == run.id and deleted.model_dir == "/m/x"
    assert store.list_runs() == []
    assert _sql(store_url, "SELECT count(*) FROM metrics") == [(0,)]  # ON DELETE CASCADE
    with pytest.raises(StoreError, match="no run"):
        store.get_run(run.id)


def test_same_upload_is_recognised(store: Store) -> None:
    first = _dataset(store, name="a.csv")
    assert _dataset(store, name="renamed.csv") == first  # same content and columns: same dataset
    other_columns = store.add_dataset("a.csv", "a" * 64, 10, "review", "label", {"neg": 4, "pos": 6})
    other_content = _dataset(store, fingerprint="b" * 64)
    assert len({first.id, other_columns.id, other_content.id}) == 3
    assert first.label_counts == {"neg": 4, "pos": 6}


def test_times_are_utc_and_non_finite_numbers_become_null(store: Store) -> None:
    before = datetime.now(timezone.utc)
    run = store.create_run(config={}, preset="fast", dataset_id=None)
    store.start_run(run.id, device="cpu")
    store.add_metric(run.id, MetricPoint(epoch=1, step=1, kind="step", train_loss=float("nan")))
    store.finish_run(
        run.id, status="failed", error="loss diverged", metrics={"val": {"accuracy": float("inf")}}
    )
    detail = store.get_run(run.id)
    for t in (detail.summary.created, detail.summary.started, detail.summary.finished):
        assert t.tzinfo is not None and t.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= t <= datetime.now(timezone.utc)
    assert detail.curve[0].train_loss is None
    assert detail.metrics == {"val": {"accuracy": None}} and detail.summary.val_accuracy is None
    assert detail.summary.error == "loss diverged"


# -- listing and finding runs -----------------------------------------------------------------


@pytest.fixture
def four_runs(store: Store) -> Store:
    a = _dataset(store, "a" * 64, name="imdb.csv").id
    b = _dataset(store, "b" * 64, name="sms.csv").id
    for name, preset, dataset_id, status in [
        ("alpha", "fast", a, "completed"),
        ("beta", "default", a, "failed"),
        ("gamma_1", "fast", b, "completed"),
        (None, "seed", None, "queued"),
    ]:
        run = store.create_run(config={}, preset=preset, dataset_id=dataset_id, name=name)
        if status != "queued":
            store.finish_run(run.id, status=status)
        time.sleep(0.002)  # distinct creation times, so "newest first" is well defined
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [None, "gamma_1", "beta", "alpha"]),
        ({"status": "completed"}, ["gamma_1", "alpha"]),
        ({"preset": "fast"}, ["gamma_1", "alpha"]),
        ({"dataset": "imdb.csv"}, ["beta", "alpha"]),
        ({"dataset": "imdb.csv", "status": "completed"}, ["alpha"]),
        ({"search": "ALP"}, ["alpha"]),  # any case
        ({"search": "sms"}, ["gamma_1"]),  # dataset name
        ({"search": "a_1"}, ["gamma_1"]),  # "_" is a literal, not a LIKE wildcard
        ({"search": "%"}, []),
        ({"limit": 2}, [None, "gamma_1"]),
        ({"limit": 2, "offset": 2}, ["beta", "alpha"]),
    ],
)
def test_list_filters(four_runs: Store, filters: dict, expected: list) -> None:
    assert [r.name for r in four_runs.list_runs(**filters)] == expected


def test_list_rejects_unknown_status(store: Store) -> None:
    with pytest.raises(StoreError, match="status must be one of"):
        store.list_runs(status="done")


def test_id_prefixes(store: Store, store_url: str) -> None:
    run = store.create_run(config={}, preset="fast", dataset_id=None)
    assert store.resolve_id(run.id) == run.id
    assert store.resolve_id(run.id[:4]) == run.id
    assert store.get_run(run.id[:6]).summary.id == run.id
    with pytest.raises(StoreError, match="at least 4 characters"):
        store.resolve_id(run.id[:3])
    # two runs sharing a prefix
    _sql(store_url, "UPDATE runs SET id = 'abcd1111' WHERE id = :id", id=run.id)
    store.import_run(
        run_id="abcd2222", config={}, preset="fast", status="completed", metrics={}, best_epoch=None,
        epochs_run=None, model_dir="/m", curve=[], name=None, dataset=None,
    )  # fmt: skip
    with pytest.raises(StoreError, match="ambiguous: abcd1111, abcd2222"):
        store.resolve_id("abcd")
    assert store.resolve_id("abcd2") == "abcd2222"


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("get_run", ("nope1234",), {}),
        ("resolve_id", ("nope1234",), {}),
        ("start_run", ("nope1234",), {"device": "cpu"}),
        ("add_metric", ("nope1234", MetricPoint(epoch=1, step=1, kind="epoch")), {}),
        ("finish_run", ("nope1234",), {"status": "completed"}),
        ("rename_run", ("nope1234", "x"), {}),
        ("delete_run", ("nope1234",), {}),
        ("curves", (["nope1234"],), {}),
    ],
)
def test_unknown_run_id(store: Store, method: str, args: tuple, kwargs: dict) -> None:
    store.create_run(config={}, preset="fast", dataset_id=None)
    with pytest.raises(StoreError, match=r"no run 'nope1234' \(see `lstm-demo runs`\)"):
        getattr(store, method)(*args, **kwargs)


def test_status_rules(store: Store) -> None:
    run = store.create_run(config={}, preset="fast", dataset_id=None)
    with pytest.raises(StoreError, match="status must be one of"):
        store.create_run(config={}, preset="fast", dataset_id=None, status="paused")
    with pytest.raises(StoreError, match="finishes as one of"):
        store.finish_run(run.id, status="running")
    with pytest.raises(StoreError, match="kind must be one of"):
        store.add_metric(run.id, MetricPoint(epoch=1, step=1, kind="batch"))
    store.finish_run(run.id, status="cancelled")
    with pytest.raises(StoreError, match="is cancelled; only a queued run can start"):
        store.start_run(run.id, device="cpu")  # a worker picking up a run cancelled while queued
    with pytest.raises(StoreError, match="already finished"):
        store.finish_run(run.id, status="completed")


IMPORTED = dict(
    config={}, preset="fast", status="completed", metrics={}, best_epoch=None, epochs_run=None,
    model_dir="/m", curve=[], name=None, dataset=None,
)  # fmt: skip


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        ("abcd1234", True),
        ("feed", False),  # a prefix of a stored id
        ("feedbeef0001ff", False),  # a stored id is its prefix
        ("feedbeef0001", False),  # taken
        ("fee", False),  # shorter than any id
        ("bad id!", False),
        (None, False),
    ],
)
def test_an_imported_id_never_shadows_a_stored_ones_abbreviation(
    store: Store, wanted: str | None, kept: bool
) -> None:
    store.import_run(run_id="feedbeef0001", **IMPORTED)
    assert (store.free_id(wanted) == wanted) is kept
    imported = store.import_run(run_id=wanted, **IMPORTED)
    assert (imported.id == wanted) is kept
    assert store.resolve_id("feed") == "feedbeef0001"  # what `feed` meant before still holds
    assert store.resolve_id(imported.id[:8]) == imported.id


def test_import_run_gets_a_new_id_when_taken(store: Store) -> None:
    existing = store.create_run(config={}, preset="fast", dataset_id=None)
    curve = [MetricPoint(epoch=e, step=e * 10, kind="epoch", val_accuracy=0.5 + e / 10) for e in (1, 2)]
    dataset = {
        "name": "x.csv", "fingerprint": "c" * 64, "rows": 3, "text_column": "t", "label_column": "l",
        "label_counts": {"a": 2, "b": 1},
    }  # fmt: skip
    kwargs = dict(
        config={"k": 1}, preset="fast", status="completed", metrics=METRICS, best_epoch=2, epochs_run=2,
        model_dir="/m/imported", curve=curve, name="imported", dataset=dataset,
    )  # fmt: skip
    taken = store.import_run(run_id=existing.id, **kwargs)
    fresh = store.import_run(run_id="feedbeef0001", **kwargs)
    assert taken.id not in (existing.id, fresh.id) and fresh.id == "feedbeef0001"
    detail = store.get_run(taken.id)
    assert detail.curve == tuple(curve) and detail.metrics == METRICS and detail.summary.val_accuracy == 0.8
    assert detail.dataset is not None and detail.dataset.id == store.get_run(fresh.id).dataset.id
    with pytest.raises(StoreError, match="only a finished run"):
        store.import_run(run_id=None, **{**kwargs, "status": "running"})
    with pytest.raises(StoreError, match=r"unknown run columns \['owner'\], missing \[\]"):
        store.import_run(run_id=None, **{**kwargs, "owner": "ann"})  # a column that no longer exists


# -- crash safety -----------------------------------------------------------------------------

# (status, how its process looks now) -> interrupted on SQLite?, on PostgreSQL?
OWNERS = [
    ("running", "dead pid", True, True),
    ("running", "no pid", True, True),
    ("running", "pid reused by a newer process", True, True),
    ("running", "alive", False, False),
    ("queued", "alive", False, False),
    ("queued", "dead pid", True, True),
    ("running", "alive on another host", True, False),  # SQLite: an old container; PostgreSQL: unknown
    ("completed", "dead pid", False, False),
    ("failed", "dead pid", False, False),
]


def test_runs_without_a_lease_are_interrupted_when_their_process_is_gone(
    store: Store, store_url: str
) -> None:
    dead = _dead_pid()
    ids = []
    for status, owner, _, _ in OWNERS:
        run = store.create_run(config={}, preset="fast", dataset_id=None, name=f"{status}, {owner}")
        if status != "queued":
            store.start_run(run.id, device="cpu")
            store.add_metric(run.id, MetricPoint(epoch=1, step=1, kind="step", train_loss=1.0))
        if status in ("completed", "failed"):
            store.finish_run(run.id, status=status)
        update = {
            "dead pid": "pid = :dead",
            "no pid": "pid = NULL",
            "pid reused by a newer process": "process_tag = 'other:1'",
            "alive on another host": "host = 'elsewhere'",
        }.get(owner)
        if update:
            _sql(store_url, f"UPDATE runs SET {update} WHERE id = :id", dead=dead, id=run.id)
        ids.append(run.id)

    column = 2 if store.backend == "sqlite" else 3
    expected = {run_id for run_id, row in zip(ids, OWNERS, strict=True) if row[column]}
    assert set(store.expire_leases()) == expected
    assert store.expire_leases() == []  # nothing left to do

    for run_id, (status, owner, *_) in zip(ids, OWNERS, strict=True):
        detail = store.get_run(run_id)
        if run_id in expected:
            assert detail.summary.status == "interrupted", owner
            assert "interrupted" in detail.summary.error
            assert detail.summary.created <= detail.summary.finished <= datetime.now(timezone.utc)
        else:
            assert detail.summary.status == status, owner
        assert len(detail.curve) == (0 if status == "queued" else 1)  # metrics kept either way


def test_interrupted_run_can_still_finish(store: Store, store_url: str) -> None:
    """If a run's process was wrongly thought gone, its real result still wins."""
    run = store.create_run(config={}, preset="fast", dataset_id=None)
    store.start_run(run.id, device="cpu", pid=_dead_pid())
    assert store.mark_interrupted() == [run.id]  # the service's start-up sweep
    assert store.finish_run(run.id, status="completed", metrics=METRICS).status == "completed"


# -- schema and migrations --------------------------------------------------------------------


def _old_database(url: str, revision: str, run: dict[str, object], metric: dict[str, object]) -> None:
    """A database at an older `revision` holding one run and one metric row, as that version wrote them."""
    engine = make_engine(url)
    migrate(engine, revision)
    utc = "" if engine.dialect.name == "sqlite" else "+00"  # SQLite holds naive UTC text
    rows = [("runs", run, "10:00"), ("metrics", {"run_id": run["id"], **metric}, "10:01")]
    with engine.begin() as conn:
        for table, row, time_of_day in rows:
            values = {**row, "created": f"2024-05-01 {time_of_day}:00{utc}"}
            literals = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values.values())
            conn.execute(text(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({literals})"))
    engine.dispose()


def test_upgrade_from_first_revision_keeps_rows(store_url: str) -> None:
    run = {
        "id": "old0000run01",
        "status": "completed",
        "preset": "seed",
        "config": '{"k": 1}',
        "metrics": "{}",
    }
    _old_database(store_url, "0001", run, {"epoch": 1, "step": 10, "kind": "epoch", "train_loss": 0.5})

    with Store(store_url) as store:
        old = store.get_run("old0")
        assert (old.summary.id, old.summary.name, old.config) == ("old0000run01", None, {"k": 1})
        assert old.summary.created == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
        assert old.curve == (MetricPoint(epoch=1, step=10, kind="epoch", train_loss=0.5),)  # NULL extra -> {}
        new = store.create_run(config={}, preset="fast", dataset_id=None, name="labelled")
        store.add_metric(new.id, MetricPoint(epoch=1, step=1, kind="step", extra={"lr": 0.1}))
        assert [r.name for r in store.list_runs(search="labelled")] == ["labelled"]
        assert store.get_run(new.id).curve[0].extra == {"lr": 0.1}
        assert store.integrity_check() == "ok"
    Store(store_url).close()  # reopening at head changes nothing
    assert _sql(store_url, "SELECT version_num FROM alembic_version") == [("0005",)]


def test_upgrade_drops_the_owner_column_and_keeps_runs_and_their_metrics(store_url: str) -> None:
    run = {"id": "old0000run02", "name": "kept", "owner": "ann", "status": "completed", "preset": "fast"}
    _old_database(
        store_url,
        "0002",
        {**run, "config": "{}"},
        {"epoch": 1, "step": 10, "kind": "epoch", "extra": '{"lr": 0.1}'},
    )

    with Store(store_url) as store:
        old = store.get_run("old0000run02")
        assert (old.summary.name, old.summary.status) == ("kept", "completed")
        assert old.curve[0].extra == {"lr": 0.1}  # the table copy did not cascade-delete its metrics
        assert store.integrity_check() == "ok"
    engine = make_engine(store_url)
    columns = {c["name"] for c in inspect(engine).get_columns("runs")}
    engine.dispose()
    assert "owner" not in columns and {"name", "status", "pid"} <= columns


def test_upgrade_adds_unheld_leases_and_keeps_the_owner_check(store_url: str) -> None:
    run = {"id": "old0000run03", "status": "running", "preset": "fast", "config": "{}", "pid": _dead_pid()}
    _old_database(store_url, "0003", {**run, "host": liveness.HOST}, {"epoch": 1, "step": 1, "kind": "step"})

    with Store(store_url) as store:
        # a run from before leases has none, so its dead process still decides
        assert _sql(store_url, "SELECT claimed_by, lease_until FROM runs") == [(None, None)]
        assert store.expire_leases() == ["old0000run03"]
        assert "pid" in store.get_run("old0000run03").summary.error


def test_models_match_migrations(store: Store, store_url: str) -> None:
    """A model change without a new revision would fail here (autogenerate finds a difference)."""
    engine = make_engine(store_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_database_from_a_newer_version_is_refused(store: Store, store_url: str) -> None:
    _sql(store_url, "UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(StoreError, match="newer version of lstm-demo"):
        Store(store_url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("nosuchdialect://x/y", "cannot use database URL"),
        ("sqlite:////proc/no/such/dir/runs.sqlite3", "cannot create the database folder /proc/no/such/dir"),
        ("postgresql+psycopg://ann:s3cret@127.0.0.1:1/runs", r"cannot open the database .*ann:\*\*\*@"),
    ],
)
def test_unusable_database_is_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        Store(url)
    assert "s3cret" not in str(info.value)  # the password never reaches a message


def test_sqlite_file_settings(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "runs.sqlite3"  # the folder is created
    with Store(f"sqlite:///{path}") as store:
        store.create_run(config={}, preset="fast", dataset_id=None)
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.integrity_check() == "ok"
        with sqlite3.connect(path) as raw:  # a metric row whose run is gone, written behind our back
            raw.execute(
                "INSERT INTO metrics (run_id, epoch, step, kind, created) VALUES ('gone', 1, 1, 'epoch', '')"
            )
        assert "metrics row 1 points at a missing runs row" in store.integrity_check()


# -- concurrency ------------------------------------------------------------------------------

WRITER = """
import sys
from lstm_demo import liveness
from lstm_demo.store import MetricPoint, Store
store = Store(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.add_metric(sys.argv[2], MetricPoint(epoch=1, step=i, kind="step", train_loss=1.0 / (i + 1)))
store.close()
"""


def test_training_writes_while_pages_read(store: Store, store_url: str) -> None:
    """A writer thread and a writer process commit metric rows while 4 threads read, with no error."""
    here = store.create_run(config={}, preset="fast", dataset_id=None, name="thread")
    there = store.create_run(config={}, preset="fast", dataset_id=None, name="process")
    for run in (here, there):
        store.start_run(run.id, device="cpu")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_url, there.id, "150"],
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def write() -> None:
        try:
            deadline = time.monotonic() + 30
            while not store.get_run(there.id).curve and time.monotonic() < deadline:
                time.sleep(0.01)  # start once the other process writes too
            for i in range(200):
                store.add_metric(here.id, MetricPoint(epoch=i // 20, step=i, kind="step", train_loss=0.5))
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        seen = 0
        try:
            while writing.is_set():
                assert len(store.list_runs()) == 2
                curve = store.get_run(here.id).curve
                assert len(curve) >= seen  # committed rows never disappear
                seen = len(curve)
                store.curves([here.id, there.id])
                time.sleep(0.002)  # a page refresh, not a busy loop that starves the writer of the GIL
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    writer = threading.Thread(target=write)
    for t in [*readers, writer]:
        t.start()
    writer.join(timeout=60)
    assert proc.wait(timeout=60) == 0
    writing.clear()
    for t in readers:
        t.join(timeout=30)
    assert errors == []
    curves = store.curves([here.id, there.id])
    assert (len(curves[here.id]), len(curves[there.id])) == (200, 150)


def test_concurrent_read_then_write_transactions(store: Store) -> None:
    """Runs created, started and finished from several threads at once (each reads, then writes)."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                run = store.create_run(config={}, preset="fast", dataset_id=None)
                store.start_run(run.id, device="cpu")
                store.finish_run(run.id, status="completed", metrics=METRICS)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(store.list_runs(status="completed")) == 100


def test_writer_waits_for_a_held_lock(tmp_path: Path) -> None:
    """Another connection holding SQLite's write lock makes a write wait (busy_timeout), not fail."""
    path = tmp_path / "runs.sqlite3"
    with Store(f"sqlite:///{path}") as store:
        run = store.create_run(config={}, preset="fast", dataset_id=None)
        raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("UPDATE runs SET device = 'held'")
        release = threading.Timer(0.5, lambda: raw.execute("COMMIT"))
        release.start()
        started = time.monotonic()
        store.add_metric(run.id, MetricPoint(epoch=1, step=1, kind="step"))
        assert time.monotonic() - started >= 0.4
        release.join()
        raw.close()
        assert store.get_run(run.id).summary.device == "held" and len(store.get_run(run.id).curve) == 1


def test_store_is_the_only_package_importing_sqlalchemy_or_alembic() -> None:
    package = Path(__file__).resolve().parents[1] / "lstm_demo"
    importers = {
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "migrations" not in p.parts
        and any(
            f"{kw} {lib}" in p.read_text() for kw in ("import", "from") for lib in ("sqlalchemy", "alembic")
        )
    }
    assert importers == {"store/__init__.py", "store/engine.py", "store/models.py"}
