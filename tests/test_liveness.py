"""Telling whether the process that owns a run still runs (Linux /proc)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lstm_demo import liveness

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_this_process_is_alive_and_a_finished_one_is_not() -> None:
    me = liveness.owner(os.getpid())
    assert me["pid"] == os.getpid() and me["host"] == liveness.HOST and me["process_tag"]
    assert liveness.alive(os.getpid(), me["process_tag"])
    assert not liveness.alive(_dead_pid(), None)


def test_a_reused_pid_is_not_the_old_process() -> None:
    tag = liveness.process_tag(os.getpid())
    assert tag is not None
    boot, start = tag.split(":")
    assert not liveness.alive(os.getpid(), f"{boot}:{int(start) + 1}")  # same pid, started later
    assert liveness.alive(os.getpid(), None)  # no tag recorded: the pid alone decides


def test_a_pid_that_cannot_exist_is_not_alive() -> None:
    assert not liveness.alive(2**62, None)
    assert liveness.process_tag(2**62) is None
