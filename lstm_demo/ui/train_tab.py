"""Train tab: upload, preview, columns (checked when chosen), label distribution, an optional test file,
preset and hyperparameters, start and cancel, live progress and curves, then the finished run's
metrics, per-class table, confusion matrix and mistakes.

"Estimate time" times a few training steps of the model these settings would build, before Start.
Training runs behind the service; the Start handler is a generator that follows the job and streams
what it reports, so closing the page does not stop the training. A page opened or reloaded while
a training of the same person is queued or running follows it again: the logged-in user's, or
without a login this browser's (any of its tabs), else the newest of anyone's. The handlers are
module-level functions of plain values; `build` only lays out and wires them.
"""

from __future__ import annotations

import functools
import html
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

from ..config import PRESETS
from ..figures import runs as charts
from ..service import Service, trial_of
from . import results
from .common import duration, fmt, message_html, user_message
from .hyperparameters import build_controls, build_vectors, overrides_from, preset_values

MISSED_SHOWN = 12  # misclassified examples listed after a training
FOLLOW_SECONDS, HEARTBEAT_SECONDS = 0.5, 2.0  # progress redrawn at most this often; a queued place this often


class Inspected(NamedTuple):
    """What an upload or a change of columns shows, in `build`'s output order."""

    message: str = ""
    preview: Any = None
    text_column: Any = None
    label_column: Any = None
    label_check: str = ""  # the label column's warnings, next to its dropdown
    distribution: Any = None
    summary: str = ""


class Training(NamedTuple):
    """What following a training shows, in `build`'s output order; `gr.skip()` leaves a part as it is."""

    job_id: Any = gr.skip()
    upload_message: Any = gr.skip()
    message: Any = gr.skip()
    progress: Any = gr.skip()
    curves: Any = gr.skip()
    metrics: Any = gr.skip()
    per_class: Any = gr.skip()
    confusion: Any = gr.skip()
    missed: Any = gr.skip()
    active: Any = gr.skip()
    start: Any = gr.skip()  # the Start button: locked while a submission is in flight
    trials: Any = gr.skip()  # an `auto` run's search, one row per trial


class Visitor(NamedTuple):
    """Whom a handler serves: one page load (Gradio's session hash) and the person behind it."""

    page: str | None
    owner: str | None  # "user:NAME" when logged in, else "browser:ID" (an id in the browser's local storage)
    logged_in: bool = False  # with a login a page follows only its user's trainings, never anyone's


def visitor(request: Any, browser: str | None) -> Visitor:
    user = getattr(request, "username", None)
    if user:
        return Visitor(request.session_hash, f"user:{user}", True)
    return Visitor(request.session_hash, f"browser:{browser}" if browser else None)


def browser_id(current: str | None) -> str:
    """This browser's id, kept in its local storage (so its tabs and reloads share it); made on first visit."""
    return current or uuid.uuid4().hex


BUSY = "your training is already starting or running: wait for it to end, or cancel it"
_busy: set[str] = set()  # pages between a Start click and the end of the training it started
_busy_lock = threading.Lock()
CLEARED = {
    "curves": None,
    "metrics": "",
    "per_class": None,
    "confusion": None,
    "missed": None,
    "trials": None,
}
START = "Start training"


# ---------------------------------------------------------------------------------- the data


def start_button(enabled: bool) -> Any:
    """The Start button's update, new each time (Gradio consumes it); the label goes with every change,
    since an update without one leaves the button blank."""
    return gr.update(value=START if enabled else "Starting…", interactive=enabled)


def _column_choices(columns: Any, value: str | None) -> Any:
    return gr.update(choices=list(columns), value=value)


def distribution_view(found: Any) -> Inspected:
    """Label counts, their warnings and a one-line summary of an inspected table with both columns chosen."""
    counts = found.label_counts or {}
    summary = (
        f"{found.rows:,} rows, {len(counts)} classes "
        f"(text column {found.text_column!r}, label column {found.label_column!r})"
    )
    return Inspected(
        message=message_html(list(found.notes), "info"),
        label_check=message_html(list(found.warnings), "warning"),
        distribution=charts.label_distribution(counts) if counts else None,
        summary=f"<p>{html.escape(summary)}</p>",
    )


