"""The run database: datasets, runs and their metric curves, in SQLite or PostgreSQL.

The only package that imports SQLAlchemy and Alembic: `models` holds the tables, `engine` the
connection settings and migrations, and this module the `Store`. ORM rows never leave the
package: every public method opens one managed session and returns frozen dataclasses.
`Store(url)` upgrades the schema to the newest Alembic revision before anything else.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .. import liveness
from ..names import ACTIVE_STATUSES, FINISHED_STATUSES, RUN_ID_PATTERN, RUN_STATUSES
from .engine import WRITE, StoreError, make_engine, masked, migrate, plain, reason
from .models import SUMMARY_COLUMNS, DatasetRow, MetricRow, RunRow

METRIC_KINDS = ("epoch", "step")
MIN_PREFIX = 4  # shortest id prefix `resolve_id` accepts
# How long a replica's claim on a run holds without renewal: the trainer renews with its progress
# reports, so this outlasts the longest stretch between two (a validation pass on a large set),
# and another replica still gives up on a dead one's run within a couple of minutes.
LEASE_SECONDS = 90.0
LEASE_EXPIRED = "interrupted: the replica training it stopped answering (lease expired)"
# what a bundle may set of a run besides its id, config, metrics, curve and dataset
_IMPORTED_COLUMNS = frozenset(
    (
        "status",
        "preset",
        "name",
        "device",
        "best_epoch",
        "epochs_run",
        "model_dir",
        "created",
        "started",
        "finished",
    )
)


# ---------------------------------------------------------------------------------------------
# What callers get


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    fingerprint: str  # sha256 of the uploaded file's content
    rows: int
    text_column: str
    label_column: str
    label_counts: dict[str, int]
    created: datetime


@dataclass(frozen=True)
class RunSummary:
    id: str
    name: str | None
    status: str
    preset: str
    dataset_name: str | None
    device: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None
    duration_seconds: float | None  # finished - started; time so far while running
    val_accuracy: float | None
    val_macro_f1: float | None
    test_accuracy: float | None
    test_macro_f1: float | None
    best_epoch: int | None
    epochs_run: int | None
    error: str | None
    model_dir: str | None


# the summary's fields read straight from the runs table (the other two are derived)
_SUMMARY_FIELDS = [f.name for f in fields(RunSummary) if f.name not in ("dataset_name", "duration_seconds")]


@dataclass(frozen=True)
class MetricPoint:
    epoch: int
    step: int
    kind: str  # "epoch" (end of an epoch, with validation) | "step" (periodic, within an epoch)
    train_loss: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_macro_f1: float | None = None
    tokens_per_second: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    config: dict
    metrics: dict  # final metrics: {"val": {...}, "test": {...}}
    curve: tuple[MetricPoint, ...]
    dataset: DatasetInfo | None


class Store:
    """Datasets, runs and metric curves behind one SQLAlchemy engine; safe to share across threads.

    Each process opens its own `Store` (an engine's pooled connections must not cross a fork).
    """

    def __init__(self, url: str) -> None:
        self.url = masked(url)
        self._engine = make_engine(url)
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        self._write = sessionmaker(self._engine.execution_options(**{WRITE: True}), expire_on_commit=False)
        try:
            migrate(self._engine)
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StoreError(f"cannot open the database {self.url}: {reason(exc)}") from exc
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def backend(self) -> str:
        """The database kind: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any error, always closes."""
        session = (self._write if write else self._read)()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"database error ({self.url}): {reason(exc)}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # -- datasets --------------------------------------------------------------------------

    def add_dataset(
        self,
        name: str,
        fingerprint: str,
        rows: int,
        text_column: str,
        label_column: str,
        label_counts: dict[str, int],
    ) -> DatasetInfo:
        """The dataset with this fingerprint and columns, added first if new (its first name is kept)."""
        key = (DatasetRow.fingerprint == fingerprint) & (DatasetRow.text_column == text_column)
        key &= DatasetRow.label_column == label_column
        try:
            with self._session(write=True) as s:
                row = s.scalars(select(DatasetRow).where(key)).first()
                if row is None:
                    row = DatasetRow(
                        name=name,
                        fingerprint=fingerprint,
                        rows=int(rows),
                        text_column=text_column,
                        label_column=label_column,
                        label_counts={str(k): int(v) for k, v in label_counts.items()},
                        created=_now(),
                    )
                    s.add(row)
                    s.flush()
                return _dataset(row)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            with self._session() as s:  # another process added it in between (PostgreSQL)
                return _dataset(s.scalars(select(DatasetRow).where(key)).one())

    # -- the life of a run -----------------------------------------------------------------

    def create_run(
        self,
        *,
        config: dict,
        preset: str,
        dataset_id: int | None,
        name: str | None = None,
        status: str = "queued",
    ) -> RunSummary:
        _check_status(status)
        with self._session(write=True) as s:
            row = RunRow(
                id=_free_id(s),
                name=name,
                status=status,
                preset=preset,
                config=config,
                dataset_id=dataset_id,
                created=_now(),
                metrics={},
                **liveness.owner(os.getpid()),
            )
            s.add(row)
            s.flush()
            return _summary(row, _dataset_name(s, dataset_id))

    def start_run(self, run_id: str, *, device: str, pid: int | None = None) -> None:
        """Mark a queued run running on `device`, owned by process `pid` (default: this one)."""
        with self._session(write=True) as s:
            row = _get(s, run_id)
            if row.status not in ACTIVE_STATUSES:
                raise StoreError(f"run {run_id!r} is {row.status}; only a queued run can start")
            row.status, row.device, row.started = "running", device, _now()
            for key, value in liveness.owner(os.getpid() if pid is None else pid).items():
                setattr(row, key, value)

    def add_metric(self, run_id: str, point: MetricPoint) -> None:
        if point.kind not in METRIC_KINDS:
            raise StoreError(f"metric kind must be one of {METRIC_KINDS}, got {point.kind!r}")
        try:
            with self._session(write=True) as s:
                s.add(_metric_row(run_id, point, _now()))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise StoreError(_no_run(run_id)) from exc
            raise

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: dict | None = None,
        best_epoch: int | None = None,
        epochs_run: int | None = None,
        model_dir: str | None = None,
        error: str | None = None,
        config: dict | None = None,
    ) -> RunSummary:
        """Record how a run ended; the arguments left as None keep what is stored. `config`: the
        configuration as trained, with what only the data told (the vocabulary size, an `auto` run's
        choice), in the same write as the result."""
        if status not in FINISHED_STATUSES:
            raise StoreError(f"a run finishes as one of {FINISHED_STATUSES}, not {status!r}")
        with self._session(write=True) as s:
            row = _get(s, run_id)
            if row.status in FINISHED_STATUSES and row.status != "interrupted":
                raise StoreError(f"run {run_id!r} already finished ({row.status})")
            row.status, row.finished, row.lease_until = status, _now(), None
            if metrics is not None:
                _set_metrics(row, metrics)
            for key, value in (
                ("best_epoch", best_epoch),
                ("epochs_run", epochs_run),
                ("model_dir", model_dir),
                ("error", error),
                ("config", config),
            ):
                if value is not None:
                    setattr(row, key, value)
            return _summary(row, _dataset_name(s, row.dataset_id))

    def rename_run(self, run_id: str, name: str | None) -> RunSummary:
        with self._session(write=True) as s:
            row = _get(s, self._resolve(s, run_id))
            row.name = name or None
            return _summary(row, _dataset_name(s, row.dataset_id))

    def mark_failed(self, run_id: str, error: str) -> RunSummary:
        """Mark a finished run failed (doctor: its model files are gone)."""
        with self._session(write=True) as s:
            row = _get(s, self._resolve(s, run_id))
            if row.status in ACTIVE_STATUSES:
                raise StoreError(f"run {run_id!r} is {row.status}; it cannot be marked failed")
            row.status, row.error = "failed", error
            return _summary(row, _dataset_name(s, row.dataset_id))

    def delete_run(self, run_id: str) -> RunSummary:
        """Delete a run and (by ON DELETE CASCADE) its metrics; its files are the caller's to remove."""
        with self._session(write=True) as s:
            row = _get(s, self._resolve(s, run_id))
            summary = _summary(row, _dataset_name(s, row.dataset_id))
            s.execute(delete(RunRow).where(RunRow.id == row.id))
            return summary

    # -- sharing one queue among replicas --------------------------------------------------

    def submit_run(self, run_id: str) -> None:
        """Put a queued run on the queue every replica claims from (`claim_next`); its job folder,
        which any replica reads, must be written first. A queued run never submitted (the command
        line's, which its own process trains) is never claimed."""
        with self._session(write=True) as s:
            row = _get(s, run_id)
            if row.status != "queued":
                raise StoreError(f"run {run_id!r} is {row.status}; only a queued run can be submitted")
            row.submitted = _now()

    def request_cancel(self, run_id: str, *, running: bool = True) -> str:
        """Ask for a run to be cancelled; returns its status when asked. A queued run is no longer
        claimed (the caller then records it cancelled); the replica training a running one (with
        `running`) sees the request (`cancel_requests`) and stops it; a finished run is left alone."""
        with self._session(write=True) as s:
            # FOR UPDATE: a claim in progress finishes first, so the run is either queued or claimed
            row = s.scalars(select(RunRow).where(RunRow.id == run_id).with_for_update()).first()
            if row is None:
                raise StoreError(_no_run(run_id))
            if row.status == "queued" or (running and row.status == "running"):
                row.cancel_requested = row.cancel_requested or _now()
            return row.status

    def cancel_requests(self, run_ids: Sequence[str]) -> set[str]:
        """Those of `run_ids` someone asked to cancel."""
        with self._session() as s:
            asked = (RunRow.id.in_(list(run_ids))) & RunRow.cancel_requested.is_not(None)
            return set(s.scalars(select(RunRow.id).where(asked)))

    def place_in_queue(self, run_id: str) -> int | None:
        """1 for the next run any replica claims, 2 after it...; None when the run is not waiting."""
        with self._session() as s:
            row = _get(s, run_id)
            if row.status != "queued" or row.submitted is None:
                return None
            ahead = _CLAIMABLE & (
                (RunRow.created < row.created) | ((RunRow.created == row.created) & (RunRow.id < row.id))
            )
            return 1 + s.scalar(select(func.count()).select_from(RunRow).where(ahead))

    def summaries(self, run_ids: Sequence[str]) -> dict[str, RunSummary]:
        """The runs of `run_ids` that exist, by id (without their curves: cheap to ask often)."""
        stmt = (
            select(*SUMMARY_COLUMNS, DatasetRow.name.label("dataset_name"))
            .outerjoin(DatasetRow, RunRow.dataset_id == DatasetRow.id)
            .where(RunRow.id.in_(list(run_ids)))
        )
        with self._session() as s:
            return {row.id: _summary(row, row.dataset_name) for row in s.execute(stmt)}

    def claim_next(
        self, replica: str, devices: Sequence[str] | None = None, lease_seconds: float = LEASE_SECONDS
    ) -> str | None:
        """Move the oldest submitted run (`submit_run`) this replica can train to `running`, held by
        `replica` for `lease_seconds`; returns its id, or None when no waiting run fits.

        `devices` are the ones the replica trains on (`cpu`, `cuda:0`, `mps`...): a run asking for
        `auto` fits any replica, one asking for `cuda` a replica with a CUDA device, otherwise the
        name must match; None takes every run. Two replicas never claim the same run: PostgreSQL
        skips the rows another transaction holds (`FOR UPDATE SKIP LOCKED`) instead of waiting for
        them, and on SQLite the write lock taken at BEGIN lets one claim run at a time.
        """
        _check_lease(lease_seconds)
        stmt = select(RunRow).where(_CLAIMABLE)
        if devices is not None:
            stmt = stmt.where(func.coalesce(_ASKED_DEVICE, "auto").in_(_fitting_devices(devices)))
        with self._session() as s:  # idle workers ask every second: no write lock for an empty queue
            if s.scalar(select(RunRow.id).where(stmt.whereclause).limit(1)) is None:
                return None
        stmt = stmt.order_by(RunRow.created, RunRow.id).limit(1).with_for_update(skip_locked=True)
        with self._session(write=True) as s:
            row = s.scalars(stmt).first()
            if row is None:
                return None
            row.status, row.started = "running", _now()
            row.claimed_by, row.lease_until = replica, self._clock(s) + timedelta(seconds=lease_seconds)
            for key, value in liveness.owner(os.getpid()).items():
                setattr(row, key, value)
            return row.id

    def release_run(self, run_id: str, replica: str) -> bool:
        """Give a run `replica` claimed but has not started training back to the queue (the replica
        is shutting down); False when it is not that replica's running run."""
        with self._session(write=True) as s:
            held = (RunRow.id == run_id) & (RunRow.claimed_by == replica) & (RunRow.status == "running")
            back = {"status": "queued", "started": None, "claimed_by": None, "lease_until": None}
            result = s.execute(
                update(RunRow).where(held).values(**back), execution_options={"synchronize_session": False}
            )
            return result.rowcount == 1

    def renew_lease(self, run_id: str, replica: str, lease_seconds: float = LEASE_SECONDS) -> bool:
        """Extend `replica`'s hold on its running run by `lease_seconds` from now. False when the run
        is no longer its to train (finished, or interrupted by another replica after the lease
        passed): the trainer should stop, as its result would overwrite a decision already shown."""
        _check_lease(lease_seconds)
        with self._session(write=True) as s:
            until = self._clock(s) + timedelta(seconds=lease_seconds)
            held = (RunRow.id == run_id) & (RunRow.claimed_by == replica) & (RunRow.status == "running")
            result = s.execute(
                update(RunRow).where(held).values(lease_until=until),
                execution_options={"synchronize_session": False},
            )
            return result.rowcount == 1

    def expire_leases(self, now: datetime | None = None) -> list[str]:
        """Mark queued/running runs nobody trains any more as interrupted; returns their ids.

        A run with a lease is given up once `now` (default: the database's clock, which every
        replica shares) has passed it. A run without one keeps the check of its owner process:
        it is gone when its pid is NULL, when no process with that pid runs on this host, or when
        one does but started at another time (a reused pid). A run owned by another host is gone
        on SQLite (WAL needs every process on one machine, so that host is a previous container
        or machine) and left alone on PostgreSQL (it may still be training there).
        A submitted run still waiting to be claimed is left alone: any replica may train it.
        Metrics rows are kept; `finished` becomes the time of the run's last sign of life.
        """
        with self._session(write=True) as s:
            now = now or self._clock(s)
            unowned = RunRow.lease_until.is_(None) | (RunRow.lease_until < now)
            unowned &= ~_CLAIMABLE  # a submitted run waits for any replica, not for its submitter
            # FOR UPDATE: a renewal committed meanwhile is seen here, not overwritten
            candidates = s.scalars(
                select(RunRow)
                .where(RunRow.status.in_(ACTIVE_STATUSES) & unowned)
                .with_for_update(skip_locked=True)
            ).all()
            gone = [r for r in candidates if r.lease_until is not None or not self._owner_alive(r)]
            last_metric = dict(
                s.execute(
                    select(MetricRow.run_id, func.max(MetricRow.created))
                    .where(MetricRow.run_id.in_([r.id for r in gone]))
                    .group_by(MetricRow.run_id)
                ).all()
            )
            for row in gone:
                row.status = "interrupted"
                row.finished = last_metric.get(row.id) or row.started or row.created
                if row.error is None:
                    row.error = LEASE_EXPIRED if row.lease_until is not None else _process_stopped(row)
                row.lease_until = None
            return [r.id for r in gone]

    # the start-up sweep's name from before replicas; the service calls it until it moves to expire_leases
    mark_interrupted = expire_leases

    def _owner_alive(self, row: RunRow) -> bool:
        if row.pid is None:
            return False
        if row.host != liveness.HOST:
            return self.backend != "sqlite"
        return liveness.alive(row.pid, row.process_tag)

    def _clock(self, s: Session) -> datetime:
        """Now, by the database server's clock on PostgreSQL, so replicas on hosts whose clocks
        differ agree on when a lease ends; SQLite's processes share one host and its clock."""
        if self.backend == "postgresql":
            return s.scalar(select(func.now()))
        return _now()

    # -- reading ---------------------------------------------------------------------------

    def list_runs(
        self,
        *,
        status: str | None = None,
        preset: str | None = None,
        dataset: str | None = None,
        search: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[RunSummary]:
        """Runs, newest first; `search` matches id, name, preset, dataset and device (any case)."""
        # Plain column rows, not ORM objects: a 1,000-run table loads several times faster.
        stmt = select(*SUMMARY_COLUMNS, DatasetRow.name.label("dataset_name")).outerjoin(
            DatasetRow, RunRow.dataset_id == DatasetRow.id
        )
        if status is not None:
            _check_status(status)
            stmt = stmt.where(RunRow.status == status)
        if preset is not None:
            stmt = stmt.where(RunRow.preset == preset)
        if dataset is not None:
            stmt = stmt.where(DatasetRow.name == dataset)
        if search:
            columns = (RunRow.id, RunRow.name, RunRow.preset, DatasetRow.name, RunRow.device)
            stmt = stmt.where(or_(*(c.icontains(search.strip(), autoescape=True) for c in columns)))
        stmt = stmt.order_by(RunRow.created.desc(), RunRow.id.desc()).limit(limit).offset(offset)
        with self._session() as s:
            return [_summary(row, row.dataset_name) for row in s.execute(stmt)]

    def get_run(self, run_id: str) -> RunDetail:
        """A run by id or unique id prefix (at least 4 characters), with its config and curve."""
        with self._session() as s:
            row = _get(s, self._resolve(s, run_id))
            dataset = s.get(DatasetRow, row.dataset_id) if row.dataset_id is not None else None
            return RunDetail(
                summary=_summary(row, dataset.name if dataset else None),
                config=row.config,
                metrics=row.metrics or {},
                curve=_curves(s, [row.id])[row.id],
                dataset=_dataset(dataset) if dataset else None,
            )

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id is `prefix` or starts with it."""
        with self._session() as s:
            return self._resolve(s, prefix)

    def _resolve(self, s: Session, prefix: str) -> str:
        prefix = prefix.strip()
        if s.get(RunRow, prefix) is not None:
            return prefix
        if len(prefix) < MIN_PREFIX:
            raise StoreError(_no_run(prefix) + f"; an id prefix needs at least {MIN_PREFIX} characters")
        matches = s.scalars(
            select(RunRow.id)
            .where(RunRow.id.startswith(prefix, autoescape=True))
            .order_by(RunRow.id)
            .limit(3)
        ).all()
        if not matches:
            raise StoreError(_no_run(prefix))
        if len(matches) > 1:
            raise StoreError(f"run id prefix {prefix!r} is ambiguous: {', '.join(matches)}, ...")
        return matches[0]

    def curves(self, run_ids: Sequence[str]) -> dict[str, tuple[MetricPoint, ...]]:
        """Metric curves (in the order they were written) keyed by full run id."""
        with self._session() as s:
            ids = [self._resolve(s, run_id) for run_id in run_ids]
            return _curves(s, ids)

    def model_dirs(self) -> dict[str, str | None]:
        """Run id -> model directory, for checking the files on disk against the database."""
        with self._session() as s:
            return dict(s.execute(select(RunRow.id, RunRow.model_dir)).all())

    def integrity_check(self) -> str:
        """ "ok", or what SQLite's integrity and foreign-key checks found (always "ok" elsewhere)."""
        if self.backend != "sqlite":
            return "ok"
        with self._session() as s:
            problems = [r[0] for r in s.connection().exec_driver_sql("PRAGMA integrity_check")]
            problems = [p for p in problems if p != "ok"]
            for table, rowid, parent, _ in s.connection().exec_driver_sql("PRAGMA foreign_key_check"):
                problems.append(f"{table} row {rowid} points at a missing {parent} row")
        return "; ".join(problems) or "ok"

    # -- bundles ---------------------------------------------------------------------------

    def free_id(self, wanted: str | None) -> str:
        """`wanted` if a new run may take it: well formed, not a prefix of a stored id and with no
        stored id as its prefix (either would change what an abbreviated id means); else a fresh id."""
        with self._session() as s:
            return _free_id(s, wanted)

    def import_run(
        self,
        *,
        run_id: str | None,
        config: dict,
        metrics: dict,
        curve: Sequence[MetricPoint],
        dataset: dict | None,
        **columns: Any,
    ) -> RunSummary:
        """Add a finished run from an exported bundle, under a new id unless `free_id(run_id)` keeps it.

        `columns` are the run's own: status and preset (required), and any of `_IMPORTED_COLUMNS`.
        """
        unknown, missing = columns.keys() - _IMPORTED_COLUMNS, {"status", "preset"} - columns.keys()
        if unknown or missing:
            raise StoreError(f"import_run: unknown run columns {sorted(unknown)}, missing {sorted(missing)}")
        if columns["status"] not in FINISHED_STATUSES:
            raise StoreError(f"only a finished run can be imported, this one is {columns['status']!r}")
        dataset_info = self.add_dataset(**dataset) if dataset else None
        now = _now()
        with self._session(write=True) as s:
            run_id = _free_id(s, run_id)
            row = RunRow(
                id=run_id, config=config, dataset_id=dataset_info.id if dataset_info else None, **columns
            )
            row.created = row.created or now
            _set_metrics(row, metrics)
            s.add(row)
            s.flush()
            s.add_all(_metric_row(run_id, point, now) for point in curve)
            return _summary(row, dataset_info.name if dataset_info else None)


# ---------------------------------------------------------------------------------------------
# Helpers


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _no_run(run_id: str) -> str:
    return f"no run {run_id!r} (see `lstm-demo runs`)"


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise StoreError(f"run status must be one of {RUN_STATUSES}, got {status!r}")


def _free_id(s: Session, wanted: Any = None) -> str:
    """`wanted` if it is a well-formed id unrelated to every stored id, else a fresh one."""
    candidate = wanted
    while not (
        isinstance(candidate, str) and RUN_ID_PATTERN.fullmatch(candidate) and _unrelated(s, candidate)
    ):
        candidate = uuid.uuid4().hex[:12]
    return candidate


def _unrelated(s: Session, run_id: str) -> bool:
    # An id that is a prefix of another, or has one as its prefix, would shadow its abbreviation.
    prefixes = [run_id[:k] for k in range(1, len(run_id) + 1)]
    related = or_(RunRow.id.in_(prefixes), RunRow.id.startswith(run_id, autoescape=True))
    return s.scalar(select(RunRow.id).where(related).limit(1)) is None


# a run any replica's worker may claim: submitted to the shared queue, not yet claimed nor cancelled
_CLAIMABLE = (RunRow.status == "queued") & RunRow.submitted.is_not(None) & RunRow.cancel_requested.is_(None)

# the device a run's configuration asks for (`auto` when it names none), read inside the database
_ASKED_DEVICE = RunRow.config[("train", "device")].as_string()


def _fitting_devices(devices: Sequence[str]) -> list[str]:
    """The device names a run may ask for to be trained on one of `devices`."""
    return sorted({"auto", *devices, *(d.split(":")[0] for d in devices)})


def _check_lease(seconds: float) -> None:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise StoreError(f"a lease lasts a positive, finite number of seconds, not {seconds!r}")


def _process_stopped(row: RunRow) -> str:
    return f"interrupted: its process (pid {row.pid} on {row.host}) stopped"


def _get(s: Session, run_id: str) -> RunRow:
    row = s.get(RunRow, run_id)
    if row is None:
        raise StoreError(_no_run(run_id))
    return row


def _dataset_name(s: Session, dataset_id: int | None) -> str | None:
    if dataset_id is None:
        return None
    return s.scalar(select(DatasetRow.name).where(DatasetRow.id == dataset_id))


def _finite(value: Any) -> float | None:
    """A float for a REAL column; NaN and infinities become NULL (PostgreSQL JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _set_metrics(row: RunRow, metrics: dict) -> None:
    row.metrics = plain(metrics)
    val, test = metrics.get("val") or {}, metrics.get("test") or {}
    row.val_accuracy, row.val_macro_f1 = _finite(val.get("accuracy")), _finite(val.get("macro_f1"))
    row.test_accuracy, row.test_macro_f1 = _finite(test.get("accuracy")), _finite(test.get("macro_f1"))


def _metric_row(run_id: str, point: MetricPoint, created: datetime) -> MetricRow:
    values = {f.name: getattr(point, f.name) for f in fields(MetricPoint)}
    for name, value in values.items():
        if name in ("epoch", "step"):
            values[name] = int(value)
        elif name not in ("kind", "extra"):
            values[name] = _finite(value)
    return MetricRow(run_id=run_id, created=created, **{**values, "extra": dict(point.extra)})


def _curves(s: Session, run_ids: Sequence[str]) -> dict[str, tuple[MetricPoint, ...]]:
    points: dict[str, list[MetricPoint]] = {run_id: [] for run_id in run_ids}
    columns = [getattr(MetricRow, f.name) for f in fields(MetricPoint)]
    rows = s.execute(
        select(MetricRow.run_id, *columns).where(MetricRow.run_id.in_(points)).order_by(MetricRow.id)
    )
    for run_id, *values in rows:
        point = MetricPoint(*values)
        points[run_id].append(point if point.extra is not None else replace(point, extra={}))
    return {run_id: tuple(p) for run_id, p in points.items()}


def _dataset(row: DatasetRow) -> DatasetInfo:
    values = {f.name: getattr(row, f.name) for f in fields(DatasetInfo)}
    return DatasetInfo(**{**values, "label_counts": dict(row.label_counts)})


def _summary(row: Any, dataset_name: str | None) -> RunSummary:
    """From a RunRow or a row of `SUMMARY_COLUMNS`: the columns of the same name, and two derived."""
    end = row.finished or (_now() if row.status == "running" else None)
    return RunSummary(
        **{name: getattr(row, name) for name in _SUMMARY_FIELDS},
        dataset_name=dataset_name,
        duration_seconds=(end - row.started).total_seconds() if row.started and end else None,
    )
