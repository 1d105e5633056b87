"""Who owns a run, and is it still there? Answered from Linux's /proc, with no other imports.

The store records a run's owner (pid, host, process tag) when the run is created or starts, and
asks `alive` when it looks for runs whose process died without finishing them. That works on one
host only; replicas on several hosts name themselves with `replica_id` and hold a run by a lease
in the database instead (`Store.claim_next`).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path

HOST = socket.gethostname()


def owner(pid: int) -> dict[str, str | int | None]:
    """The columns that identify process `pid` of this host: pid, host and process tag."""
    return {"pid": pid, "host": HOST, "process_tag": process_tag(pid)}


def replica_id() -> str:
    """A name for this app process among replicas: host, pid and a random part, unique even when a
    restarted container gets the same host name and pid."""
    # the host is cut so the whole name fits the store's 255-character column
    return f"{HOST[:200]}:{os.getpid()}:{secrets.token_hex(4)}"


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