def inspect_file(service: Service, path: str | None) -> Inspected:
    """Preview an uploaded (or example) file, preselect the guessed columns, count and check the labels.

    A file that cannot be read clears everything the previous file left, so nothing stale is offered.
    """
    cleared = Inspected(text_column=_column_choices([], None), label_column=_column_choices([], None))
    if not path:
        return cleared
    try:
        found = service.inspect(path)
    except Exception as e:
        return cleared._replace(message=message_html(user_message(e)))
    if found.text_column and found.label_column:
        out = distribution_view(found)
    else:  # the notes say which column to choose
        out = Inspected(message=message_html(list(found.notes), "info"))
    return out._replace(
        preview=gr.update(value=[list(r) for r in found.preview], headers=list(found.columns)),
        text_column=_column_choices(found.columns, found.text_column),
        label_column=_column_choices(found.columns, found.label_column),
    )


def on_columns(service: Service, path: str | None, text: str | None, label: str | None) -> Inspected:
    """A column chosen by hand: the labels counted and checked at once, not at Start."""
    keep = {"preview": gr.skip(), "text_column": gr.skip(), "label_column": gr.skip()}
    if not path or not text or not label:
        return Inspected(**keep)
    if text == label:
        return Inspected(**keep, label_check=message_html("the text and label columns must differ"))
    try:
        found = service.inspect(path, text, label)
    except Exception as e:
        return Inspected(**keep, label_check=message_html(user_message(e)))
    return distribution_view(found)._replace(**keep)


def on_preset(name: str) -> list[Any]:
    cfg = PRESETS.get(name, PRESETS["fast"])
    return [cfg.train.epochs, *preset_values(cfg)]


# ---------------------------------------------------------------------------------- pretrained vectors

VECTORS_UPLOAD = "upload one vectors file: a .txt or .vec text file, or a .npy together with its .vocab"


def vectors_choices(service: Service, chosen: str = "") -> Any:
    """The vectors dropdown: none, or a file of the app's vectors folder."""
    names = service.vectors_files()
    return gr.update(choices=[("none", ""), *names], value=chosen if chosen in names else "")


def add_vectors(service: Service, files: list[str] | None) -> tuple[str, Any]:
    """Uploaded vectors checked and put in the app's vectors folder, then chosen; a refused file is said
    next to the upload and the choice stays as it was."""
    paths = [p for p in files or [] if p]
    if not paths:
        return "", gr.skip()
    vocab = [p for p in paths if os.path.splitext(p)[1].lower() == ".vocab"]
    main = [p for p in paths if p not in vocab]
    if len(main) != 1 or len(vocab) > 1:
        return message_html(VECTORS_UPLOAD), gr.skip()
    try:
        shelved = service.add_vectors(main[0], vocab=vocab[0] if vocab else None)
    except Exception as e:
        return message_html(user_message(e)), gr.skip()
    said = f"{shelved.name}: {shelved.words:,} words of {shelved.dim} dimensions" + (
        ", added to the vectors folder" if shelved.added else ", already in the vectors folder"
    )
    return message_html(said, "ok"), vectors_choices(service, shelved.name)


def vectors_options(name: str | None, freeze: bool) -> dict[str, Any]:
    """The form's vectors as run options: none unless a file is chosen."""
    return {"train__vectors": name, "train__freeze_vectors": bool(freeze)} if name else {}


# ---------------------------------------------------------------------------------- the estimate


def estimate(
    service: Service,
    path: str | None,
    text: str | None,
    label: str | None,
    preset_name: str,
    n_epochs: float,
    vectors_name: str | None,
    freeze_vectors: bool,
    *values: Any,
) -> str:
    """The "Estimate time" button: a few training steps of the model the form would train, timed here."""
    if not path:
        return message_html("upload a CSV or TSV file first, then estimate its time per epoch", "info")
    try:
        found = service.estimate(
            path,
            preset_name=preset_name or "fast",
            text_column=text or None,
            label_column=label or None,
            overrides={
                **overrides_from(values),
                **vectors_options(vectors_name, freeze_vectors),
                "train__epochs": int(n_epochs),
            },
        )
    except Exception as e:
        return message_html(user_message(e))
    return estimate_html(found, busy=service.active_job() is not None)


