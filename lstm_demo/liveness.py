"""Is the process that owns a run still there? Answered from Linux's /proc, with no other imports.

The store records a run's owner (pid, host, process tag) when the run is created or starts, and
asks `alive` when it looks for runs whose process died without finishing them.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

HOST = socket.gethostname()


def owner(pid: int) -> dict[str, str | int | None]:
    """The columns that identify process `pid` of this host: pid, host and process tag."""
    return {"pid": pid, "host": HOST, "process_tag": process_tag(pid)}


def process_tag(pid: int) -> str | None:
    """Boot id and start time of `pid`, so a later process that reuses the pid (the app is pid 1
    again in a restarted container) is not mistaken for the old one; None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    start = stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the parenthesised name
    return f"{boot[:8]}:{start}"


def alive(pid: int, tag: str | None) -> bool:
    """Whether process `pid` of this host runs and is the one tagged `tag` (unknown tags pass)."""
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate it there; assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except (OSError, OverflowError):
        return False
    current = process_tag(pid)
    return tag is None or current is None or current == tag
