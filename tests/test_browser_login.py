"""A reload with a login follows the user's own training: the app in Chromium, started with a login.

The app has one login (LSTM_DEMO_USERNAME, LSTM_DEMO_PASSWORD). A training started through the HTTP
API belongs to no page and no user, so it stands for someone else's: a logged-in page must never
follow it (without a login a page falls back to the newest of anyone's, `test_browser.py`). The
user's own training is found through the login, not the browser: a second browser context shares
no local storage with the first, and still follows it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file
from helpers import write_toy_csv
from test_browser import (
    ANSWER_MS,
    LONG_ROWS,
    START_S,
    TRAIN_MS,
    WATCH,
    seen,
    start_long_training,
    wait_for_text,
)

from benchmarks.app_bench import start, stop

pytestmark = pytest.mark.browser

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

LOGIN = ("ada", "s3cret-for-a-test")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env:  # `start` passes this process's environment on
        env.setenv("LSTM_DEMO_USERNAME", LOGIN[0])
        env.setenv("LSTM_DEMO_PASSWORD", LOGIN[1])
        proc, url, _ = start([sys.executable, "app.py"], home, timeout=START_S)
    yield url
    stop(proc)


def logged_in_page(browser: Any, url: str) -> Any:
    """A page in a browser context of its own (its own cookies and local storage), logged in."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(ANSWER_MS)
    context.add_init_script(WATCH)
    answer = context.request.post(url + "login", form={"username": LOGIN[0], "password": LOGIN[1]})
    assert answer.ok, answer.text()
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#train-upload input[type=file]", state="attached")
    return page


def test_a_logged_in_page_follows_its_users_training_never_someone_elses(
    browser: Any, app_url: str, tmp_path: Path
) -> None:
    client = Client(app_url, auth=LOGIN, verbose=False)
    path = write_toy_csv(tmp_path / "theirs.csv", n=LONG_ROWS)
    # through the HTTP API: no page's and no user's; long enough to run while the pages load, however
    # loaded the machine (both trainings are cancelled at the end)
    theirs = client.submit(handle_file(str(path)), "", "", "fast", 100, json.dumps({}), "theirs", False,
                           api_name="/train").result(timeout=TRAIN_MS / 1000)["run_id"]  # fmt: skip
    first = second = None
    try:
        first = logged_in_page(browser, app_url)
        progress = start_long_training(first, tmp_path / "mine.csv")
        mine = progress.get_attribute("data-run")
        # queued behind theirs (one training at a time per device), or running once theirs ends
        assert mine != theirs and progress.get_attribute("data-status") in ("queued", "running")
        # the page loaded while theirs ran, and followed nothing until its own Start
        assert seen(first)[0] == {mine}, seen(first)[1]

        second = logged_in_page(browser, app_url)  # the same user in another browser
        second.locator(f"#train-progress [data-run='{mine}']").wait_for(state="attached")
        assert f"following your run {mine}" in wait_for_text(second, "#train-message", "following")

        first.reload()  # re-attaches to the user's own
        first.locator(f"#train-progress [data-run='{mine}']").wait_for(state="attached")
        assert f"following your run {mine}" in wait_for_text(first, "#train-message", "following")

        for page in (
            first,
            second,
        ):  # the reloaded page and the other browser: never theirs, not even for a moment
            runs, messages = seen(page)
            assert runs == {mine} and not any(theirs in m for m in messages), messages
        first.click("#train-cancel")
        wait_for_text(first, "#train-message", f"cancelling run {mine}|was cancelled")
        first.wait_for_selector(
            f"#train-progress [data-run='{mine}'][data-status=cancelled]", timeout=TRAIN_MS
        )
    finally:
        for page in (first, second):
            if page is not None:
                page.context.close()
        client.predict(theirs, api_name="/cancel")