def estimate_html(found: Any, busy: bool = False) -> str:
    """What an estimate says: per epoch and for every epoch, on which device, from how many steps."""
    cfg = found.config
    lines = [
        f"Estimate: {_about(found.seconds_per_epoch)} per epoch on this machine's {found.device}, so up to "
        f"{_about(found.seconds_total)} for {found.epochs} epochs (early stopping may end it sooner).",
        f"Measured now: {found.steps_timed} training steps of {cfg.model.encoder}, embedding size "
        f"{cfg.model.embedding_dim}, hidden size "
        f"{cfg.model.hidden_size}, batch {cfg.train.batch_size} "
        f"({fmt(found.seconds_per_step, 3)} s a step, {found.steps_per_epoch} steps an epoch for "
        f"{found.train_rows:,} training rows); validating after each epoch adds a little.",
    ]
    if cfg.preset == "auto":
        lines.append(
            f"auto first searches settings for up to {duration(cfg.train.budget)}; this is its first trial."
        )
    if busy:
        lines.append("A training was running meanwhile: it shared the machine, so this is on the high side.")
    return f'<div class="lstm-demo-estimate">{message_html(lines, "info")}</div>'


def _about(seconds: float) -> str:
    return "under a second" if seconds < 1 else f"about {duration(seconds)}"


def no_estimate() -> str:
    """An estimate is for one file and one set of settings: cleared when they change."""
    return ""


# ---------------------------------------------------------------------------------- training


def progress_html(job: Any, position: int | None, stored: Any = None) -> str:
    """A progress bar with the epoch, ETA and latest figures; `data-status` says how it stands.
    `stored`: the latest point stored by the replica that trains the run, when another one does."""
    p = job.progress
    fraction = 1.0 if job.status == "completed" else (p.fraction if p is not None else 0.0)
    if job.status == "queued":
        ahead = (position or 1) - 1
        text = "queued: " + (
            "starting next" if ahead == 0 else f"{ahead} run{'s' if ahead > 1 else ''} ahead of it"
        )
    elif p is None and stored is not None and not job.finished:  # only the stored points reach here
        text = " · ".join([f"running on another replica · epoch {max(stored.epoch, 1)}", *figures(stored)])
    elif p is None:
        text = job.status
    elif (trial := trial_of(p)) is not None and not job.finished:
        text = search_text(trial, fraction)
    else:
        refit = "refit on all rows, " if p.phase == "refit" else ""
        parts = [job.status if job.finished else f"{refit}epoch {max(p.epoch, 1)}/{p.epochs}"]
        if not job.finished and p.steps_per_epoch:
            parts.append(f"step {p.step}/{p.steps_per_epoch}")
        parts.append(f"{fraction:.0%}")
        if not job.finished and p.eta_seconds is not None:
            parts.append(f"ETA {duration(p.eta_seconds)}")
        parts.append(f"elapsed {duration(p.elapsed)}")
        text = " · ".join([*parts, *figures(p)])
    run = html.escape(job.run_id)
    return (
        f'<div class="lstm-demo-progress" data-status="{html.escape(job.status)}" data-run="{run}">'
        f'<div class="lstm-demo-progress-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{fraction * 100:.0f}"><div style="width: {fraction * 100:.1f}%"></div></div>'
        f'<div class="lstm-demo-progress-text">run {run}: {html.escape(text)}</div></div>'
    )


def figures(point: Any) -> list[str]:
    """The latest loss and validation accuracy of a report (`train.Progress`, or a stored point)."""
    parts = [f"loss {point.train_loss:.4f}"] if point.train_loss is not None else []
    return parts + ([f"val acc {point.val_accuracy:.3f}"] if point.val_accuracy is not None else [])


def search_text(trial: Any, fraction: float) -> str:
    """An `auto` run's search as the progress bar says it: the trial, the best so far, the budget used."""
    best = (
        ""
        if trial.best_number is None
        else f" · best so far trial {trial.best_number}: {abs(trial.best_value):.3f}"
    )
    return f"searching settings: trial {trial.number} {trial.state}{best} · {fraction:.0%} of the budget"


def start(
    service: Service,
    who: Visitor,
    path: str | None,
    test_path: str | None,
    text: str | None,
    label: str | None,
    preset_name: str,
    n_epochs: float,
    name: str,
    vectors_name: str | None,
    freeze_vectors: bool,
    *values: Any,
) -> Iterator[Training]:
    """The Start button: the form's file, columns, preset, pretrained vectors and hyperparameters."""
    if not path:
        yield Training(
            upload_message=message_html("upload a CSV or TSV file first (or try one in the Examples tab)"),
            start=start_button(True),
        )
        return
    yield from follow_new(
        service,
        functools.partial(
            service.prepare,
            path,
            test_path=test_path or None,
            text_column=text or None,
            label_column=label or None,
            preset_name=preset_name or "fast",
            overrides={
                **overrides_from(values),
                **vectors_options(vectors_name, freeze_vectors),
                "train__epochs": int(n_epochs),
            },
            name=(name or "").strip() or None,
        ),
        who,
    )


