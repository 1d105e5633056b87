"""How fast the web app answers, on the CPU, through loopback only.

    .venv/bin/python -m benchmarks.app_bench [--requests 200] [--launches 3] [--no-browser]

1. Launch: `python app.py` in a subprocess (a fresh temporary LSTM_DEMO_HOME, a free port), polling
   GET / until it answers 200; the median of `--launches` launches. Target: under 10 s. Then, 3 s
   later, the first training of that fresh process (`fast` on the example reviews, waited for),
   which pays whatever PyTorch starts up lazily unless the app did it after launching.
2. Prediction through the plain HTTP API, as any HTTP client calls it (not `gradio_client`, which
   adds its own 100+ ms): `POST /gradio_api/call/predict` with {"data": [text, run_id]} answers an
   event id, then `GET /gradio_api/call/predict/<event_id>` streams server-sent events until
   `complete`. Median and 95th percentile over `--requests` requests, one at a time: idle, then
   while the app trains the `default` preset on a generated 3,000-row CSV (started through the
   `train` endpoint with wait=False, cancelled afterwards). The floor is the same round trip
   against a Gradio app launched with the same settings whose `predict` does nothing. Target:
   idle median within 50 ms.
3. The example path in Chromium (Playwright): open the page, Examples -> "Try it" on the movie
   reviews (trains with `fast`), Predict a sentence, Explain it; seconds from opening the page
   to the highlighted words. Target: under a minute. Skipped without /usr/bin/chromium or playwright.

Prints a Markdown table, with the 1-minute load average at the start and end of each measurement
(the figures are only as quiet as the machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SENTENCE = "a charming film, though the plot was not great"
LAUNCH_TIMEOUT = 120.0  # seconds
CALL_TIMEOUT = 60.0  # seconds for one API call, its event stream included
TRAIN_ROWS = 3000
EXAMPLE = ROOT / "assets" / "examples" / "movie_reviews.csv"
FIRST_TRAINING_AFTER = 3.0  # seconds between the page answering and the first training


# ---------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    command: list[str], home: Path, timeout: float = LAUNCH_TIMEOUT
) -> tuple[subprocess.Popen, str, float]:
    """Start a server on a free loopback port; returns it, its URL and the seconds until GET / gave 200.

    The browser tests start the app with this too. Its output goes to `home/server.log`.
    """
    port = free_port()
    env = {**os.environ, "LSTM_DEMO_HOME": str(home), "LSTM_DEMO_DEVICE": "cpu", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}  # fmt: skip
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("wb")
    began = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - began < timeout and proc.poll() is None:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return proc, url, time.perf_counter() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    stop(proc)
    tail = (home / "server.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{' '.join(command)} did not answer within {timeout:.0f} s:\n{tail}")


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C first (the app then cancels its training cleanly), a kill if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def server(command: list[str], home: Path) -> Iterator[tuple[str, float]]:
    proc, url, seconds = start(command, home)
    try:
        yield url, seconds
    finally:
        stop(proc)


def serve_floor() -> None:
    """The floor server (run in a subprocess): the app's launch settings, one `predict` that does nothing."""
    import gradio as gr

    from lstm_demo.config import AppSettings
    from lstm_demo.ui.app import QUEUE_CONCURRENCY, launch_options

    def predict(text: str, run_id: str = "") -> dict[str, Any]:
        return {"text": text}

    with gr.Blocks(analytics_enabled=False) as demo:
        gr.api(predict, api_name="predict", concurrency_limit=4)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY)
    demo.launch(**launch_options(AppSettings.from_env()))


# ---------------------------------------------------------------------------------- the HTTP API


def call(client: httpx.Client, url: str, name: str, data: list[Any]) -> Any:
    """One call of a named endpoint: POST for an event id, then read its event stream until it ends."""
    posted = client.post(f"{url}gradio_api/call/{name}", json={"data": data}, timeout=CALL_TIMEOUT)
    posted.raise_for_status()
    event_id = posted.json()["event_id"]
    event, last = "", None
    with client.stream("GET", f"{url}gradio_api/call/{name}/{event_id}", timeout=CALL_TIMEOUT) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                payload = json.loads(line.removeprefix("data:").strip() or "null")
                if event == "error":
                    raise RuntimeError(f"{name} failed: {payload}")
                if event == "generating":
                    last = payload
                elif event == "complete":
                    return (payload or last or [None])[0]
    raise RuntimeError(f"{name}: the event stream ended without a result")


