"""The app in a real browser: Playwright driving Debian's Chromium against `python app.py` on loopback.

One server for the module, started the way a person starts it (a subprocess, a temporary
LSTM_DEMO_HOME, a free port through GRADIO_SERVER_PORT, CPU). Each test opens its own page and
asserts on what a person sees: text in the page, not the server's answers. Screenshots of every
tab land in `artifacts/screenshots/` (git-ignored) for a person to look at after a CI run.

Needs /usr/bin/chromium (`.ci/run` installs it) and the `playwright` package; `playwright install`
is not used, so no browser is downloaded.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file
from helpers import toy_rows, write_toy_csv

from benchmarks.app_bench import CHROMIUM, start, stop
from lstm_demo.examples import EXAMPLES
from lstm_demo.vectors import ppmi_svd, write_vectors

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MARKUP = "<img src=x onerror=alert(1)>"
TABS = {"train": "Train", "examples": "Examples", "predict": "Predict", "explain": "Explain", "runs": "Runs",
        "about": "How an LSTM works"}  # fmt: skip
# Generous: a shared 2-core machine trains the `fast` preset on 100 rows in about 5 s when idle.
START_S, TRAIN_MS, ANSWER_MS = 90, 180_000, 60_000
# Rows of a training that must still be queued or running when a test cancels it, on any machine: `fast`
# takes about 5 s an epoch of these on an idle 2-core machine, so 100 epochs outlast any test by minutes
# (4,000 rows once finished all 100 epochs before a second tab's cancel reached it, on a quicker CI machine).
LONG_ROWS = 20_000


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("home")
    proc, url, _ = start([sys.executable, "app.py"], home, timeout=START_S)
    yield url
    stop(proc)


@dataclass
class Visit:
    """A page on the app, with what it raised: dialogs (dismissed) and uncaught script errors."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def visit(browser: Any, app_url: str) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(ANSWER_MS)
    page = context.new_page()
    v = Visit(page)

    def on_dialog(dialog: Any) -> None:
        v.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: v.errors.append(str(error)))
    page.goto(app_url)
    page.wait_for_selector("#train-upload input[type=file]", state="attached")
    yield v
    context.close()


# ------------------------------------------------------------------------------------- steps


def text_of(page: Any, selector: str) -> str:
    return page.locator(selector).inner_text()


def open_tab(page: Any, name: str) -> None:
    page.click(f"#tab-{name}-button")
    page.wait_for_selector(f"#tab-{name}", state="visible")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def upload(page: Any, path: Path) -> None:
    """Choose `path` in the Train tab's file box, replacing any file already there."""
    clear = page.locator("#train-upload button[aria-label=Clear]")
    if clear.count():
        clear.click()  # and wait for the cleared form, so that its update cannot land after the new file's
        # (the click also blurs a column menu left focused, whose `input` event re-counts the old file's labels:
        # the app queues it before the clear, so the clear's empty form is the last word)
        wait_for_text(page, "#upload-message", "^\\s*$")
        wait_for_text(page, "#data-summary", "^\\s*$")
    page.set_input_files("#train-upload input[type=file]", str(path))


def wait_for_text(page: Any, selector: str, pattern: str, timeout: float = ANSWER_MS) -> str:
    """Wait until the element's visible text matches the regular expression; returns that text."""
    page.wait_for_function(
        "([sel, pat]) => { const e = document.querySelector(sel); return !!e && new RegExp(pat).test(e.innerText); }",
        arg=[selector, pattern],
        timeout=timeout,
    )
    return text_of(page, selector)


def train(page: Any, name: str = "") -> str:
    """Start a `fast` training of the uploaded file and wait until it is shown as finished; returns the run id."""
    page.locator("#preset input").click()
    page.get_by_role("option", name="fast", exact=True).click()
    assert page.input_value("#preset input") == "fast"
    if name:
        page.locator("#run-name").locator("textarea, input").first.fill(name)
    page.click("#train-start")
    progress = page.locator("#train-progress [data-status]")
    progress.wait_for(state="attached")
    assert progress.get_attribute("data-status") in ("queued", "running", "completed")
    page.wait_for_selector(
        "#train-progress [data-status=completed], #train-progress [data-status=failed], "
        "#train-progress [data-status=cancelled]",
        timeout=TRAIN_MS,
    )
    assert progress.get_attribute("data-status") == "completed", text_of(page, "#train-message")
    return progress.get_attribute("data-run")