def start_example(service: Service, who: Visitor, name: str, encoder: str | None) -> Iterator[Training]:
    """An example's button: its own preset and settings, whatever the form says."""
    yield from follow_new(service, functools.partial(service.prepare_example, name, encoder), who)


def follow_new(
    service: Service, prepare: Callable[[], Any], who: Visitor | None = None
) -> Iterator[Training]:
    """Validate and queue the run (Start locked meanwhile), then stream its progress until it ends.

    One page starts one training at a time: a second click that reaches the server before the button
    is locked (a double click), or while the training runs, is answered with a message, not a second run.
    """
    page = who.page if who is not None else None
    with _busy_lock:
        busy = page is not None and page in _busy
        if not busy and page is not None:
            _busy.add(page)
    if busy:
        yield Training(message=message_html(BUSY, "info"))
        return
    try:  # what the panel showed (another run, followed since the page loaded) goes
        yield Training(message="", progress="", start=start_button(False))
        try:
            job = service.submit(prepare(), who.owner if who is not None else None)
        except ValueError as e:  # the data or an option: said next to the upload, the form stays as it is
            yield Training(upload_message=message_html(user_message(e)), message="", start=start_button(True))
            return
        except Exception as e:
            yield Training(message=message_html(user_message(e)), start=start_button(True))
            return
        notes = list(job.prepared.notes) if getattr(job, "prepared", None) is not None else []
        yield Training(
            upload_message=message_html(notes, "info"), message="", start=start_button(True), **CLEARED
        )
        yield from follow(service, job)
    finally:
        with _busy_lock:
            _busy.discard(page)


def follow(service: Service, job: Any) -> Iterator[Training]:
    """Stream a job's progress and curves until it ends, then its results."""
    drawn = 0
    trials: dict[int, dict[str, Any]] = {}  # an `auto` run's trials as they stream, the latest report of each
    yield Training(job_id=job.run_id, progress=progress_html(job, service.position(job.run_id)))
    for _ in service.follow(job.run_id, interval=FOLLOW_SECONDS, heartbeat=HEARTBEAT_SECONDS):
        history = service.reports_so_far(job)
        stored = history[-1] if history and job.progress is None else None
        update = Training(progress=progress_html(job, service.position(job.run_id), stored))
        if (trial := trial_of(job.progress)) is not None:
            trials[trial.number] = trial.to_dict()
            update = update._replace(trials=results.trial_rows(list(trials.values())))
        if len(history) != drawn:
            drawn = len(history)
            update = update._replace(
                curves=charts.training_curves({job.run_id: charts.curve_points(history)})
            )
        yield update
    # drawn again at the end: the last change a follower sees may come just before the status does
    yield finished(service, job)._replace(progress=progress_html(job, None))


def reattach(service: Service, who: Visitor) -> Iterator[Training]:
    """A page (re)loaded while a training is queued or running follows the newest of its person's: the
    logged-in user's, else this browser's; without a login, else the newest of anyone's."""
    job = service.active_job(who.owner) if who.owner else None
    if job is not None:
        text = f"following your run {job.run_id}, started before this page opened"
    elif not who.logged_in and (job := service.active_job()) is not None:
        text = f"following run {job.run_id}, the newest training, started elsewhere (not from this browser)"
    else:  # said, not left out: a load event that answers nothing blanks the button's label
        yield Training(start=start_button(True))
        return
    yield Training(message=message_html(text, "info"))
    yield from follow(service, job)


def finished(service: Service, job: Any) -> Training:
    """The end of a training: its results, or what stopped it (with the last validation figures)."""
    if job.status == "failed":
        return Training(message=message_html(f"run {job.run_id} failed: {results.plain_error(job.error)}"))
    try:
        detail = service.run(job.run_id)
        summary, rows, figure = results.result_views(detail)
    except Exception as e:
        return Training(message=message_html(user_message(e)))
    if job.status != "completed":
        return Training(message=message_html(f"run {job.run_id} was {job.status}", "info"), metrics=summary)
    try:
        wrong = [
            [m.predicted, m.truth, round(m.confidence, 3), m.text]
            for m in service.mistakes(job.run_id, MISSED_SHOWN)
        ]
    except Exception as e:
        wrong, summary = [], summary + f"\n\n(mistakes not listed: {user_message(e)})"
    return Training(
        message=message_html(
            f"run {job.run_id} finished: it is now the active model in the Predict and Explain tabs", "ok"
        ),
        metrics=summary,
        per_class=rows,
        confusion=figure,
        missed=wrong,
        active=job.run_id,
        trials=results.trial_rows((detail.metrics.get("search") or {}).get("trials") or []) or None,
    )


