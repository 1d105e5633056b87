"""Uploads parsed once and a few at a time; the private scratch directory for files handed out."""

from __future__ import annotations

import os
import tempfile

import pytest
from helpers import write_toy_csv

from lstm_demo import data, files
from lstm_demo.config import Limits
from lstm_demo.files import Busy, Scratch, Uploads


def test_a_file_is_parsed_once_per_version(tmp_path, monkeypatch):
    calls = []
    real = data.parse
    monkeypatch.setattr(data, "parse", lambda *a, **k: calls.append(a) or real(*a, **k))
    uploads = Uploads(Limits())
    path = write_toy_csv(tmp_path / "t.csv", n=10)
    assert uploads.parse(path) is uploads.parse(path) and len(calls) == 1
    path.write_text(path.read_text() + "one more,neg\n")
    assert len(uploads.parse(path).rows) == 11 and len(calls) == 2


def test_parsing_waits_for_a_free_slot_then_says_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "UPLOAD_WAIT", 0.01)
    uploads = Uploads(Limits(parallel_uploads=2))
    for _ in range(2):
        uploads._slots.acquire()  # every slot taken by uploads being parsed
    with pytest.raises(Busy, match="busy reading other uploads: try again"):
        uploads.parse(write_toy_csv(tmp_path / "t.csv"))
    uploads._slots.release()
    assert len(uploads.parse(tmp_path / "t.csv").rows) == 80


def test_the_limits_apply_to_every_parse(tmp_path):
    path = write_toy_csv(tmp_path / "t.csv", n=10)
    with pytest.raises(data.DataError, match="more than 9 rows"):
        Uploads(Limits(rows=9)).parse(path)
    with pytest.raises(data.DataError, match="over the limit of"):
        Uploads(Limits(upload_mb=0.0001)).parse(path)


def test_scratch_is_private_never_follows_links_and_is_removed_at_close(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    os.symlink(victim, tmp_path / "lstm-demo-scratch")  # planted at the old fixed path
    scratch = Scratch()
    assert list(tmp_path.glob("lstm-demo-*")) == [tmp_path / "lstm-demo-scratch"]  # nothing until first use
    folder = scratch.folder()
    assert folder.parent == scratch.root and scratch.root.parent == tmp_path
    assert not scratch.root.is_symlink() and (scratch.root.stat().st_mode & 0o777) == 0o700
    os.utime(folder, (0, 0))  # an old handed-out folder, and a link someone planted inside
    os.symlink(victim, scratch.root / "link")
    os.utime(scratch.root / "link", (0, 0), follow_symlinks=False)
    scratch.folder()
    assert not folder.exists() and not (scratch.root / "link").exists()
    scratch.close()
    assert not scratch.root.exists()
    assert (victim / "keep.txt").read_text() == "precious" and (tmp_path / "lstm-demo-scratch").is_symlink()
