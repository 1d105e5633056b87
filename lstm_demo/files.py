"""Files the app receives and hands out: uploads parsed once and a few at a time, and a private
scratch directory for the files it gives back (prediction CSVs, bundles). No torch here."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

from . import data
from .config import Limits

PARSED_KEPT = 2  # parsed tables kept, so choosing columns and then Start do not read the file again
UPLOAD_WAIT = 5.0  # seconds a parse waits for a free slot before answering "busy"
SCRATCH_MAX_AGE = 3600.0  # seconds a handed-out file stays; Gradio copies it into its own cache first


class Busy(ValueError):
    """Every upload slot stayed taken; worded for the user."""


class Uploads:
    """Parses tables within the limits, at most `limits.parallel_uploads` at once, each version of a
    file (path, modification time, size) once."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.parallel_uploads)
        self._lock = threading.Lock()
        self._parsed: OrderedDict[tuple[str, int, int], data.Parsed] = OrderedDict()

    def parse(self, path: str | os.PathLike[str]) -> data.Parsed:
        try:
            st = os.stat(path)
            key = (os.fspath(path), st.st_mtime_ns, st.st_size)
        except OSError:
            key = None  # data.parse says what is wrong with the path
        with self._lock:
            if key in self._parsed:
                self._parsed.move_to_end(key)
                return self._parsed[key]
        if not self._slots.acquire(timeout=UPLOAD_WAIT):
            raise Busy("the server is busy reading other uploads: try again in a moment")
        try:
            parsed = data.parse(
                path,
                max_bytes=self.limits.upload_bytes,
                max_rows=self.limits.rows,
                max_columns=self.limits.columns,
            )
        finally:
            self._slots.release()
        if key is not None:
            with self._lock:
                self._parsed[key] = parsed
                while len(self._parsed) > PARSED_KEPT:
                    self._parsed.popitem(last=False)
        return parsed


class Scratch:
    """A directory private to one app instance (mkdtemp makes it 0700 under a fresh name), never a
    fixed path another user could plant a link at; made on first use (a command-line call that hands
    out no file leaves nothing behind) and removed by `close`."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="lstm-demo-"))
            return self._root

    def folder(self) -> Path:
        """A new folder for a file handed out; folders older than SCRATCH_MAX_AGE are removed first."""
        now = time.time()
        with os.scandir(self.root) as entries:
            for entry in entries:
                try:
                    if now - entry.stat(follow_symlinks=False).st_mtime <= SCRATCH_MAX_AGE:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)  # a file or a link, never what a link points to
                except OSError:  # removed by another request meanwhile
                    pass
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        with self._lock:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
