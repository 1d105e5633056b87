"""Moving models between installations (one zip bundle per run) and checking files against rows.

A bundle holds a run's four model files (`artifacts.MODEL_FILES`), `run.json` (the run's summary,
metric curve and dataset description) and `MODEL_CARD.md`. A bundle may come from anyone, so
`import_run` trusts nothing: it checks the archive's size, names, member types and compression
ratio before extracting a byte, checks that the weights are plain safetensors floats, rebuilds
the model from the extracted files, and only then touches the database and the runs directory.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import struct
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from . import artifacts
from .artifacts import METRICS, MODEL_FILES, WEIGHTS
from .store import METRIC_KINDS, MetricPoint, RunDetail, RunSummary, Store

RUN_JSON, CARD = "run.json", "MODEL_CARD.md"
BUNDLE_FILES = (*MODEL_FILES, RUN_JSON, CARD)
FORMAT, VERSION = "lstm-demo-bundle", 1

MAX_BUNDLE_BYTES = 512 * 2**20  # the zip file itself
MAX_TOTAL_BYTES = 2 * 2**30  # all members, uncompressed
MAX_MEMBER_BYTES = 2**30
MAX_SIDE_BYTES = 16 * 2**20  # run.json and MODEL_CARD.md are read into memory
MAX_MEMBERS = 16
MAX_RATIO = 100  # uncompressed / compressed; float weights barely compress, a zip bomb reaches ~1000
RATIO_FLOOR = 2**20  # members smaller than this are never a bomb, whatever their ratio
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on its JSON header

FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
CODE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".npy", ".npz", ".joblib", ".py", ".pyc")
CODE_SUFFIXES += (".so", ".sh", ".exe", ".dll", ".h5", ".keras")
_ID = re.compile(r"[0-9A-Za-z_-]{4,32}")
_DATASET_KEYS = {"name": str, "fingerprint": str, "rows": int, "text_column": str, "label_column": str}
_RUN_KEYS = {"name": str, "device": str, "best_epoch": int, "epochs_run": int}
_MAX_TEXT = {"run.device": 64, "dataset.fingerprint": 64}  # column widths; 255 for the others


class BundleError(ValueError):
    """A bundle that cannot be exported or imported; the message names the problem."""


# ---------------------------------------------------------------------------------------------
# Export


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
                zf.writestr(RUN_JSON, json.dumps(_run_json(detail), indent=2))
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


def _run_json(detail: RunDetail) -> dict[str, Any]:
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


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def _f2(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def model_card(detail: RunDetail, metrics: dict[str, Any]) -> str:
    """A short Markdown model card from the run's config, data and final metrics."""
    s, cfg, data = detail.summary, detail.config, detail.dataset
    m = cfg.get("model", {})
    labels = cfg.get("labels", [])
    arch = (
        f"{'bidirectional ' if m.get('bidirectional') else ''}{str(m.get('encoder', '?')).upper()}, "
        f"{m.get('num_layers')} layer(s), hidden size {m.get('hidden_size')}, "
        f"embedding size {m.get('embedding_dim')}, {m.get('pooling')} pooling, "
        f"vocabulary of {m.get('vocab_size')} tokens ({cfg.get('tokenizer', {}).get('kind')} tokenizer)"
    )
    lines = [
        f"# Model card: {s.name or 'run ' + s.id}",
        "",
        f"A text classifier trained from scratch with lstm-demo (run `{s.id}`, preset `{s.preset}`, "
        f"finished {_iso(s.finished) or 'n/a'}).",
        "",
        "## Architecture",
        "",
        f"- {arch}",
        f"- labels ({len(labels)}): {', '.join(f'`{label}`' for label in labels)}",
        f"- epochs run: {s.epochs_run}, best epoch: {s.best_epoch}",
        "",
        "## Training data",
        "",
    ]
    if data is not None:
        counts = ", ".join(f"{k}: {v}" for k, v in data.label_counts.items())
        lines += [
            f"- `{data.name}`: {data.rows} rows, text column `{data.text_column}`, "
            f"label column `{data.label_column}`",
            f"- label counts: {counts}",
            f"- sha256 of the file: `{data.fingerprint}`",
        ]
    else:
        lines.append("- not recorded")
    lines += ["", "## Results", "", "| split | accuracy | macro-F1 |", "|---|---|---|"]
    refit = artifacts.refit_summary(metrics)
    first_pass = "validation (first pass, before the refit)" if refit else "validation"
    splits = [(name, metrics.get(key)) for name, key in ((first_pass, "val"), ("test", "test"))]
    splits = [(name, v) for name, v in splits if isinstance(v, dict)]
    for name, v in splits:
        lines.append(f"| {name} | {_pct(v.get('accuracy'))} | {_f2(v.get('macro_f1'))} |")
    for name, v in splits:
        per_class = v.get("per_class") or {}
        if not isinstance(per_class, dict) or not per_class:
            continue
        lines += ["", f"Per class ({name}):", "", "| label | precision | recall | F1 | support |"]
        lines.append("|---|---|---|---|---|")
        for label, c in per_class.items():
            lines.append(
                f"| {label} | {_f2(c.get('precision'))} | {_f2(c.get('recall'))} | "
                f"{_f2(c.get('f1'))} | {c.get('support')} |"
            )
    if refit:
        lines += ["", f"The kept model was then refit on all {refit.get('rows')} training rows for "
                  f"{refit.get('epochs')} epochs, the count the validated first pass chose."]  # fmt: skip
    lines += [
        "",
        "## Intended use and limitations",
        "",
        "- Classifies short texts into the labels above, for texts like those it was trained on.",
        "- Trained from scratch on the user's data only: it has no pretrained knowledge of language,",
        "  so words absent from its training data are unknown to it, and its scores say nothing",
        "  about texts from another domain. Check it on your own held-out data before relying on it.",
        "- It inherits any bias or label noise of its training data.",
        "",
        "## How to load",
        "",
        "```",
        "lstm-demo import this-bundle.zip",
        "```",
        "",
        "The bundle holds `config.json` (preprocessing, tokenizer, model and training settings),",
        "`tokenizer.json`, `model.safetensors` (weights; no pickle), `metrics.json` and `run.json`.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Import


def import_run(
    store: Store,
    runs_dir: Path,
    path: Path,
    *,
    max_bytes: int = MAX_BUNDLE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> RunSummary:
    """Validate the bundle at `path` completely, then add it as a new completed run.

    Raises BundleError naming the problem; on any refusal nothing is left behind (no directory,
    no row). The run keeps its id unless that id is taken here.
    """
    path, runs_dir = Path(path), Path(runs_dir)
    if not path.is_file():
        raise BundleError(f"{path} is not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise BundleError(f"{path.name} is {size:,} bytes, larger than the limit of {max_bytes:,}")
    if not zipfile.is_zipfile(path):
        raise BundleError(f"{path.name} is not a zip archive (or it is truncated)")
    runs_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(path) as zf:
            members = _check_members(zf, max_total_bytes, max_member_bytes, max_members, max_ratio)
            tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=runs_dir))
            try:
                side = _extract(zf, members, tmp)
                return _add(store, runs_dir, tmp, side)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename, or on refusal
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # a bad CRC or a broken deflate stream
        raise BundleError(f"{path.name} is a damaged zip archive: {e}") from None


def _check_members(
    zf: zipfile.ZipFile, max_total: int, max_member: int, max_members: int, max_ratio: float
) -> dict[str, zipfile.ZipInfo]:
    """Every check that needs only the archive's directory, before anything is decompressed."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise BundleError(f"the bundle has {len(infos)} members, more than the limit of {max_members}")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
            raise BundleError(f"the bundle holds an absolute path {name!r}: refusing an unsafe path")
        if ".." in re.split(r"[/\\]", name):
            raise BundleError(
                f"the bundle holds {name!r}, which climbs out with '..': refusing an unsafe path"
            )
        if info.is_dir() or "/" in name or "\\" in name:
            raise BundleError(f"the bundle holds a directory ({name!r}); a bundle is flat")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BundleError(f"{name!r} in the bundle is a symbolic link")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: a writer that sets permission bits only
            raise BundleError(f"{name!r} in the bundle is not a regular file")
        if name.lower().endswith(CODE_SUFFIXES):
            raise BundleError(f"the bundle holds {name!r}: pickle or code files are never loaded")
        if name not in BUNDLE_FILES:
            raise BundleError(
                f"unexpected file {name!r} in the bundle; it may hold only {', '.join(BUNDLE_FILES)}"
            )
        if name in members:
            raise BundleError(f"the bundle holds {name!r} twice")
        if info.flag_bits & 0x1:
            raise BundleError(f"{name!r} in the bundle is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"{name!r} uses an unsupported compression method ({info.compress_type})")
        limit = MAX_SIDE_BYTES if name in (RUN_JSON, CARD) else max_member
        if info.file_size > limit:
            raise BundleError(
                f"{name!r} unpacks to {info.file_size:,} bytes, more than the limit of {limit:,}"
            )
        if info.file_size > RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
            raise BundleError(
                f"{name!r} has a compression ratio of {info.file_size / max(info.compress_size, 1):.0f}:1, "
                f"above {max_ratio:g}:1 (a zip bomb?)"
            )
        total += info.file_size
        members[name] = info
    if total > max_total:
        raise BundleError(f"the bundle unpacks to {total:,} bytes, more than the limit of {max_total:,}")
    missing = [n for n in MODEL_FILES if n not in members]
    if missing:
        raise BundleError(f"the bundle is missing {', '.join(missing)}")
    return members


def _extract(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], tmp: Path) -> dict[str, bytes]:
    """Model files into `tmp`, run.json and the card into memory; the CRC of each is checked on read."""
    side: dict[str, bytes] = {}
    for name, info in members.items():
        with zf.open(info) as src:
            if name in MODEL_FILES:
                with open(tmp / name, "xb") as dst:
                    written = _copy(src, dst, info.file_size)
            else:
                data = src.read(info.file_size + 1)
                side[name], written = data, len(data)
            if written != info.file_size:
                raise BundleError(f"{name!r} unpacks to more bytes than its entry declares")
    return side


def _copy(src: Any, dst: Any, declared: int) -> int:
    written = 0
    while chunk := src.read(2**20):
        written += len(chunk)
        if written > declared:  # zipfile stops at the declared size; do not rely on it alone
            break
        dst.write(chunk)
    return written


def check_safetensors(path: Path) -> None:
    """Refuse anything but a well-formed safetensors file of float tensors (read the header ourselves)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise BundleError(f"{WEIGHTS} is not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise BundleError(f"{WEIGHTS} is not a safetensors file (header length {n} is impossible)")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{WEIGHTS} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise BundleError(f"{WEIGHTS} is not a safetensors file (its header is not an object)")
    data_size, spans = size - 8 - n, []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise BundleError(f"{WEIGHTS}: tensor {key!r} has a malformed header entry")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in FLOAT_DTYPES:
            raise BundleError(f"{WEIGHTS}: tensor {key!r} is {dtype}; only float weights are accepted")
        ints = isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2
        if not ints or not all(isinstance(v, int) and v >= 0 for v in [*shape, *offsets]):
            raise BundleError(f"{WEIGHTS}: tensor {key!r} has a malformed shape or offsets")
        begin, end = offsets
        if not begin <= end <= data_size or end - begin != math.prod(shape) * FLOAT_DTYPES[dtype]:
            raise BundleError(f"{WEIGHTS}: tensor {key!r} points outside the file or has the wrong size")
        spans.append((begin, end))
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
        raise BundleError(f"{WEIGHTS}: tensors overlap")


def _parse_side(side: dict[str, bytes]) -> dict[str, Any]:
    """run.json, when present, validated field by field (it only fills in descriptive columns)."""
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
    run_id = run.get("id")
    clean["id"] = run_id if isinstance(run_id, str) and _ID.fullmatch(run_id) else None
    return {"run": clean, "curve": _curve(doc.get("curve") or []), "dataset": _dataset(doc.get("dataset"))}


def _typed(value: Any, kind: type, where: str) -> Any:
    if isinstance(value, str) and len(value) > _MAX_TEXT.get(where, 255):
        raise BundleError(f"{RUN_JSON}: {where} is longer than {_MAX_TEXT.get(where, 255)} characters")
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    raise BundleError(f"{RUN_JSON}: {where} must be {kind.__name__}, got {value!r:.60}")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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


def _add(store: Store, runs_dir: Path, tmp: Path, side: dict[str, bytes]) -> RunSummary:
    check_safetensors(tmp / WEIGHTS)
    try:
        loaded = artifacts.load_model_dir(tmp)
    except ValueError as e:  # its messages name the temporary directory; the user knows only the bundle
        raise BundleError(
            f"the bundle's model does not load: {str(e).replace(f'{tmp}{os.sep}', '')}"
        ) from None
    metrics = loaded.metrics
    if not isinstance(metrics, dict) or not all(
        isinstance(metrics.get(k), (dict, type(None))) for k in ("val", "test")
    ):
        raise BundleError(f"{METRICS} must be an object whose 'val' and 'test' are objects")
    info = _parse_side(side)
    run = info["run"]
    run_id = _free_id(store, runs_dir, run["id"])
    target = runs_dir / run_id
    os.rename(tmp, target)  # runs_dir/<id> was checked free just now; a race makes this fail
    try:
        summary = store.import_run(
            run_id=run_id,
            config=loaded.config.to_dict(),
            preset=loaded.config.preset,
            status="completed",
            metrics={
                "val": metrics.get("val"),
                "test": metrics.get("test"),
                "refit": artifacts.refit_summary(metrics),
            },
            best_epoch=_count(
                run["best_epoch"] if run["best_epoch"] is not None else metrics.get("best_epoch")
            ),
            epochs_run=_count(
                run["epochs_run"] if run["epochs_run"] is not None else metrics.get("epochs_run")
            ),
            model_dir=str(target),
            curve=info["curve"],
            name=run["name"],
            dataset=info["dataset"],
            device=run["device"],
            created=run["created"],
            started=run["started"],
            finished=run["finished"],
        )
        if summary.id != run_id:  # another process took the id in between: its directory is not ours
            store.delete_run(summary.id)
            raise BundleError(f"run id {run_id} was taken while importing; import again")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return summary


def _free_id(store: Store, runs_dir: Path, wanted: str | None) -> str:
    taken = store.model_dirs()
    candidate = wanted
    while candidate is None or candidate in taken or (runs_dir / candidate).exists():
        candidate = uuid.uuid4().hex[:12]
    return candidate


# ---------------------------------------------------------------------------------------------
# Doctor


def _all_runs(store: Store) -> list[RunSummary]:
    runs: list[RunSummary] = []
    while page := store.list_runs(limit=500, offset=len(runs)):
        runs.extend(page)
    return runs


def _done(action: str, repair: bool) -> str:
    return action if repair else f"would be {action} (dry run)"


def doctor(store: Store, runs_dir: Path, repair: bool = True) -> dict[str, Any]:
    """Compare the runs table with the runs directory; with `repair`, fix what does not match.

    A completed run whose model files are missing or do not load is marked failed; an entry of
    the runs directory that no run owns (a stray directory, or a partial write left by a crash)
    is removed. Queued and running runs, and the partial directories they are writing, are
    never touched.
    """
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
    active = [r.id for r in runs if r.status in ("queued", "running")]
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