def meter(page: Any, label: str) -> float:
    """The probability the Predict tab's bar shows for `label`."""
    return float(page.locator(f"#predict-probabilities meter[aria-label={label}]").get_attribute("value"))


# ------------------------------------------------------------------------------------- tests


def test_upload_train_predict_explain_as_a_person_does(visit: Visit, tmp_path: Path) -> None:
    page = visit.page
    upload(page, write_toy_csv(tmp_path / "reviews.csv", n=120, seed=4))

    # the preview, the guessed columns and the label distribution
    assert "120 rows, 2 classes" in wait_for_text(page, "#data-summary", "rows")
    assert page.input_value("#text-column input") == "text"
    assert page.input_value("#label-column input") == "label"
    preview = text_of(page, "#data-preview")
    assert toy_rows(120, 4)[0][0] in preview and "label" in preview
    page.locator("#label-distribution .main-svg").first.wait_for()
    assert "read reviews.csv" in text_of(page, "#upload-message")  # how it was read, not a problem
    screenshot(page, "train-uploaded")

    run_id = train(page)
    assert re.search(r"completed · 100%", text_of(page, "#train-progress"))
    metrics = wait_for_text(page, "#train-metrics", "accuracy")
    assert f"Run {run_id}: completed" in metrics and re.search(r"validation: accuracy \d\.\d{3}", metrics)
    assert "now the active model" in text_of(page, "#train-message")
    per_class = text_of(page, "#train-per-class")
    assert "neg" in per_class and "pos" in per_class and "precision" in per_class
    page.locator("#train-curves .main-svg").first.wait_for()
    page.locator("#train-confusion .main-svg").first.wait_for()
    screenshot(page, "train")

    open_tab(page, "examples")
    examples = text_of(page, "#tab-examples")
    assert all(example.title in examples for example in EXAMPLES.values())
    assert page.locator("#example-movie-reviews").is_enabled()
    screenshot(page, "examples")

    # Predict: the new run is the active model, and the probabilities follow the text
    open_tab(page, "predict")
    assert page.input_value("#predict-run input").startswith(run_id)
    page.fill("#predict-text textarea", "great wonderful superb film")
    page.wait_for_selector("#predict-probabilities [data-testid=label-output-value]")
    first = meter(page, "pos")
    assert meter(page, "neg") + first == pytest.approx(1.0, abs=1e-4)
    assert re.search(r"\d+%", text_of(page, "#predict-probabilities"))
    page.locator("#predict-text textarea").press_sequentially(" but awful boring dreadful", delay=20)
    page.wait_for_function(
        "p => Number(document.querySelector('#predict-probabilities meter[aria-label=pos]').value) !== p",
        arg=first,
    )
    assert text_of(page, "#predict-probabilities [data-testid=label-output-value]") in ("neg", "pos")
    screenshot(page, "predict")

    # Explain: one row of highlighted words per method, the methods table, the plots
    open_tab(page, "explain")
    sentence = "the film was great but the plot dull"
    page.fill("#explain-text textarea", sentence)
    page.click("#explain-button")
    page.wait_for_selector("#explain-highlights .lstm-demo-token")
    highlights = text_of(page, "#explain-highlights")
    for title in ("Integrated Gradients", "Occlusion", "Saliency"):
        assert title in highlights and title in text_of(page, "#explain-table")
    tokens = page.locator("#explain-highlights .lstm-demo-token").all_inner_texts()
    assert tokens == sentence.split() * 3
    assert re.search(r"explaining '(neg|pos)' \(p = \d\.\d{3}", highlights)
    page.locator("#decision-path .main-svg").first.wait_for()
    page.locator("#gate-heatmaps .main-svg").first.wait_for()
    screenshot(page, "explain")

    open_tab(page, "runs")
    wait_for_text(page, "#runs-table", re.escape(run_id))
    assert "reviews.csv" in text_of(page, "#runs-table")
    screenshot(page, "runs")

    open_tab(page, "about")
    assert "forget" in text_of(page, "#tab-about")
    screenshot(page, "about")
    assert not visit.dialogs and not visit.errors