def upload(client: httpx.Client, url: str, path: Path) -> dict[str, Any]:
    """A file argument: upload it, then refer to it as Gradio's FileData."""
    with path.open("rb") as f:
        answer = client.post(f"{url}gradio_api/upload", files={"files": (path.name, f, "text/csv")})
    answer.raise_for_status()
    return {"path": answer.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def train(client: httpx.Client, url: str, path: Path, preset: str, wait: bool, options: str = "",
          epochs: int = 0) -> dict[str, Any]:  # fmt: skip
    return call(
        client, url, "train", [upload(client, url, path), "", "", preset, epochs, options, "bench", wait]
    )


def latencies(
    client: httpx.Client, url: str, run_id: str, n: int, check: Callable[[Any], None]
) -> list[float]:
    """Seconds of `n` predict calls one after another (a few more first, to warm the model cache)."""
    for _ in range(3):
        check(call(client, url, "predict", [SENTENCE, run_id]))
    out = []
    for i in range(n):
        began = time.perf_counter()
        answer = call(client, url, "predict", [f"{SENTENCE} {i}", run_id])
        out.append(time.perf_counter() - began)
        check(answer)
    return out


def write_training_csv(path: Path, rows: int) -> Path:
    """A bigger table to keep the trainer busy: the long-range example task, `rows` texts of 60 words."""
    from lstm_demo.examples import make_long_range

    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *make_long_range(rows, seed=7)])
    return path


# ---------------------------------------------------------------------------------- the browser


