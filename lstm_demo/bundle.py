"""A bundle moves one run between installations: a zip of its model files, `run.json` and a card.

This module owns the format: its member names, `run.json` written on export and read back
(field by field) on import, and `export_run`. `bundle_import` reads a bundle from anyone.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from . import artifacts
from .artifacts import MODEL_FILES
from .model_card import model_card
from .store import METRIC_KINDS, MetricPoint, RunDetail, Store

RUN_JSON, CARD = "run.json", "MODEL_CARD.md"
BUNDLE_FILES = (*MODEL_FILES, RUN_JSON, CARD)
FORMAT, VERSION = "lstm-demo-bundle", 1

_DATASET_KEYS = {"name": str, "fingerprint": str, "rows": int, "text_column": str, "label_column": str}
_RUN_KEYS = {"name": str, "device": str, "best_epoch": int, "epochs_run": int}
_MAX_TEXT = {"run.device": 64, "dataset.fingerprint": 64}  # column widths; 255 for the others


class BundleError(ValueError):
    """A bundle that cannot be exported or imported; the message names the problem."""


def export_run(store: Store, run_id: str, out: Path) -> Path:
    """Write run `run_id` as one zip at `out` (atomically: a temporary sibling, then a rename)."""
    detail = store.get_run(run_id)
    summary = detail.summary
    if summary.status != "completed":
        raise BundleError(f"run {summary.id} is {summary.status}: only a completed run can be exported")
    if not summary.model_dir or not Path(summary.model_dir).is_dir():
        raise BundleError(
            f"run {summary.id} has no model directory ({summary.model_dir}); see `lstm-demo doctor`"
        )
    model_dir = Path(summary.model_dir)
    try:
        loaded = artifacts.load_model_dir(model_dir)  # never export files that would not import
    except ValueError as e:
        raise BundleError(f"run {summary.id} cannot be exported: {e}") from None
    out = Path(out)
    if out.is_dir():
        raise BundleError(f"{out} is a directory; give the path of the zip file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name in MODEL_FILES:
                    zf.write(model_dir / name, name)
                zf.writestr(RUN_JSON, json.dumps(run_json(detail), indent=2))
                zf.writestr(CARD, model_card(detail, loaded.metrics))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_json(detail: RunDetail) -> dict[str, Any]:
    """What `run.json` holds: the run's summary, curve and dataset, without paths of this machine."""
    run = asdict(detail.summary)
    for key in ("created", "started", "finished"):
        run[key] = _iso(run[key])
    run.pop("model_dir")  # a path on the exporting machine means nothing on the importing one
    dataset = None
    if detail.dataset is not None:
        dataset = asdict(detail.dataset)
        dataset.pop("id")
        dataset["created"] = _iso(detail.dataset.created)
    return {
        "format": FORMAT,
        "version": VERSION,
        "run": run,
        "curve": [asdict(p) for p in detail.curve],
        "dataset": dataset,
    }


def parse_side(side: dict[str, bytes]) -> dict[str, Any]:
    """run.json, when present, validated field by field (it only fills in descriptive columns);
    the run id is passed on as found, for the store to keep or replace."""
    if CARD in side:
        try:
            side[CARD].decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{CARD} is not UTF-8 text") from None
    try:
        doc = json.loads(side.get(RUN_JSON, b"{}"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{RUN_JSON} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format", FORMAT) != FORMAT:
        raise BundleError(f"{RUN_JSON} is not an lstm-demo run description")
    if not isinstance(doc.get("version", VERSION), int) or doc.get("version", VERSION) > VERSION:
        raise BundleError(
            f"{RUN_JSON} has format version {doc.get('version')!r}; this lstm-demo reads {VERSION}"
        )
    run = doc.get("run") or {}
    if not isinstance(run, dict):
        raise BundleError(f"{RUN_JSON}: 'run' must be an object")
    clean: dict[str, Any] = {}
    for key, kind in _RUN_KEYS.items():
        clean[key] = _typed(run.get(key), kind, f"run.{key}")
    for key in ("created", "started", "finished"):
        clean[key] = _when(run.get(key), f"run.{key}")
    clean["id"] = run.get("id") if isinstance(run.get("id"), str) else None
    return {"run": clean, "curve": _curve(doc.get("curve") or []), "dataset": _dataset(doc.get("dataset"))}


def _typed(value: Any, kind: type, where: str) -> Any:
    if isinstance(value, str) and len(value) > _MAX_TEXT.get(where, 255):
        raise BundleError(f"{RUN_JSON}: {where} is longer than {_MAX_TEXT.get(where, 255)} characters")
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    raise BundleError(f"{RUN_JSON}: {where} must be {kind.__name__}, got {value!r:.60}")


def _when(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BundleError(f"{RUN_JSON}: {where} is not an ISO date: {value!r:.60}") from None
    if when.tzinfo is None:
        raise BundleError(f"{RUN_JSON}: {where} has no time zone")
    return when


def _number(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise BundleError(f"{RUN_JSON}: {where} must be a number, got {value!r:.60}")


def _curve(points: Any) -> list[MetricPoint]:
    if not isinstance(points, list):
        raise BundleError(f"{RUN_JSON}: 'curve' must be a list")
    curve = []
    for i, p in enumerate(points):
        if not isinstance(p, dict) or p.get("kind") not in METRIC_KINDS:
            raise BundleError(f"{RUN_JSON}: curve point {i} is not a metric point")
        curve.append(
            MetricPoint(
                epoch=_typed(p.get("epoch"), int, f"curve[{i}].epoch") or 0,
                step=_typed(p.get("step"), int, f"curve[{i}].step") or 0,
                kind=p["kind"],
                **{
                    k: _number(p.get(k), f"curve[{i}].{k}")
                    for k in ("train_loss", "val_loss", "val_accuracy", "val_macro_f1", "tokens_per_second")
                },
                extra=_typed(p.get("extra"), dict, f"curve[{i}].extra") or {},
            )
        )
    return curve


def _dataset(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise BundleError(f"{RUN_JSON}: 'dataset' must be an object")
    clean = {}
    for key, kind in _DATASET_KEYS.items():
        if _typed(d.get(key), kind, f"dataset.{key}") is None:
            raise BundleError(f"{RUN_JSON}: dataset.{key} is missing")
        clean[key] = d[key]
    counts = d.get("label_counts")
    if not isinstance(counts, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts.values()
    ):
        raise BundleError(f"{RUN_JSON}: dataset.label_counts must map labels to counts")
    clean["label_counts"] = counts
    return clean