def test_markup_in_texts_and_names_is_shown_as_text(visit: Visit, tmp_path: Path) -> None:
    """A person's text is never HTML: the payload shows literally in every place it appears,
    nothing runs (no dialog) and no <img> element is made from it."""
    page = visit.page
    data = tmp_path / "markup.csv"
    rows = [
        (f"{text} {MARKUP}" if i % 3 == 0 else text, label) for i, (text, label) in enumerate(toy_rows(80, 5))
    ]
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *rows])

    upload(page, data)
    wait_for_text(page, "#data-summary", "rows")
    assert MARKUP in text_of(page, "#data-preview")  # the preview table
    run_id = train(page, name=f"mine {MARKUP}")
    assert f"mine {MARKUP}" in wait_for_text(page, "#train-metrics", "accuracy")  # the run's name

    open_tab(page, "predict")
    assert MARKUP in page.input_value("#predict-run input")  # the run dropdown's label
    page.fill("#predict-text textarea", f"great film {MARKUP}")
    page.wait_for_selector("#predict-probabilities [data-testid=label-output-value]")
    page.set_input_files("#batch-upload input[type=file]", str(data))
    page.wait_for_function("document.querySelector('#batch-text-column input').value === 'text'")
    page.click("#batch-predict")
    assert "80 texts" in wait_for_text(page, "#batch-message", "classified")
    assert MARKUP in text_of(page, "#batch-preview")  # the batch result's preview
    screenshot(page, "markup-predict")

    open_tab(page, "explain")
    page.fill("#explain-text textarea", f"great film {MARKUP}")
    page.click("#explain-button")
    page.wait_for_selector("#explain-highlights .lstm-demo-token")
    for row in page.locator("#explain-highlights tr").all_inner_texts():
        assert row.rstrip().endswith(f"great film {MARKUP}")
    assert MARKUP in page.input_value("#explain-run input")
    # the plots label their axes with the tokenizer's tokens, each one shown as text
    page.locator("#gate-heatmaps .main-svg").first.wait_for()
    for plot, axis in (("#decision-path", "xtick"), ("#gate-heatmaps", "ytick")):
        ticks = [t.text_content() for t in page.locator(f"{plot} .{axis}").all()]
        assert "".join(ticks) == "greatfilm" + MARKUP.replace(" ", ""), ticks
    screenshot(page, "markup-explain")

    open_tab(page, "runs")
    assert f"mine {MARKUP}" in wait_for_text(page, "#runs-table", re.escape(run_id))

    page.wait_for_timeout(500)  # a broken image's onerror fires as soon as it is attached; give it time
    assert page.locator('img[src="x"]').count() == 0
    assert visit.dialogs == [] and visit.errors == []


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("picture.csv", b"\x89PNG\r\n\x1a\n" + bytes(64), "is a PNG image, not a table"),
        ("header-only.csv", b"text,label\n", "has a header ('text', 'label') but no data rows"),
    ],
)
def test_a_bad_upload_is_answered_next_to_it_and_the_app_keeps_working(
    visit: Visit, tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    page = visit.page
    bad = tmp_path / name
    bad.write_bytes(content)
    upload(page, bad)
    message = wait_for_text(page, "#upload-message", re.escape(says))
    assert message.startswith(name) and page.locator("#upload-message [role=alert]").count() == 1
    assert page.input_value("#text-column input") == ""  # nothing half-read is offered

    page.click("#train-start")  # starting anyway gets the same message, and no training
    page.wait_for_timeout(1000)
    assert says in text_of(page, "#upload-message")
    assert page.locator("#train-start").is_enabled()  # and Start can be pressed again
    assert page.locator("#train-progress [data-status]").count() == 0
    assert "Traceback" not in text_of(page, "body") and page.locator(".toast-body").count() == 0

    upload(page, write_toy_csv(tmp_path / "good.csv", n=40))  # the same page goes on working
    assert "40 rows, 2 classes" in wait_for_text(page, "#data-summary", "rows")
    assert says not in text_of(page, "#upload-message")
    assert page.input_value("#text-column input") == "text"
    assert not visit.dialogs and not visit.errors


# ------------------------------------------------------------------------ no dead ends (issue 12)

SIZES = {"1280x800": (1280, 800), "1920x1080": (1920, 1080)}


def api_train(url: str, path: Path, name: str, wait: bool = True, epochs: int = 2, **options: Any) -> str:
    """Train through the app's HTTP API (quicker to set up than clicks); returns the run id."""
    client = Client(url, verbose=False)
    job = client.submit(handle_file(str(path)), "", "", "fast", epochs, json.dumps(options), name, wait,
                        api_name="/train")  # fmt: skip
    return job.result(timeout=TRAIN_MS / 1000)["run_id"]


@pytest.fixture(scope="module")
def two_runs(app_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A two-layer run, then a one-layer run, on the same file (names say which)."""
    data = write_toy_csv(tmp_path_factory.mktemp("data") / "movies.csv", n=100, seed=7)
    two = api_train(app_url, data, "two layers", model__num_layers=2, train__learning_rate=0.01)
    one = api_train(app_url, data, "one layer")
    return {"two": two, "one": one}


def api_cancel(url: str, run_id: str) -> None:
    """Cancel a training through the HTTP API and wait until it has ended: a page the next test opens
    follows no leftover (a page with nothing of its own follows the newest training of anyone's)."""
    client = Client(url, verbose=False)
    try:
        client.predict(run_id, api_name="/cancel")
    except Exception:  # it ended already
        pass
    deadline = time.monotonic() + TRAIN_MS / 1000
    while client.predict(run_id, api_name="/train_status")["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"run {run_id} did not end after its cancel"
        time.sleep(0.5)


def choose(page: Any, dropdown: str, option: str) -> None:
    """Pick the option whose label contains `option` in a Gradio dropdown."""
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()


def no_error_toast(page: Any) -> None:
    page.wait_for_timeout(500)  # an error toast arrives just after the answer it belongs to
    assert page.locator(".toast-body").count() == 0, text_of(page, "body")[-500:]
    assert "is not in the list of choices" not in text_of(page, "body")


def test_importing_a_bundle_leaves_the_runs_tab_usable(
    visit: Visit, two_runs: dict[str, str], tmp_path: Path
) -> None:
    page = visit.page
    open_tab(page, "runs")
    wait_for_text(page, "#runs-table", re.escape(two_runs["one"]))
    choose(page, "#runs-run", two_runs["one"])
    wait_for_text(page, "#runs-detail", f"Run {two_runs['one']}")
    page.click("#runs-bundles button")  # open the section
    page.click("#runs-export")
    page.wait_for_selector("#runs-export-file a[download], #runs-export-file a")
    with page.expect_download() as download:
        page.locator("#runs-export-file a").first.click()
    bundle = tmp_path / download.value.suggested_filename
    download.value.save_as(bundle)
    page.set_input_files("#runs-import input[type=file]", str(bundle))
    message = wait_for_text(page, "#runs-message", "imported as run")
    new_id = re.search(r"imported as run (\S+)", message).group(1)
    wait_for_text(page, "#runs-detail", f"Run {new_id}")  # the imported run is chosen and shown
    assert new_id in page.input_value("#runs-run input")
    no_error_toast(page)
    choose(page, "#runs-run", two_runs["two"])  # and the picker goes on working
    wait_for_text(page, "#runs-detail", f"Run {two_runs['two']}")
    no_error_toast(page)
    assert not visit.errors


def test_explaining_with_a_one_layer_run_after_a_two_layer_run(
    visit: Visit, two_runs: dict[str, str]
) -> None:
    page = visit.page
    open_tab(page, "explain")
    page.fill("#explain-text textarea", "great film but dull plot")
    for run, top in ((two_runs["two"], "layer 1"), (two_runs["one"], "layer 0")):
        choose(page, "#explain-run", run)
        page.wait_for_timeout(500)
        page.click("#explain-button")
        wait_for_text(page, "#gate-heatmaps", top)  # each run's top layer (the heatmaps come after the words)
        page.locator("#gate-heatmaps .main-svg").first.wait_for()
    no_error_toast(page)
    assert not visit.errors


def test_the_batch_preview_shows_the_predictions_in_view(
    visit: Visit, two_runs: dict[str, str], tmp_path: Path
) -> None:
    page = visit.page
    open_tab(page, "predict")
    long = tmp_path / "long.csv"
    with long.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *((" ".join([t] * 30), y) for t, y in toy_rows(30))])
    page.set_input_files("#batch-upload input[type=file]", str(long))
    page.wait_for_function("document.querySelector('#batch-text-column input').value === 'text'")
    page.click("#batch-predict")
    wait_for_text(page, "#batch-message", "classified")
    headers = page.locator("#batch-preview thead th").all_inner_texts()
    assert [h.strip() for h in headers][:3] == ["predicted", "confidence", "label"]
    box = page.locator("#batch-preview thead th").nth(1).bounding_box()
    assert box["x"] + box["width"] <= page.viewport_size["width"]  # on screen, not scrolled away
    screenshot(page, "predict-batch")


def test_a_numeric_label_column_warns_when_chosen(visit: Visit, tmp_path: Path) -> None:
    page = visit.page
    data = tmp_path / "scores.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [("text", "label", "score"), *((t, y, str(i)) for i, (t, y) in enumerate(toy_rows(120)))]
        )
    upload(page, data)
    wait_for_text(page, "#data-summary", "2 classes")
    choose(page, "#label-column", "score")
    warning = wait_for_text(page, "#label-check", "numbers")
    assert "score or an id" in warning
    screenshot(page, "train-label-warning")


def test_a_failed_upload_clears_the_preview_and_an_unnamed_column_shows_by_name(
    visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    indexed = tmp_path / "indexed.csv"
    with indexed.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [("", "text", "label"), *((str(i), t, y) for i, (t, y) in enumerate(toy_rows(40)))]
        )
    upload(page, indexed)
    wait_for_text(page, "#data-summary", "40 rows")
    assert "(unnamed 1)" in text_of(page, "#data-preview")
    page.locator("#text-column input").click()
    assert "(unnamed 1)" in page.get_by_role("listbox").inner_text()
    page.keyboard.press("Escape")
    bad = tmp_path / "picture.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    upload(page, bad)
    wait_for_text(page, "#upload-message", "PNG")
    assert toy_rows(40)[0][0] not in text_of(page, "#data-preview")  # no stale rows
    assert page.input_value("#label-column input") == ""


def test_a_double_click_on_start_trains_once_and_a_test_file_gives_test_figures(
    visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    upload(page, write_toy_csv(tmp_path / "twice.csv", n=80, seed=11))
    wait_for_text(page, "#data-summary", "rows")
    page.click("#test-section button")
    page.set_input_files(
        "#test-upload input[type=file]", str(write_toy_csv(tmp_path / "held.csv", n=30, seed=12))
    )
    page.wait_for_timeout(500)
    page.dblclick("#train-start")
    page.wait_for_selector("#train-progress [data-status=completed]", timeout=TRAIN_MS)
    assert "test: accuracy" in wait_for_text(page, "#train-metrics", "accuracy")
    assert page.locator("#train-start").inner_text().strip() == "Start training"  # unlocked, with its label
    page.wait_for_timeout(1500)  # a second run, if the click made one, would be queued by now
    open_tab(page, "runs")
    rows = wait_for_text(page, "#runs-table", "twice.csv")
    assert rows.count("twice.csv") == 1
    row = page.locator("#runs-table [role=row]", has_text="twice.csv").first.inner_text()
    assert re.search(r"completed\s.*\d\.\d{3}\s+\d\.\d{3}", row)  # val acc and test acc
    assert not visit.errors


def test_a_reloaded_page_re_attaches_to_the_running_training(
    visit: Visit, app_url: str, tmp_path: Path
) -> None:
    page = visit.page
    data = write_toy_csv(tmp_path / "long.csv", n=LONG_ROWS, seed=3)
    run_id = api_train(app_url, data, "long", wait=False, epochs=100)
    page.reload()
    progress = page.locator(f"#train-progress [data-run='{run_id}']")
    progress.wait_for(state="attached")
    assert progress.get_attribute("data-status") in ("queued", "running")
    page.click("#train-cancel")
    wait_for_text(page, "#train-message", f"cancelling run {run_id}|was cancelled")
    page.wait_for_selector(f"#train-progress [data-run='{run_id}'][data-status=cancelled]", timeout=TRAIN_MS)


def test_the_run_page_and_runs_side_by_side(visit: Visit, two_runs: dict[str, str]) -> None:
    page = visit.page
    open_tab(page, "runs")
    headers = [h.strip() for h in page.locator("#runs-table thead th").all_inner_texts()]
    assert headers[:4] == ["status", "name", "val acc", "test acc"]
    wait_for_text(page, "#runs-table", re.escape(two_runs["two"]))
    choose(page, "#runs-run", two_runs["two"])
    settings = wait_for_text(page, "#runs-settings", "num_layers")
    assert "movies.csv" in settings and "fingerprint" in settings and "label counts" in settings
    page.locator("#runs-run-curves .main-svg").first.wait_for()
    page.click("#runs-compare-section button")
    for run in (two_runs["two"], two_runs["one"]):
        choose(page, "#runs-compare", run)
    table = wait_for_text(page, "#runs-compare-table", r"\d+ of \d+ rows differ")
    assert "model.num_layers" in table and "two layers" in table and "one layer" in table
    marked = page.locator("#runs-compare-table tr.lstm-demo-differs").all_inner_texts()
    assert any("model.num_layers" in row for row in marked)
    legend = " ".join(page.locator("#runs-curves .legendtext").all_text_contents())
    # one legend group per run, titled with its name, holding one entry per metric
    assert legend.startswith("two layers train loss") and "one layer train loss" in legend
    screenshot(page, "runs-compare")
    no_error_toast(page)


def test_delete_asks_for_confirmation(visit: Visit, two_runs: dict[str, str]) -> None:
    page = visit.page
    open_tab(page, "runs")
    wait_for_text(page, "#runs-table", re.escape(two_runs["one"]))
    choose(page, "#runs-run", two_runs["one"])
    page.click("#runs-delete")
    assert f"delete run {two_runs['one']}" in wait_for_text(page, "#runs-confirm-text", "delete run")
    page.click("#runs-delete-keep")
    page.wait_for_selector("#runs-confirm", state="hidden")
    page.click("#runs-refresh")
    wait_for_text(page, "#runs-table", re.escape(two_runs["one"]))  # still there


def test_layout_shows_what_matters_and_promises_only_what_is_measured(
    visit: Visit, two_runs: dict[str, str]
) -> None:
    page = visit.page
    open_tab(page, "examples")
    assert "second" not in text_of(page, "#tab-examples").lower()
    open_tab(page, "explain")
    assert not page.locator("#compare-column").is_visible()  # no empty column for a second run
    page.fill("#explain-text textarea", "great film")
    page.locator("#explain-methods label", has_text="Integrated Gradients").first.click()  # untick IG
    page.locator("#explain-methods label", has_text="Occlusion").first.click()  # and occlusion
    page.click("#explain-button")
    caption = wait_for_text(page, "#explain-highlights", "explaining")
    assert "Red pushes towards" not in caption and "without a direction" in caption  # saliency alone
    choose(page, "#explain-compare", two_runs["two"])
    page.wait_for_selector("#compare-column", state="visible")
    no_error_toast(page)


def test_screenshots_of_every_tab_at_two_sizes(browser: Any, app_url: str, two_runs: dict[str, str]) -> None:
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(ANSWER_MS)
        page = context.new_page()
        page.goto(app_url)
        page.wait_for_selector("#train-upload input[type=file]", state="attached")
        for name in TABS:
            open_tab(page, name)
            if name == "explain":
                page.fill("#explain-text textarea", "a great film with a dull plot")
                page.click("#explain-button")
                page.locator("#gate-heatmaps .main-svg").first.wait_for()
            if name == "runs":
                wait_for_text(page, "#runs-table", re.escape(two_runs["one"]))
                choose(page, "#runs-run", two_runs["one"])
                wait_for_text(page, "#runs-detail", "Run")
            page.wait_for_timeout(300)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=False)
        context.close()


def test_the_estimate_before_start_says_the_time_per_epoch_and_the_device(
    visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    page.wait_for_selector("#train-start:has-text('Start training')")  # the page load leaves Start labelled
    upload(page, write_toy_csv(tmp_path / "estimated.csv", n=200, seed=5))
    wait_for_text(page, "#data-summary", "rows")
    page.click("#train-estimate-button")
    said = wait_for_text(page, "#train-estimate", "Estimate:", timeout=TRAIN_MS)
    assert re.search(r"Estimate: (about \d+s|under a second) per epoch on this machine's cpu", said), said
    assert "for 8 epochs" in said and "180 training rows" in said  # the fast preset, 10% held out
    screenshot(page, "train-estimate")
    choose(page, "#preset", "default")  # other settings: the estimate no longer holds
    wait_for_text(page, "#train-estimate", "^\\s*$")
    assert page.locator("#train-progress [data-status]").count() == 0  # nothing was trained
    assert not visit.errors


def set_number(page: Any, slider: str, value: int) -> None:
    """Type a value into a Gradio slider's number box (taken when the box loses focus)."""
    box = page.locator(f"{slider} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


# every run id the Train tab's progress ever showed, and every message, from the page's first paint:
# a page that followed a training only for a moment is caught too
WATCH = """
window.__runs = new Set(); window.__messages = [];
new MutationObserver(() => {
  const run = document.querySelector('#train-progress [data-run]');
  if (run) window.__runs.add(run.getAttribute('data-run'));
  const msg = document.querySelector('#train-message');
  const text = msg ? msg.innerText.trim() : '';
  if (text && window.__messages[window.__messages.length - 1] !== text) window.__messages.push(text);
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


def seen(page: Any) -> tuple[set[str], list[str]]:
    """The run ids and messages the Train tab has shown since the page loaded."""
    runs, messages = page.evaluate("[Array.from(window.__runs), window.__messages]")
    return set(runs), messages


def start_long_training(page: Any, path: Path) -> Any:
    """Write a toy file at `path`, upload it and start a 100-epoch `fast` training of it; returns its
    progress element once shown. `LONG_ROWS` rows: it outlasts the test's next steps on any machine."""
    upload(page, write_toy_csv(path, n=LONG_ROWS, seed=8))
    wait_for_text(page, "#data-summary", "rows")
    set_number(page, "#epochs", 100)
    page.click("#train-start")
    progress = page.locator("#train-progress [data-run][data-status]")
    progress.wait_for(state="attached")
    return progress


def test_a_second_tab_follows_its_own_training_not_the_newest(
    visit: Visit, app_url: str, tmp_path: Path
) -> None:
    """This browser's training is followed by its second tab, though a newer one (from the HTTP API) waits."""
    page = visit.page
    run_id = start_long_training(page, tmp_path / "mine.csv").get_attribute("data-run")
    newest = api_train(
        app_url, write_toy_csv(tmp_path / "theirs.csv", n=LONG_ROWS), "theirs", wait=False, epochs=100
    )
    page.context.add_init_script(WATCH)  # every run the second tab shows, from its first paint
    second = page.context.new_page()  # the same browser: its local storage, not its Gradio session
    try:
        second.goto(app_url)
        progress = second.locator(f"#train-progress [data-run='{run_id}']")
        progress.wait_for(state="attached")
        assert f"following your run {run_id}" in wait_for_text(second, "#train-message", "following")
        assert progress.get_attribute("data-status") in ("queued", "running")
        second.click("#train-cancel")
        wait_for_text(second, "#train-message", f"cancelling run {run_id}|was cancelled")
        second.wait_for_selector(
            f"#train-progress [data-run='{run_id}'][data-status=cancelled]", timeout=TRAIN_MS
        )
        second.wait_for_timeout(5_000)  # the newest training runs now: this tab stays on its own run
        runs, messages = seen(second)
        assert runs == {run_id} and not any(newest in m for m in messages), messages
        assert "was cancelled" in text_of(second, "#train-message")
    finally:
        second.close()
        api_cancel(app_url, newest)
    assert newest != run_id and not visit.errors


def test_an_integrated_gradients_delta_over_the_tolerance_shows_a_banner_over_the_attributions(
    visit: Visit, app_url: str, tmp_path: Path
) -> None:
    """A model trained with a huge step size is far from linear: 8 integration steps miss the score change
    by far more than the 5% tolerated (48-80% on this sentence when measured)."""
    data = write_toy_csv(tmp_path / "sharp.csv", n=100, seed=7)
    run_id = api_train(app_url, data, "sharp", epochs=4, train__learning_rate=1.0, train__grad_clip=0.0)
    page = visit.page
    open_tab(page, "explain")
    choose(page, "#explain-run", run_id)
    page.fill("#explain-text textarea", "the film was great and dull")
    set_number(page, "#explain-steps", 8)
    page.click("#explain-button")
    banner = wait_for_text(page, "#explain-message", "tolerated")
    assert "Integrated Gradients" in banner and "raise the integration steps" in banner
    page.wait_for_selector("#explain-highlights .lstm-demo-token")
    warning = page.locator("#explain-message .lstm-demo-msg-warning")
    assert warning.is_visible()
    over, words = warning.bounding_box(), page.locator("#explain-highlights").bounding_box()
    assert over["y"] + over["height"] <= words["y"]  # above the coloured words, not below them
    assert "NO" in text_of(page, "#explain-table")
    screenshot(page, "explain-ig-warning")
    assert not visit.errors


def test_an_examples_training_is_followed_by_a_second_tab(visit: Visit, app_url: str) -> None:
    page = visit.page
    open_tab(page, "examples")
    page.click("#example-movie-reviews")
    progress = page.locator("#train-progress [data-status]")
    progress.wait_for(state="attached")
    run_id = progress.get_attribute("data-run")
    second = page.context.new_page()
    try:
        second.goto(app_url)
        second.locator(f"#train-progress [data-run='{run_id}']").wait_for(state="attached")
        assert f"following your run {run_id}" in wait_for_text(second, "#train-message", "following")
        second.click("#train-cancel")
    finally:
        second.close()
    page.wait_for_selector(
        f"#train-progress [data-run='{run_id}'][data-status=cancelled], "
        f"#train-progress [data-run='{run_id}'][data-status=completed]",
        timeout=TRAIN_MS,
    )
    assert not visit.errors


def test_vectors_uploaded_in_the_advanced_section_start_the_embedding_and_their_coverage_shows(
    visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    rows = toy_rows(100, seed=6)
    data = tmp_path / "worded.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    glove = write_vectors(ppmi_svd([t for t, _ in rows], dim=8, min_count=1), tmp_path / "toy-glove.txt")
    upload(page, data)
    wait_for_text(page, "#data-summary", "rows")
    page.click("#advanced button")
    page.set_input_files("#vectors-upload input[type=file]", str(glove))
    said = wait_for_text(page, "#vectors-message", r"toy-glove\.txt: \d+ words of 8 dimensions")
    assert "added to the vectors folder" in said
    assert page.input_value("#vectors-choice input") == "toy-glove.txt"  # chosen as soon as it is added
    page.check("#vectors-freeze input[type=checkbox]")
    train(page)
    shown = wait_for_text(page, "#train-metrics", "pretrained vectors")
    assert re.search(
        r"pretrained vectors \(toy-glove\.txt, 8 dimensions, frozen\) cover \d+ of \d+", shown
    ), shown
    screenshot(page, "train-vectors")
    assert not visit.errors
