"""Login for an app with a password: failed attempts are slowed and then locked out, per user name and
per client address, and every attempt is logged.

Gradio calls the `auth` callable with only a user name and a password, so a small ASGI middleware
notes the client address of each `/login` request in a context variable the callable reads.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("lstm_demo.login")

FREE_FAILURES = 3  # failed attempts answered at once (a mistyped password is common)
BASE_DELAY = 1.0  # seconds before answering the next attempt after the free ones, doubling each time
MAX_DELAY = 16.0
LOCKOUT_AFTER = 10  # failures within LOCKOUT_SECONDS that lock the name or address out
LOCKOUT_SECONDS = 900.0
TRACKED = 10_000  # names and addresses remembered; the oldest are forgotten first

CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("login_client", default="unknown")


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginGuard:
    """One user name and password, throttled; `check` is the `auth` callable for `Blocks.launch`
    (a coroutine function, which Gradio awaits, so a delay does not hold a server thread)."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._username, self._password = username, password
        self._clock, self._sleep = clock, sleep
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    async def check(self, username: str, password: str) -> bool:
        client = CLIENT.get()
        keys = [("user", username.casefold()), ("client", client)]
        now = self._clock()
        records = [self._record(k, now) for k in keys]
        if any(r.locked_until > now for r in records):
            log.warning(
                "login refused for user %r from %s: locked out after repeated failures", username, client
            )
            return False
        # counted as a failure before the wait, so attempts sent at once are slowed and locked out too
        for r in records:
            r.failures, r.last = r.failures + 1, now
            if r.failures >= LOCKOUT_AFTER:
                r.locked_until = now + LOCKOUT_SECONDS
        delay = max(_delay(r.failures - 1) for r in records)
        if delay:
            await self._sleep(delay)  # an await, so other requests are served meanwhile
        ok = hmac.compare_digest(username.encode(), self._username.encode()) & hmac.compare_digest(
            password.encode(), self._password.encode()
        )
        if ok:
            for key in keys:
                self._records.pop(key, None)
            log.info("login for user %r from %s", username, client)
            return True
        log.warning("failed login for user %r from %s (%d failures)", username, client, records[0].failures)
        return False

    def _record(self, key: tuple[str, str], now: float) -> _Record:
        record = self._records.get(key)
        if record is None or (now - record.last > LOCKOUT_SECONDS and record.locked_until <= now):
            record = _Record()  # failures long ago are forgiven
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > TRACKED:
            self._records.popitem(last=False)
        return record


def _delay(failures: int) -> float:
    if failures < FREE_FAILURES:
        return 0.0
    return min(BASE_DELAY * 2 ** (failures - FREE_FAILURES), MAX_DELAY)


class ClientAddress:
    """ASGI middleware: the client address of a `/login` request, for `LoginGuard`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("path", "").rstrip("/").endswith("/login"):
            client = scope.get("client")
            CLIENT.set(client[0] if client else "unknown")
        await self.app(scope, receive, send)