def browser_path(url: str) -> dict[str, float]:
    """Seconds of each step of the example path in Chromium, and the total."""
    from playwright.sync_api import sync_playwright

    steps: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(300_000)
        began = mark = time.perf_counter()

        def step(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            steps[name], mark = now - mark, now

        page.goto(url)
        page.wait_for_selector("#tab-examples-button")
        step("open the page")
        page.click("#tab-examples-button")
        page.click("#example-movie-reviews")
        page.wait_for_selector(
            "#train-progress [data-status=completed], #train-progress [data-status=failed]"
        )
        if page.locator("#train-progress [data-status=completed]").count() != 1:
            raise RuntimeError(f"the example did not train: {page.locator('#train-message').inner_text()}")
        step("load the example and train (fast)")
        page.click("#tab-predict-button")
        page.fill("#predict-text textarea", SENTENCE)
        page.wait_for_selector("#predict-probabilities [data-testid=label-output-value]")
        step("predict")
        page.click("#tab-explain-button")
        page.fill("#explain-text textarea", SENTENCE)
        page.click("#explain-button")
        page.wait_for_selector("#explain-highlights .lstm-demo-token")
        step("explain")
        steps["total"] = time.perf_counter() - began
        browser.close()
    return steps


# ---------------------------------------------------------------------------------- report


def load() -> float:
    return os.getloadavg()[0]


def ms(seconds: list[float]) -> tuple[float, float]:
    """(median, 95th percentile) in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return 1000 * statistics.median(ordered), 1000 * p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="predict calls per measurement")
    parser.add_argument("--launches", type=int, default=3, help="launches timed (median)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium example path")
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        serve_floor()
        return

    rows: list[tuple[str, str, str, str]] = []  # measure, figure, target, load average start -> end
    app = [sys.executable, "app.py"]
    work = Path(tempfile.mkdtemp(prefix="lstm-demo-app-bench-"))
    print(f"{os.cpu_count()} CPUs; load average now {load():.2f}; scratch {work}", flush=True)

    before, seconds, first = load(), [], []
    for i in range(args.launches):
        with server(app, work / f"launch-{i}") as (url, took), httpx.Client() as client:
            seconds.append(took)
            time.sleep(FIRST_TRAINING_AFTER)  # a person finds the Train tab
            began = time.perf_counter()
            train(client, url, EXAMPLE, "fast", wait=True)
            first.append(time.perf_counter() - began)
        print(f"launch {i + 1}: {took:.2f} s, first training {first[-1]:.2f} s", flush=True)
    rows.append(("launch to a page that answers (median)", f"{statistics.median(seconds):.2f} s "
                 f"({', '.join(f'{s:.1f}' for s in seconds)})", "< 10 s", f"{before:.1f} -> {load():.1f}"))  # fmt: skip
    rows.append((f"first training in a fresh app, {FIRST_TRAINING_AFTER:.0f} s after its page answers: `fast` on "
                 "the example reviews through the HTTP API (median)", f"{statistics.median(first):.2f} s "
                 f"({', '.join(f'{s:.2f}' for s in first)})", "", ""))  # fmt: skip

    with server(app, work / "app") as (url, _), httpx.Client() as client:
        toy = work / "toy.csv"
        with toy.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(
                [("text", "label"), *[(SENTENCE, "pos"), ("a dull and boring film", "neg")] * 40]
            )
        run_id = train(client, url, toy, "fast", wait=True, epochs=2)["run_id"]
        labels = {"neg", "pos"}

        def check(answer: Any) -> None:
            if answer.get("label") not in labels:
                raise RuntimeError(f"unexpected prediction {answer}")

        before = load()
        median, p95 = ms(latencies(client, url, run_id, args.requests, check))
        rows.append((f"predict, HTTP API, idle: median / p95 ({args.requests} calls)",
                     f"{median:.1f} / {p95:.1f} ms", "median <= 50 ms", f"{before:.1f} -> {load():.1f}"))  # fmt: skip
        print(rows[-1], flush=True)

        big = write_training_csv(work / "big.csv", TRAIN_ROWS)
        job = train(client, url, big, "default", wait=False, epochs=50, options='{"train__patience": 0}')
        deadline = time.monotonic() + 120
        while call(client, url, "train_status", [job["run_id"]])["status"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark's training did not start within 120 s")
            time.sleep(0.5)
        before = load()
        median, p95 = ms(latencies(client, url, run_id, args.requests, check))
        status = call(client, url, "train_status", [job["run_id"]])
        still = (
            "training throughout" if status["status"] == "running" else f"training ended: {status['status']}"
        )
        rows.append((f"predict, HTTP API, while `default` trains on {TRAIN_ROWS:,} rows: median / p95",
                     f"{median:.1f} / {p95:.1f} ms ({still})", "", f"{before:.1f} -> {load():.1f}"))  # fmt: skip
        print(rows[-1], flush=True)
        call(client, url, "cancel", [job["run_id"]])
        deadline = time.monotonic() + 60
        while call(client, url, "train_status", [job["run_id"]])["status"] == "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark's training did not stop within 60 s of its cancel")
            time.sleep(0.5)

        if args.no_browser:
            pass
        elif not CHROMIUM.exists():
            rows.append(("example path in the browser", f"skipped: no {CHROMIUM}", "< 60 s", ""))
        else:
            before = load()
            steps = browser_path(url)
            detail = ", ".join(f"{name} {s:.1f}" for name, s in steps.items() if name != "total")
            rows.append(("example path in the browser: load, train `fast`, predict, explain",
                         f"{steps['total']:.1f} s ({detail})", "< 60 s", f"{before:.1f} -> {load():.1f}"))  # fmt: skip
            print(rows[-1], flush=True)

    floor = [sys.executable, "-m", "benchmarks.app_bench", "--floor-server"]
    with server(floor, work / "floor") as (url, _), httpx.Client() as client:
        before = load()
        median, p95 = ms(latencies(client, url, "", args.requests, lambda a: None))
        rows.append(("floor: the same round trip to a Gradio function that does nothing",
                     f"{median:.1f} / {p95:.1f} ms", "about 20 ms", f"{before:.1f} -> {load():.1f}"))  # fmt: skip

    shutil.rmtree(work, ignore_errors=True)  # kept when a step fails: its server logs are there
    print("\n| measure | figure | target | load average (1 min) |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
