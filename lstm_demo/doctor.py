"""Doctor: the runs table and the runs directory compared, and (on request) made to agree.

A completed run whose model files are missing or do not load is marked failed; an entry of the
runs directory that no run owns (a stray directory, or a partial write left by a crash) is
removed. Queued and running runs, and the partial directories they are writing, are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from . import artifacts
from .names import ACTIVE_STATUSES
from .store import RunSummary, Store


def _all_runs(store: Store) -> list[RunSummary]:
    runs: list[RunSummary] = []
    while page := store.list_runs(limit=500, offset=len(runs)):
        runs.extend(page)
    return runs


def _done(action: str, repair: bool) -> str:
    return action if repair else f"would be {action} (dry run)"


def doctor(store: Store, runs_dir: Path, repair: bool = True) -> dict[str, Any]:
    """Compare the runs table with the runs directory; with `repair`, fix what does not match."""
    runs_dir = Path(runs_dir)
    runs = _all_runs(store)
    lines: list[str] = []

    rows_without_files: list[str] = []
    for run in runs:
        if run.status != "completed":
            continue
        if not run.model_dir or not Path(run.model_dir).is_dir():
            problem, error = f"model files missing ({run.model_dir})", "model files missing"
        else:
            try:
                artifacts.load_model_dir(Path(run.model_dir))
                continue
            except ValueError as e:
                problem = error = f"model files missing or invalid: {e}"
        rows_without_files.append(run.id)
        if repair:
            store.mark_failed(run.id, error)
        lines.append(f"run {run.id}: {problem}: {_done('marked failed', repair)}")

    owned = {(runs_dir / r.id).resolve() for r in runs}
    owned |= {Path(r.model_dir).resolve() for r in runs if r.model_dir}
    active = [r.id for r in runs if r.status in ACTIVE_STATUSES]
    files_without_rows: list[str] = []
    incomplete_dirs: list[str] = []
    for entry in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if entry.resolve() in owned or any(entry.name.startswith(f".{i}.") for i in active):
            continue  # a run's files, or the partial directory of a run that is being written
        partial = entry.name.startswith(".")
        files_without_rows.append(str(entry))
        if partial:
            incomplete_dirs.append(str(entry))
        if repair:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        kind = "partial write left by an interrupted save or import" if partial else "no run owns it"
        lines.append(f"{entry}: {kind}: {_done('removed', repair)}")

    integrity = store.integrity_check()
    if integrity != "ok":
        lines.append(f"database integrity check: {integrity} (restore a backup; doctor cannot repair this)")
    ok = not rows_without_files and not files_without_rows and integrity == "ok"
    if ok:
        lines.append(f"ok: {len(runs)} runs and {runs_dir} agree; database integrity ok")
    return {
        "ok": ok,
        "lines": lines,
        "rows_without_files": rows_without_files,
        "files_without_rows": files_without_rows,
        "incomplete_dirs": incomplete_dirs,
        "repaired": repair and bool(rows_without_files or files_without_rows),
        "integrity": integrity,
    }
