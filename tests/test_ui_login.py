"""The login: failed attempts slowed then locked out, per user name and per client address, and logged."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from lstm_demo.ui import login
from lstm_demo.ui.login import CLIENT, FREE_FAILURES, LOCKOUT_AFTER, LOCKOUT_SECONDS, LoginGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # lets the other attempts in flight run meanwhile, as a real wait would
        self.now += seconds


def attempt(guard: LoginGuard, user: str, password: str, client: str = "10.0.0.1") -> bool:
    async def run() -> bool:
        CLIENT.set(client)
        return await guard.check(user, password)

    return asyncio.run(run())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(clock: Clock) -> LoginGuard:
    return LoginGuard("ada", "s3cret", clock=clock, sleep=clock.sleep)


def test_the_right_password_logs_in_at_once(guard: LoginGuard, clock: Clock) -> None:
    assert attempt(guard, "ada", "s3cret") and not attempt(guard, "ada", "S3cret") and clock.slept == []


def test_failures_are_slowed_more_and_more_then_locked_out(guard: LoginGuard, clock: Clock, caplog) -> None:
    for _ in range(LOCKOUT_AFTER):
        assert not attempt(guard, "ada", "guess")
    delays = clock.slept
    assert len(delays) == LOCKOUT_AFTER - FREE_FAILURES and delays == sorted(delays) and delays[0] > 0
    assert not attempt(guard, "ada", "s3cret")  # locked: even the right password is refused
    assert "locked out" in caplog.text and "failed login for user 'ada' from 10.0.0.1" in caplog.text
    clock.now += LOCKOUT_SECONDS + 1
    assert attempt(guard, "ada", "s3cret")  # the window has passed
    assert not attempt(guard, "ada", "guess") and clock.slept == delays  # and the count starts again


def test_attempts_sent_at_once_are_counted_before_any_answer(guard: LoginGuard, clock: Clock, caplog) -> None:
    async def burst() -> list[bool]:
        CLIENT.set("10.0.0.7")
        return await asyncio.gather(*(guard.check("ada", f"guess{i}") for i in range(LOCKOUT_AFTER + 2)))

    assert not any(asyncio.run(burst()))
    assert caplog.text.count("locked out") == 2  # the two past the limit were not even compared
    assert not attempt(guard, "ada", "s3cret", client="10.0.0.8")  # the name is locked, from anywhere


def test_one_address_trying_many_names_is_slowed_too(guard: LoginGuard, clock: Clock) -> None:
    for i in range(FREE_FAILURES + 2):
        attempt(guard, f"user{i}", "guess", client="10.0.0.9")
    assert len(clock.slept) == 2
    assert attempt(guard, "ada", "s3cret", client="10.0.0.2") and len(clock.slept) == 2  # others are not


def test_launch_options_use_the_guard_with_a_login_and_nothing_without(tmp_path) -> None:
    from lstm_demo.config import AppSettings
    from lstm_demo.ui import launch_options

    home = {"LSTM_DEMO_HOME": str(tmp_path)}
    assert launch_options(AppSettings.from_env(home))["auth"] is None
    auth = launch_options(
        AppSettings.from_env({**home, "LSTM_DEMO_USERNAME": "a", "LSTM_DEMO_PASSWORD": "b"})
    )["auth"]
    # Gradio awaits only what `inspect.iscoroutinefunction` says is one; anything else would be called
    # and its (truthy) coroutine taken as a successful login
    assert inspect.iscoroutinefunction(auth) and isinstance(auth.__self__, login.LoginGuard)


def test_a_real_server_refuses_a_wrong_password_and_logs_the_client(tmp_path, caplog) -> None:
    import logging
    import socket

    import httpx

    from lstm_demo.config import AppSettings
    from lstm_demo.service import Service
    from lstm_demo.ui import build_app, launch_options

    env = {"LSTM_DEMO_HOME": str(tmp_path), "LSTM_DEMO_USERNAME": "ada", "LSTM_DEMO_PASSWORD": "s3cret"}
    settings = AppSettings.from_env(env)
    service = Service(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(service)
    _, url, _ = demo.launch(
        prevent_thread_lock=True, quiet=True, **launch_options(settings, "127.0.0.1", port)
    )
    try:
        with caplog.at_level(logging.INFO, logger="lstm_demo.login"):
            assert httpx.post(url + "login", data={"username": "ada", "password": "guess"}).status_code == 400
            assert (
                httpx.post(url + "login", data={"username": "ada", "password": "s3cret"}).status_code == 200
            )
        assert "failed login for user 'ada' from 127.0.0.1" in caplog.text
        assert httpx.get(url + "gradio_api/info").status_code in (401, 403)  # nothing without the cookie
    finally:
        demo.close()
        service.shutdown()
