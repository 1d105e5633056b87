"""Connecting to the run database: the engine, SQLite's connection settings, Alembic migrations.

SQLite is tuned for one writer (training) and many readers (the web app's threads) at once:
WAL, ``busy_timeout`` and foreign keys on every connection; writes take the lock up front with
``BEGIN IMMEDIATE``, so a writer waits for the lock instead of failing with "database is locked"
when a read-then-write transaction cannot upgrade its snapshot.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

MIGRATIONS_DIR = Path(__file__).parents[1] / "migrations"
WRITE = "lstm_demo_write"  # execution option: this transaction writes (BEGIN IMMEDIATE on SQLite)
_BUSY_TIMEOUT_MS = 30_000


class StoreError(RuntimeError):
    """A request the database cannot answer (unknown run, bad filter, unreachable server...)."""


def make_engine(url: str) -> Engine:
    """An engine for `url` with this project's connection settings (SQLite pragmas, BEGIN IMMEDIATE)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r} ({exc})") from exc
    sqlite = parsed.get_backend_name() == "sqlite"
    if (
        sqlite
        and parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        folder = Path(parsed.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the database folder {folder}: {exc.strerror}") from exc
    options: dict[str, Any] = {"json_serializer": _json_dumps, "pool_size": 5, "max_overflow": 20}
    if not sqlite:
        options["pool_pre_ping"] = True  # survive server restarts
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, ImportError) as exc:  # ImportError covers a missing driver (NoSuchModuleError)
        raise StoreError(f"cannot use database URL {masked(url)}: {exc}") from exc
    if sqlite:
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's documented pysqlite recipe: turn off the driver's own BEGIN handling and emit
    # our own in `_sqlite_begin`, which makes transactions (and DDL) behave as written.
    dbapi_connection.isolation_level = None
    for pragma in (
        f"busy_timeout = {_BUSY_TIMEOUT_MS}",
        "journal_mode = WAL",  # readers never block the writer, nor it them
        "synchronous = NORMAL",  # safe with WAL; commits skip the fsync
        "foreign_keys = ON",  # ON DELETE CASCADE for metrics
    ):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def alembic_config() -> AlembicConfig:
    """Alembic settings built in code (no alembic.ini). A new revision, from a Python shell::

    cfg = alembic_config(); cfg.attributes["connection"] = conn  # conn: a connection at head
    alembic.command.revision(cfg, "what changed", autogenerate=True, rev_id="0004")
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` in one transaction that holds the write lock."""
    cfg = alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Outside a transaction, or SQLite ignores it: a batch migration that rebuilds a table
            # must not cascade-delete the rows that point at it.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":  # two processes starting at once wait in turn
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('lstm_demo_migrate'))")
                cfg.attributes["connection"] = conn
                try:
                    command.upgrade(cfg, revision)
                except CommandError as exc:
                    raise StoreError(
                        f"cannot upgrade the database schema: {exc} "
                        "(was it written by a newer version of lstm-demo?)"
                    ) from exc
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise StoreError("schema upgrade left rows pointing at missing rows; rolled back")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def masked(url: str) -> str:
    """`url` with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def reason(exc: SQLAlchemyError) -> str:
    """The driver's own first line, without SQLAlchemy's wrapping and statement dump."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def plain(value: Any) -> Any:
    """JSON-safe: non-finite floats -> None, numpy scalars/arrays -> Python numbers/lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch values, without importing either
        return plain(value.tolist())
    return value


def _json_dumps(value: Any) -> str:
    # PostgreSQL's JSON has no NaN, so every JSON column is written through `plain`.
    return json.dumps(plain(value), allow_nan=False)
