"""The baseline beside every run: `baseline.fit_baseline` on exactly the run's training split, scored
on its validation and test splits, kept as the run's `baseline` record; and the words that compare
the LSTM with it (CLI, model card, run summary).

The record is a flat dict of `baseline_*` keys (`BaselineResult.to_dict`), or, when the baseline
could not be fitted, the same keys as None with `baseline_unavailable` saying why: a baseline that
fails never fails the run it stands beside.

It is fitted after the LSTM, in the training's own process: scikit-learn is imported only there and
only then, so its OpenMP runtime never shares the CPU with a training loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config import Limits

if TYPE_CHECKING:
    from .service import PreparedRun

log = logging.getLogger(__name__)

KEY = "baseline"  # the record's name in a run's metrics
FIGURES = ("val_accuracy", "val_macro_f1", "test_accuracy", "test_macro_f1")  # what the CLI's JSON always has
UNAVAILABLE = "baseline_unavailable"  # the reason, when there are no figures


def measure(prepared: PreparedRun, limits: Limits) -> dict[str, Any]:
    """The run's baseline record (see the module docstring); never raises for a bad fit."""
    table = prepared.table
    train = _rows(table, prepared.train_idx)
    val = _rows(prepared.val_table) if prepared.val_table is not None else _rows(table, prepared.val_idx)
    test = _rows(prepared.test_table) if prepared.test_table is not None else None
    try:
        from .baseline import fit_baseline  # scikit-learn loads here, after the training

        result = fit_baseline(
            *train, val if val[0] else None, test, seed=prepared.config.train.seed, limits=limits
        )
    except (
        ValueError,
        ImportError,
        MemoryError,
    ) as e:  # worded reasons: too few classes, no words, no sklearn
        return unavailable(str(e) or type(e).__name__)
    except Exception as e:  # anything else is logged; the run itself still completes
        log.warning("the baseline of run %s failed", prepared.run_id, exc_info=e)
        return unavailable(f"{type(e).__name__}: {e}")
    return {**result.to_dict(), UNAVAILABLE: None}


def unavailable(reason: str) -> dict[str, Any]:
    return {**{f"baseline_{k}": None for k in FIGURES}, UNAVAILABLE: reason}


def _rows(table: Any, idx: Sequence[int] | None = None) -> tuple[list[str], list[str]]:
    if idx is None:
        return list(table.texts), list(table.labels)
    return [table.texts[i] for i in idx], [table.labels[i] for i in idx]


def record(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run's baseline record ({} for a run stored before baselines, or imported without one)."""
    return dict(metrics.get(KEY) or {})


def lstm_scores(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """The run's own figures keyed as the baseline's (`val_accuracy`, ...), from its metrics."""
    out: dict[str, float | None] = {}
    for split in ("val", "test"):
        values = metrics.get(split) or {}
        for figure in ("accuracy", "macro_f1"):
            out[f"{split}_{figure}"] = values.get(figure)
    return out


def json_figures(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The `baseline_*` keys a command-line JSON result always carries (None where there is no figure)."""
    base = record(metrics)
    out = {f"baseline_{k}": base.get(f"baseline_{k}") for k in FIGURES}
    out[UNAVAILABLE] = base.get(UNAVAILABLE) if base else "no baseline was recorded for this run"
    return out


def verdict(metrics: Mapping[str, Any]) -> str:
    """One sentence: by how much the LSTM beats or trails TF-IDF + LR, or why there is no baseline."""
    from .figures.runs import BASELINE_NAME, baseline_verdict  # plotly only when a sentence is asked for

    base = record(metrics)
    if not base:
        return ""
    if base.get(UNAVAILABLE):
        return f"No {BASELINE_NAME} baseline: {base[UNAVAILABLE]}."
    return baseline_verdict(lstm_scores(metrics), base)


class Column:
    """The baseline's accuracy beside each listed run (test, else validation), read once per finished run:
    a stored run's metrics never change after it ends, and the Runs table asks every few seconds."""

    def __init__(self, metrics_of: Callable[[str], Mapping[str, Any]]) -> None:
        self._metrics_of = metrics_of
        self._known: dict[str, float | None] = {}
        self._lock = threading.Lock()

    def accuracy(self, run_id: str, finished: bool) -> float | None:
        with self._lock:
            if run_id in self._known:
                return self._known[run_id]
        if not finished:  # no baseline before the run ends
            return None
        base = record(self._metrics_of(run_id))
        value = base.get("baseline_test_accuracy")
        value = base.get("baseline_val_accuracy") if value is None else value
        with self._lock:
            self._known[run_id] = value
        return value

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._known.pop(run_id, None)
