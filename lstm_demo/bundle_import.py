"""Importing a bundle, which may come from anyone: so nothing in it is trusted.

`import_run` checks the archive's size, names, member types and compression ratio before
extracting a byte; then the model's sizes (config.json and the safetensors header, no tensor
data) against the limits and each other; then rebuilds the model from the extracted files; and
only then touches the database and the runs directory.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

from . import artifacts
from .artifacts import CONFIG, METRICS, MODEL_FILES, TOKENIZER, WEIGHTS
from .bundle import BUNDLE_FILES, BundleError, parse_side
from .config import Limits
from .store import RunSummary, Store

MAX_BUNDLE_BYTES = 512 * 2**20  # the zip file itself
MAX_TOTAL_BYTES = 2 * 2**30  # all members, uncompressed
MAX_MEMBER_BYTES = 2**30  # the weights
MAX_DOCUMENT_BYTES = 16 * 2**20  # config.json, metrics.json, run.json and the card are read whole
TOKENIZER_BYTES_PER_TOKEN = 256  # a generous bound on one vocabulary entry (and its merge) in tokenizer.json
MAX_MEMBERS = 16
MAX_RATIO = 100  # uncompressed / compressed; float weights barely compress, a zip bomb compresses far more
RATIO_FLOOR = 2**20  # members smaller than this are never a bomb, whatever their ratio
CODE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".npy", ".npz", ".joblib", ".py", ".pyc")
CODE_SUFFIXES += (".so", ".sh", ".exe", ".dll", ".h5", ".keras")
_SIZES = ("embedding_dim", "hidden_size", "num_layers", "vocab_size", "num_classes")


def import_run(
    store: Store,
    runs_dir: Path,
    path: Path,
    *,
    limits: Limits,
    max_bytes: int = MAX_BUNDLE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> RunSummary:
    """Validate the bundle at `path` completely, then add it as a new completed run.

    The model's sizes are checked against `limits` before anything is built. Raises BundleError
    naming the problem; on any refusal nothing is left behind (no directory, no row). The run
    keeps its id unless `Store.free_id` refuses it here.
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
            sizes = _member_sizes(limits, max_member_bytes)
            members = _check_members(zf, max_total_bytes, sizes, max_members, max_ratio)
            tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=runs_dir))
            try:
                side = _extract(zf, members, tmp)
                _check_sizes(tmp, limits)
                return _add(store, runs_dir, tmp, side)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename, or on refusal
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # a bad CRC or a broken deflate stream
        raise BundleError(f"{path.name} is a damaged zip archive: {e}") from None


def _check_members(
    zf: zipfile.ZipFile, max_total: int, sizes: dict[str, int], max_members: int, max_ratio: float
) -> dict[str, zipfile.ZipInfo]:
    """Every check that needs only the archive's directory, before anything is decompressed;
    `sizes` bounds each member's unpacked size."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise BundleError(f"the bundle has {len(infos)} members, more than the limit of {max_members}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        _check_name(info)
        if info.filename in members:
            raise BundleError(f"the bundle holds {info.filename!r} twice")
        _check_size(info, sizes[info.filename], max_ratio)
        members[info.filename] = info
    total = sum(info.file_size for info in members.values())
    if total > max_total:
        raise BundleError(f"the bundle unpacks to {total:,} bytes, more than the limit of {max_total:,}")
    missing = [n for n in MODEL_FILES if n not in members]
    if missing:
        raise BundleError(f"the bundle is missing {', '.join(missing)}")
    return members


def _check_name(info: zipfile.ZipInfo) -> None:
    """A plain file of the bundle's own, at the top of the archive, that is never code."""
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise BundleError(f"the bundle holds an absolute path {name!r}: refusing an unsafe path")
    if ".." in re.split(r"[/\\]", name):
        raise BundleError(f"the bundle holds {name!r}, which climbs out with '..': refusing an unsafe path")
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
    if info.flag_bits & 0x1:
        raise BundleError(f"{name!r} in the bundle is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleError(f"{name!r} uses an unsupported compression method ({info.compress_type})")


def _check_size(info: zipfile.ZipInfo, limit: int, max_ratio: float) -> None:
    name, size, packed = info.filename, info.file_size, max(info.compress_size, 1)
    if size > limit:
        raise BundleError(f"{name!r} unpacks to {size:,} bytes, more than the limit of {limit:,}")
    if size > RATIO_FLOOR and size > max_ratio * packed:
        raise BundleError(
            f"{name!r} has a compression ratio of {size / packed:.0f}:1, above {max_ratio:g}:1 (a zip bomb?)"
        )


def _member_sizes(limits: Limits, max_member: int) -> dict[str, int]:
    """How large each member may unpack: documents are read whole into memory, and a tokenizer
    grows with its vocabulary, which the limits bound."""
    sizes = dict.fromkeys(BUNDLE_FILES, MAX_DOCUMENT_BYTES)
    sizes[WEIGHTS] = max_member
    sizes[TOKENIZER] = min(max_member, limits.vocab_size * TOKENIZER_BYTES_PER_TOKEN + 2**20)
    return sizes


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


def _check_sizes(tmp: Path, limits: Limits) -> None:
    """The config's sizes and the weights' shapes, against the limits and each other, before any
    model or tokenizer is built: a config may claim a model far larger than its weights."""
    try:
        cfg = artifacts.read_config(tmp)
    except ValueError as e:
        raise BundleError(f"the bundle's model does not load: {_named(e, tmp)}") from None
    for name in _SIZES:
        if type(getattr(cfg.model, name)) is not int:
            raise BundleError(
                f"{CONFIG}: model.{name} must be a whole number, got {getattr(cfg.model, name)!r}"
            )
    try:
        limits.check_config(cfg)
        shapes = artifacts.read_weight_shapes(tmp / WEIGHTS)
        expected = artifacts.parameter_shapes(cfg.model)
    except ValueError as e:  # LimitError included: its message names the number and the limit
        raise BundleError(f"the bundle is refused: {_named(e, tmp)}") from None
    missing, extra = sorted(expected.keys() - shapes.keys()), sorted(shapes.keys() - expected.keys())
    if missing or extra:
        raise BundleError(f"{WEIGHTS} does not match its config: missing {missing}, extra {extra}")
    for key, shape in expected.items():
        if shapes[key] != shape:
            raise BundleError(f"{WEIGHTS}: {key} has shape {shapes[key]}, the config needs {shape}")


def _named(e: Exception, tmp: Path) -> str:
    # Messages name the temporary directory; the user knows only the bundle's own file names.
    return str(e).replace(f"{tmp}{os.sep}", "")


def _add(store: Store, runs_dir: Path, tmp: Path, side: dict[str, bytes]) -> RunSummary:
    try:
        loaded = artifacts.load_model_dir(tmp)
    except ValueError as e:
        raise BundleError(f"the bundle's model does not load: {_named(e, tmp)}") from None
    metrics = loaded.metrics
    if not isinstance(metrics, dict) or not all(
        isinstance(metrics.get(k), (dict, type(None))) for k in ("val", "test")
    ):
        raise BundleError(f"{METRICS} must be an object whose 'val' and 'test' are objects")
    info = parse_side(side)
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
    candidate = store.free_id(wanted)
    while (runs_dir / candidate).exists():  # a directory no run owns (see `lstm-demo doctor`)
        candidate = store.free_id(None)
    return candidate


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
