"""How fast the web app answers, on the CPU, through loopback only.

    .venv/bin/python -m benchmarks.app_bench [--only launch api browser floor] [--requests 200]
        [--launches 3] [--loads 5] [--sentences 20] [--explains 5] [--keystroke-ms 100] [--no-browser]

Sections (`--only` picks some; all by default; `--no-browser` drops `browser`):

launch: `python app.py` in a subprocess (a fresh temporary LSTM_DEMO_HOME, a free port), polling
   GET / until it answers 200; the median of `--launches` launches. Target: under 10 s. Then, 3 s
   later, the first training of that fresh process (`fast` on the example reviews, waited for),
   which pays whatever PyTorch starts up lazily unless the app did it after launching.
api: prediction through the plain HTTP API, as any HTTP client calls it (not `gradio_client`, which
   adds its own 100+ ms): `POST /gradio_api/call/predict` with {"data": [text, run_id]} answers an
   event id, then `GET /gradio_api/call/predict/<event_id>` streams server-sent events until
   `complete`. Median and 95th percentile over `--requests` requests, one at a time: idle, then
   while the app trains the `default` preset on a generated 3,000-row CSV (started through the
   `train` endpoint with wait=False, cancelled afterwards). Target: idle median within 50 ms.
browser: Debian's Chromium through Playwright (`CHROMIUM_ARGS`), against one app with one `fast`
   run of the example reviews (trained through the API first, so it is the pages' chosen model):
   - load to interactive: from navigation start (the page's time origin, before its request is
     sent) until the DOM holds the Train tab's upload control and a click on the Predict tab has
     shown that tab (the button marked selected, its panel laid out; before the next paint). A
     script injected before the page's own clicks the tab as soon as its button exists, again
     every 200 ms until it responds, and notes `performance.now()` from a DOM observer. Cold: a new
     browser context (empty cache) per load; warm: a reload in that context. Medians of `--loads`.
   - as you type: the Predict tab, a sentence from the example reviews typed key by key
     (`--keystroke-ms` apart); milliseconds from the `input` event of the last key until the
     probability bars show that whole sentence's probabilities (the DOM mutation that makes every
     bar equal, within 1e-4, to what the API answers for it). A sentence whose last key does not
     change the probabilities cannot be timed this way and is skipped. Median and 95th
     percentile of `--sentences`. Target: median <= 60 ms on an idle machine.
   - explain, all methods: the Explain tab with every method ticked (and its other defaults: 50
     integration steps, faithfulness measured), a 20-word sentence; milliseconds from the click
     on Explain until every method's row of highlighted words for that sentence is in the DOM,
     and until the gate heatmaps' rows carry that sentence's words (the figures come in a second
     answer, after the words). The first click (which loads Captum and the run's explainer) is
     shown apart; medians of `--explains` after it. Target: <= 1.5 s on the CPU (to attributions).
   - the example path: open the page, Examples -> "Try it" on the movie reviews (trains with
     `fast`), Predict a sentence, Explain it; seconds from opening the page to the highlighted
     words. Target: under a minute.
   Skipped without /usr/bin/chromium or the playwright package.
floor: the same HTTP round trip against a Gradio app launched with the app's settings whose
   `predict` does nothing.

Prints a Markdown table, with the 1-minute load average at the start and end of each measurement
(the figures are only as quiet as the machine).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import re
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
APP = [sys.executable, "app.py"]
SECTIONS = ("launch", "api", "browser", "floor")


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

# Runs in every page before the page's own scripts (the load-to-interactive figure, see the docstring).
INTERACTIVE_JS = """(() => {
  let clicked = -Infinity;
  const laidOut = (el) => !!el && el.getClientRects().length > 0;
  const check = () => {
    if (window.__interactive !== undefined) return;
    const button = document.querySelector('#tab-predict-button');
    if (!button || !document.querySelector('#train-upload input[type=file]')) return;
    if (button.getAttribute('aria-selected') === 'true' && laidOut(document.querySelector('#tab-predict'))) {
      window.__interactive = performance.now();
      observer.disconnect();
      clearInterval(timer);
    } else if (performance.now() - clicked > 200) {
      clicked = performance.now();
      button.click();
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document, {childList: true, subtree: true, attributes: true});
  const timer = setInterval(check, 50);
})()"""

# Arms the as-you-type timer for one sentence: `window.__typing.shown - window.__typing.typed` is the
# time from the last `input` event to the mutation that shows the whole sentence's probabilities.
TYPING_JS = """([sentence, expected]) => {
  const box = document.querySelector('#predict-text textarea');
  const out = document.querySelector('#predict-probabilities');
  const state = window.__typing = {typed: null, shown: null};
  const shows = () => box.value === sentence && Object.entries(expected).every(([label, p]) => {
    const bar = out.querySelector(`meter[aria-label="${CSS.escape(label)}"]`);
    return !!bar && Math.abs(Number(bar.value) - p) < 1e-4;
  });
  const onInput = () => { state.typed = performance.now(); state.shown = null; };
  const observer = new MutationObserver(() => {
    if (state.typed !== null && state.shown === null && shows()) state.shown = performance.now();
  });
  box.addEventListener('input', onInput);
  observer.observe(out, {childList: true, subtree: true, attributes: true, characterData: true});
  state.stop = () => { observer.disconnect(); box.removeEventListener('input', onInput); };
}"""

# Clicks Explain and answers [milliseconds until every method's row shows `words`, milliseconds until
# the gate heatmaps' rows are those words too].
EXPLAIN_JS = """([words, rows, timeoutMs]) => new Promise((resolve, reject) => {
  const out = document.querySelector('#explain-highlights');
  const gates = document.querySelector('#gate-heatmaps');
  const starts = (found, n) => found.length === n && found.every((t, i) => t.startsWith(words[i % words.length]));
  const marked = () => starts([...out.querySelectorAll('.lstm-demo-token')].map((t) => t.textContent),
                              words.length * rows);  // an unknown word adds a marker
  // the first panel's row labels (every panel shares them), top to bottom
  const drawn = () => starts([...gates.querySelectorAll('.yaxislayer-above')].slice(0, 1)
                               .flatMap((axis) => [...axis.querySelectorAll('.ytick text')])
                               .map((t) => t.textContent), words.length);
  const began = performance.now();
  let words_at = null;
  const check = () => {
    if (words_at === null && marked()) words_at = performance.now() - began;
    if (words_at !== null && drawn()) {
      observer.disconnect(); clearTimeout(timer); resolve([words_at, performance.now() - began]);
    }
  };
  const observer = new MutationObserver(check);
  const timer = setTimeout(() => {
    observer.disconnect();
    reject(new Error('no attributions and heatmaps after ' + timeoutMs + ' ms: '
      + document.querySelector('#explain-message').innerText));
  }, timeoutMs);
  for (const node of [out, gates]) observer.observe(node, {childList: true, subtree: true, characterData: true});
  const button = document.querySelector('#explain-button');
  (button.tagName === 'BUTTON' ? button : button.querySelector('button')).click();
})"""


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Any, url: str | None = None) -> Iterator[Any]:
    """A page in its own browser context (its own cache), opened at `url` when one is given."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(1000 * CALL_TIMEOUT)
    try:
        page = context.new_page()
        if url:
            page.goto(url)
            page.wait_for_selector("#train-upload input[type=file]", state="attached")
        yield page
    finally:
        context.close()


def interactive_times(browser: Any, url: str, loads: int) -> tuple[list[float], list[float]]:
    """Milliseconds from navigation start to interactive (see the docstring): cold and warm loads."""
    cold, warm = [], []
    for _ in range(loads):
        with new_page(browser) as page:
            page.add_init_script(INTERACTIVE_JS)
            for times, go in ((cold, lambda: page.goto(url)), (warm, page.reload)):
                go()
                page.wait_for_function("window.__interactive !== undefined")
                times.append(page.evaluate("window.__interactive"))
    return cold, warm


def review_texts() -> list[str]:
    with EXAMPLE.open(newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def explain_sentences(n: int, words: int = 20) -> list[list[str]]:
    """`n` different sentences of `words` lowercase words, cut from the example reviews run together."""
    stream = re.findall(r"[a-z]+", " ".join(reversed(review_texts())).lower())
    return [stream[i * words : (i + 1) * words] for i in range(n)]


def typing_latencies(
    page: Any, client: httpx.Client, url: str, run_id: str, n: int, keystroke_ms: int
) -> tuple[list[float], int]:
    """Milliseconds from the last key to the sentence's probabilities, per timed sentence; and how many
    sentences were skipped because their last key does not change the probabilities."""
    times, skipped = [], 0
    box = page.locator("#predict-text textarea")
    for sentence in review_texts()[::-1]:
        if len(times) == n:
            break
        expected = call(client, url, "predict", [sentence, run_id])["probabilities"]
        before = call(client, url, "predict", [sentence[:-1], run_id])["probabilities"]
        if max(abs(expected[k] - before[k]) for k in expected) < 1e-3:
            skipped += 1
            continue
        box.fill("")
        page.wait_for_timeout(300)  # the empty text's (empty) answer lands before the timer is armed
        page.evaluate(TYPING_JS, [sentence, expected])
        box.press_sequentially(sentence, delay=keystroke_ms)
        page.wait_for_function("window.__typing.shown !== null")
        times.append(page.evaluate("window.__typing.shown - window.__typing.typed"))
        page.evaluate("window.__typing.stop()")
    if len(times) < n:
        raise RuntimeError(f"only {len(times)} of the example reviews could be timed as typed")
    return times, skipped


def explain_latencies(page: Any, n: int) -> list[list[float]]:
    """[to attributions, to heatmaps] milliseconds of Explain with every method ticked, one 20-word
    sentence per click (the first one is the warm-up, returned first)."""
    from lstm_demo.names import METHODS

    page.click("#tab-explain-button")
    page.wait_for_selector("#tab-explain", state="visible")
    boxes = page.locator("#explain-methods input[type=checkbox]")
    for box in boxes.all():
        box.check()
    if boxes.count() != len(METHODS):
        raise RuntimeError(f"the Explain tab offers {boxes.count()} methods, the app has {len(METHODS)}")
    times = []
    for words in explain_sentences(n + 1):
        page.fill("#explain-text textarea", " ".join(words))
        page.wait_for_timeout(300)  # the text reaches the app's state before the click
        times.append(page.evaluate(EXPLAIN_JS, [words, len(METHODS), 1000 * CALL_TIMEOUT]))
    return times


def browser_figures(client: httpx.Client, url: str, args: argparse.Namespace) -> list[tuple[str, ...]]:
    """The browser section's rows (see the docstring)."""
    if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
        return [report("browser figures", f"skipped: no {CHROMIUM} or no playwright package", "", None)]
    run_id = train(client, url, EXAMPLE, "fast", wait=True, epochs=3)["run_id"]
    rows = []
    with chromium() as browser:
        before = load()
        cold, warm = interactive_times(browser, url, args.loads)
        rows.append(report(f"load to interactive in Chromium: cold / warm cache (median of {args.loads})",
                           f"{statistics.median(cold):.0f} / {statistics.median(warm):.0f} ms", "", before))  # fmt: skip
        with new_page(browser, url) as page:
            page.click("#tab-predict-button")
            page.wait_for_selector("#tab-predict", state="visible")
            if not page.input_value("#predict-run input").startswith(run_id):
                raise RuntimeError(f"the Predict tab did not choose run {run_id}")
            before = load()
            typed, skipped = typing_latencies(page, client, url, run_id, args.sentences, args.keystroke_ms)
            median, p95 = statistics.median(typed), percentile(typed, 0.95)
            rows.append(report(f"as you type in Chromium: last key to probabilities, median / p95 ({args.sentences} "
                               f"sentences, keys {args.keystroke_ms} ms apart, {skipped} skipped)",
                               f"{median:.0f} / {p95:.0f} ms", "median <= 60 ms", before))  # fmt: skip
            before = load()
            first, *rest = explain_latencies(page, args.explains)
            to_words, to_figures = (statistics.median(times) / 1000 for times in zip(*rest, strict=True))
            rows.append(report(f"explain in Chromium, all methods, 20 words: click to attributions / to gate "
                               f"heatmaps (medians of {args.explains}; first click apart)",
                               f"{to_words:.2f} / {to_figures:.2f} s (first {first[0] / 1000:.2f} / "
                               f"{first[1] / 1000:.2f} s)", "<= 1.5 s (attributions)", before))  # fmt: skip
        before = load()
        steps = browser_path(browser, url)
        detail = ", ".join(f"{name} {s:.1f}" for name, s in steps.items() if name != "total")
        rows.append(report("example path in the browser: load, train `fast`, predict, explain",
                           f"{steps['total']:.1f} s ({detail})", "< 60 s", before))  # fmt: skip
    return rows


def browser_path(browser: Any, url: str) -> dict[str, float]:
    """Seconds of each step of the example path in Chromium, and the total."""
    steps: dict[str, float] = {}
    with new_page(browser) as page:
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
    return steps


# ---------------------------------------------------------------------------------- sections


def launch_figures(work: Path, launches: int) -> list[tuple[str, ...]]:
    before, seconds, first = load(), [], []
    for i in range(launches):
        with server(APP, work / f"launch-{i}") as (url, took), httpx.Client() as client:
            seconds.append(took)
            time.sleep(FIRST_TRAINING_AFTER)  # a person finds the Train tab
            began = time.perf_counter()
            train(client, url, EXAMPLE, "fast", wait=True)
            first.append(time.perf_counter() - began)
        print(f"launch {i + 1}: {took:.2f} s, first training {first[-1]:.2f} s", flush=True)
    return [
        report("launch to a page that answers (median)", f"{statistics.median(seconds):.2f} s "
               f"({', '.join(f'{s:.1f}' for s in seconds)})", "< 10 s", before),
        report(f"first training in a fresh app, {FIRST_TRAINING_AFTER:.0f} s after its page answers: `fast` on "
               "the example reviews through the HTTP API (median)", f"{statistics.median(first):.2f} s "
               f"({', '.join(f'{s:.2f}' for s in first)})", "", None),
    ]  # fmt: skip


def api_figures(client: httpx.Client, url: str, work: Path, requests: int) -> list[tuple[str, ...]]:
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
    median, p95 = ms(latencies(client, url, run_id, requests, check))
    rows = [report(f"predict, HTTP API, idle: median / p95 ({requests} calls)",
                   f"{median:.1f} / {p95:.1f} ms", "median <= 50 ms", before)]  # fmt: skip

    big = write_training_csv(work / "big.csv", TRAIN_ROWS)
    job = train(client, url, big, "default", wait=False, epochs=50, options='{"train__patience": 0}')
    wait_for_status(client, url, job["run_id"], lambda s: s == "running", "start", 120)
    before = load()
    median, p95 = ms(latencies(client, url, run_id, requests, check))
    status = call(client, url, "train_status", [job["run_id"]])["status"]
    still = "training throughout" if status == "running" else f"training ended: {status}"
    rows.append(report(f"predict, HTTP API, while `default` trains on {TRAIN_ROWS:,} rows: median / p95",
                       f"{median:.1f} / {p95:.1f} ms ({still})", "", before))  # fmt: skip
    call(client, url, "cancel", [job["run_id"]])
    wait_for_status(client, url, job["run_id"], lambda s: s != "running", "stop after its cancel", 60)
    return rows


def wait_for_status(
    client: httpx.Client, url: str, run_id: str, wanted: Callable[[str], bool], what: str, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while not wanted(call(client, url, "train_status", [run_id])["status"]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the benchmark's training did not {what} within {seconds:.0f} s")
        time.sleep(0.5)


def floor_figures(work: Path, requests: int) -> list[tuple[str, ...]]:
    floor = [sys.executable, "-m", "benchmarks.app_bench", "--floor-server"]
    with server(floor, work / "floor") as (url, _), httpx.Client() as client:
        before = load()
        median, p95 = ms(latencies(client, url, "", requests, lambda a: None))
        return [report("floor: the same round trip to a Gradio function that does nothing",
                       f"{median:.1f} / {p95:.1f} ms", "about 20 ms", before)]  # fmt: skip


# ---------------------------------------------------------------------------------- report


def load() -> float:
    return os.getloadavg()[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: list[float]) -> tuple[float, float]:
    """(median, 95th percentile) in milliseconds."""
    return 1000 * statistics.median(seconds), 1000 * percentile(seconds, 0.95)


def report(measure: str, figure: str, target: str, load_before: float | None) -> tuple[str, ...]:
    """One row of the table (the load average from `load_before` to now), printed as it is measured."""
    loads = "" if load_before is None else f"{load_before:.1f} -> {load():.1f}"
    row = (measure, figure, target, loads)
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--requests", type=int, default=200, help="predict calls per HTTP measurement")
    parser.add_argument("--launches", type=int, default=3, help="launches timed (median)")
    parser.add_argument("--loads", type=int, default=5, help="page loads timed in the browser (median)")
    parser.add_argument("--sentences", type=int, default=20, help="sentences typed in the browser")
    parser.add_argument("--keystroke-ms", type=int, default=100, help="milliseconds between typed keys")
    parser.add_argument("--explains", type=int, default=5, help="Explain clicks timed after the first")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser section")
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        serve_floor()
        return
    sections = set(args.only) - ({"browser"} if args.no_browser else set())

    rows: list[tuple[str, ...]] = []
    work = Path(tempfile.mkdtemp(prefix="lstm-demo-app-bench-"))
    print(f"{os.cpu_count()} CPUs; load average now {load():.2f}; scratch {work}", flush=True)
    if "launch" in sections:
        rows += launch_figures(work, args.launches)
    if sections & {"api", "browser"}:
        with server(APP, work / "app") as (url, _), httpx.Client() as client:
            if "api" in sections:
                rows += api_figures(client, url, work, args.requests)
            if "browser" in sections:
                rows += browser_figures(client, url, args)
    if "floor" in sections:
        rows += floor_figures(work, args.requests)

    shutil.rmtree(work, ignore_errors=True)  # kept when a step fails: its server logs are there
    print("\n| measure | figure | target | load average (1 min) |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
