"""Fixtures for the run database: a real SQLite file, and PostgreSQL when LSTM_DEMO_TEST_PG_URL is set;
and Chromium for the browser tests (`test_browser*.py`), one per module.

Start a throwaway server with `eval "$(.ci/postgres.sh)"`; each test then gets its own schema.
Without the variable the PostgreSQL cases are not generated (the report header says so) rather
than skipped one by one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from lstm_demo.store import Store

# Tiny models gain nothing from a second thread, and on a shared machine the threads of one test
# would fight the other processes for the cores.
torch.set_num_threads(1)

PG_URL = os.environ.get("LSTM_DEMO_TEST_PG_URL")
BACKENDS = ["sqlite"] + ([pytest.param("postgresql", marks=pytest.mark.postgres)] if PG_URL else [])


def pytest_report_header() -> str:
    return "store tests: SQLite" + (" and PostgreSQL" if PG_URL else " only (LSTM_DEMO_TEST_PG_URL not set)")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'lstm-demo.sqlite3'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright (the browser tests skip their module when either is missing)."""
    from benchmarks.app_bench import CHROMIUM, CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