def cancel(service: Service, run_id: str | None) -> str:
    if not run_id or not service.cancel(run_id):
        return message_html("no training of yours is queued or running", "info")
    return message_html(f"cancelling run {run_id}…", "info")


# ---------------------------------------------------------------------------------- the tab


@dataclass
class TrainTab:
    """What other tabs wire into: the Examples tab loads a file here and starts a training."""

    file: gr.File
    browser: gr.BrowserState  # the first input of `start_example`
    inspect: Callable[[str | None], Inspected]  # (path) -> the same updates as an upload
    inspect_outputs: list[Any]
    # (example name, encoder) -> a listener of the browser id that starts it and streams its updates
    start_example: Callable[[str, str | None], Callable[..., Iterator[Training]]]
    start_outputs: list[Any]
    following: Any  # the page load's following of a training, which a start replaces (`cancels`)


def build(service: Service, active: gr.State, page_load: Callable[..., Any]) -> TrainTab:
    """The tab; `page_load` is the app's `Blocks.load`, on which a page finds its browser and training."""
    job_id = gr.State(None)  # this page's latest training
    browser = gr.BrowserState(None, storage_key="lstm-demo-browser")  # whose trainings a reload follows
    gr.Markdown(
        "Upload a CSV or TSV with one text column and one label column (or try one in the Examples tab), "
        "check the columns, pick a preset and start. Training runs in the background: you can predict "
        "and explain with other models meanwhile."
    )
    with gr.Row():
        with gr.Column(scale=2):
            file = gr.File(label="training data (CSV or TSV)", file_types=[".csv", ".tsv", ".txt"], type="filepath",
                           elem_id="train-upload")  # fmt: skip
            upload_msg = gr.HTML(elem_id="upload-message")
            with gr.Row():
                text_col = gr.Dropdown(
                    label="text column", choices=[], elem_id="text-column", interactive=True
                )
                label_col = gr.Dropdown(
                    label="label column", choices=[], elem_id="label-column", interactive=True
                )
            label_check = gr.HTML(elem_id="label-check")
            data_summary = gr.HTML(elem_id="data-summary")
        with gr.Column(scale=3):
            preview = gr.Dataframe(
                label="first rows", interactive=False, wrap=True, elem_id="data-preview", max_height=260
            )
            distribution = gr.Plot(label="label distribution", elem_id="label-distribution")
    with gr.Accordion("test data (optional)", open=False, elem_id="test-section"):
        test_file = gr.File(
            label="a separate test file with the same columns: its figures are reported, never trained on",
            file_types=[".csv", ".tsv", ".txt"], type="filepath", elem_id="test-upload",
        )  # fmt: skip
    with gr.Row():
        preset = gr.Dropdown(
            label="preset", choices=list(PRESETS), value="fast", elem_id="preset",
            info="fast: seconds on a CPU; default: the tuned model, adapted to your data; seed: the design notes' "
            "Keras model; auto: searches settings within the budget (advanced), then trains the best",
        )  # fmt: skip
        epochs = gr.Slider(
            1, 100, value=PRESETS["fast"].train.epochs, step=1, label="epochs", elem_id="epochs"
        )
        run_name = gr.Textbox(label="run name (optional)", elem_id="run-name", max_length=200)
    with gr.Accordion("advanced hyperparameters", open=False, elem_id="advanced") as advanced:
        controls = build_controls(PRESETS["fast"])
        vec = build_vectors()
    with gr.Row():
        start_btn = gr.Button(START, variant="primary", elem_id="train-start")
        estimate_btn = gr.Button("Estimate time", elem_id="train-estimate-button")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
    estimate_msg = gr.HTML(elem_id="train-estimate")
    train_msg = gr.HTML(elem_id="train-message")
    progress = gr.HTML(elem_id="train-progress")
    with gr.Accordion(
        "auto: the settings tried (best on validation kept)", open=True, elem_id="train-trials-section"
    ):
        trials = gr.Dataframe(
            headers=results.TRIAL_HEADERS, interactive=False, wrap=True, elem_id="train-trials"
        )
    curves = gr.Plot(label="training curves", elem_id="train-curves")
    with gr.Row():
        with gr.Column():
            metrics = gr.Markdown(elem_id="train-metrics")
            per_class = gr.Dataframe(headers=results.PER_CLASS_HEADERS, label="per class", interactive=False,
                                     elem_id="train-per-class")  # fmt: skip
        confusion = gr.Plot(label="confusion matrix", elem_id="train-confusion")
    with gr.Accordion("misclassified examples (held-out data, most confident first)", open=False):
        missed = gr.Dataframe(headers=results.MISSED_HEADERS, interactive=False, wrap=True,
                              column_widths=["12%", "12%", "12%", "64%"], elem_id="train-misclassified")  # fmt: skip

    private: dict[str, Any] = {"api_visibility": "private"}
    inspect_outputs = [upload_msg, preview, text_col, label_col, label_check, distribution, data_summary]
    do_inspect = functools.partial(inspect_file, service)
    # one queue for uploads, clears and columns, in order: a clear's empty answer must never land after the next
    # upload's preview, nor a column's distribution after the clear
    for event in (file.upload, file.clear):
        event(do_inspect, file, inspect_outputs, concurrency_id="inspect", concurrency_limit=1, **private)
    for dropdown in (text_col, label_col):  # in the same queue: a column's answer never lands after a clear's
        dropdown.input(
            functools.partial(on_columns, service), [file, text_col, label_col], inspect_outputs,
            concurrency_id="inspect", concurrency_limit=1, **private,
        )  # fmt: skip
    preset.change(on_preset, preset, [epochs, *controls], **private)
    # one measurement at a time: it takes the machine's cores for a few seconds
    estimate_btn.click(
        functools.partial(estimate, service), [file, text_col, label_col, preset, epochs, vec.choice, vec.freeze,
                                                *controls],
        estimate_msg, concurrency_id="estimate", concurrency_limit=1, **private,
    )  # fmt: skip
    for change in (file.change, preset.change, text_col.change, label_col.change, vec.choice.change):
        change(no_estimate, None, estimate_msg, **private)
    start_outputs = [job_id, upload_msg, train_msg, progress, curves, metrics, per_class, confusion, missed, active,
                     start_btn, trials]  # fmt: skip
    follow_options: dict[str, Any] = {"concurrency_limit": None, "show_progress": "hidden", **private}
    form = [file, test_file, text_col, label_col, preset, epochs, run_name, vec.choice, vec.freeze, *controls]
    # on page load, once: this browser's id (made on its first visit), then the training to follow again.
    # Once, on the load alone: a listener on the id's changes ran a second time when the id arrived, and
    # when the followed training ended it followed the newest of anyone's in its place
    following = page_load(browser_id, browser, browser, **private).then(
        _as_visitor(reattach, service), browser, start_outputs, **follow_options
    )
    # a training started here replaces the one the page followed since it loaded (one stream per panel)
    start_btn.click(
        _as_visitor(start, service), [browser, *form], start_outputs, cancels=[following], **follow_options
    )
    cancel_btn.click(functools.partial(cancel, service), job_id, train_msg, concurrency_limit=None, **private)
    # one file read at a time: every row of it is checked before it joins the vectors folder
    vec.upload.upload(
        functools.partial(add_vectors, service), vec.upload, [vec.message, vec.choice],
        concurrency_id="vectors", concurrency_limit=1, **private,
    )  # fmt: skip
    # the folder's files each time the (closed at first) section opens: a file put there meanwhile shows
    gr.on([advanced.expand], functools.partial(vectors_choices, service), vec.choice, vec.choice, **private)
    examples = functools.partial(_as_visitor, start_example, service)
    return TrainTab(file, browser, do_inspect, inspect_outputs, examples, start_outputs, following)


def _as_visitor(handler: Callable[..., Any], service: Service, *bound: Any) -> Callable[..., Any]:
    """`handler(service, visitor, *bound, *inputs)` as a listener whose first input is the browser's id:
    Gradio passes the request by its annotation, which a `functools.partial` hides, so this stays a def."""

    def listener(request: gr.Request, browser: str | None, *inputs: Any) -> Any:
        yield from handler(service, visitor(request, browser), *bound, *inputs)

    return listener
