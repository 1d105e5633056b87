"""The database tables. A change here needs a new revision in migrations/versions (a test compares them).

ORM rows never leave the `store` package: `Store` turns them into the dataclasses callers get.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Named constraints, so a migration can refer to them on every backend.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("fingerprint", "text_column", "label_column"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    text_column: Mapped[str] = mapped_column(String(255))
    label_column: Mapped[str] = mapped_column(String(255))
    label_counts: Mapped[dict[str, Any]]
    created: Mapped[datetime]


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    preset: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    device: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(index=True)
    started: Mapped[datetime | None]
    finished: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    best_epoch: Mapped[int | None]
    epochs_run: Mapped[int | None]
    metrics: Mapped[dict[str, Any] | None]
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    val_macro_f1: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    test_macro_f1: Mapped[float | None] = mapped_column(Float)
    model_dir: Mapped[str | None] = mapped_column(Text)
    # The process that owns a queued/running run, so `mark_interrupted` can tell it is gone.
    pid: Mapped[int | None]
    host: Mapped[str | None] = mapped_column(String(255))
    process_tag: Mapped[str | None] = mapped_column(String(64))  # boot id + start time of `pid`
    # The replica whose worker claimed the run, and until when: past it, any replica may give up on it.
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None]
    # When the run joined the queue every replica's worker claims from (its job folder written), and
    # when someone asked to cancel it: a claim skips it, and the replica training it stops it.
    submitted: Mapped[datetime | None]
    cancel_requested: Mapped[datetime | None]


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_id", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    step: Mapped[int]
    kind: Mapped[str] = mapped_column(String(8))
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    val_macro_f1: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    created: Mapped[datetime]
    extra: Mapped[dict[str, Any] | None]


# What a run summary is built from: everything but the JSON blobs, the owner process and its claim.
_NOT_SUMMARY = (
    "config",
    "metrics",
    "pid",
    "host",
    "process_tag",
    "claimed_by",
    "lease_until",
    "submitted",
    "cancel_requested",
)
SUMMARY_COLUMNS = [c for c in RunRow.__table__.columns if c.name not in _NOT_SUMMARY]
