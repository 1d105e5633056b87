"""Predict tab: class probabilities that follow the text as it is typed, and batch prediction of a file.

The handlers are module-level functions of plain values; `build` only lays out and wires them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from ..service import Service
from .common import message_html, resolve_run, run_choices, user_message

BATCH_PREVIEW_ROWS = 20
# the answers first: a long text column would push them off-screen
PREVIEW_HEADERS = ["predicted", "confidence", "label", "text"]
COLUMN_WIDTHS = ["14%", "12%", "14%", "60%"]


class Batch(NamedTuple):
    message: str
    download: str | None
    preview: Any


def run_dropdown(
    service: Service, current: str | None, *, optional: bool = False, **kwargs: Any
) -> gr.Dropdown:
    """The completed runs as choices, keeping `current` when it is still there, else the newest run;
    an `optional` dropdown starts with a "none" choice (value "") and falls back to it instead."""
    choices = run_choices(service)
    ids = [value for _, value in choices]
    if optional:
        choices = [("none", ""), *choices]
        return gr.Dropdown(choices=choices, value=current if current in ids else "", **kwargs)
    return gr.Dropdown(
        choices=choices, value=current if current in ids else (ids[0] if ids else None), **kwargs
    )


def classify(service: Service, run_id: str | None, sentence: str | None) -> tuple[Any, str]:
    """(probabilities, message): only `service.predict`, since this runs on every keystroke."""
    if not sentence or not sentence.strip():
        return None, ""
    try:
        prediction = service.predict(run_id or resolve_run(service, None), [sentence])[0]
    except Exception as e:
        return None, message_html(user_message(e))
    return prediction.probabilities, ""


def batch_columns(service: Service, path: str | None) -> tuple[Any, str, Any, Any]:
    """(text column choices, message, preview, download): a new file clears the last file's results."""
    if not path:
        return gr.update(choices=[], value=None), "", None, None
    try:
        found = service.inspect(path)
    except Exception as e:
        return gr.update(choices=[], value=None), message_html(user_message(e)), None, None
    return gr.update(choices=list(found.columns), value=found.text_column), "", None, None


def preview_rows(columns: tuple[str, ...], rows: Any) -> tuple[list[str], list[list[Any]]]:
    """The first rows with the answers first (PREVIEW_HEADERS' order), the text last."""
    headers = [h for h in PREVIEW_HEADERS if h in columns]
    index = [columns.index(h) for h in headers]
    return headers, [[row[i] for i in index] for row in rows[:BATCH_PREVIEW_ROWS]]


def batch(service: Service, run_id: str | None, path: str | None, column: str | None) -> Batch:
    """Classify every text of the file: a message, the CSV to download, the first rows."""
    if not path:
        return Batch(message_html("upload a CSV or TSV of texts first"), None, None)
    try:
        done = service.predict_table(resolve_run(service, run_id), path, column or None)
    except Exception as e:
        return Batch(message_html(user_message(e)), None, None)
    headers, rows = preview_rows(tuple(done.columns), done.rows)
    notes = [f"{len(done.rows):,} texts from {Path(path).name} classified"]
    if "label" in done.columns:
        truth, predicted = done.columns.index("label"), done.columns.index("predicted")
        right = sum(row[truth] == row[predicted] for row in done.rows)
        notes.append(f"accuracy against its label column: {right / max(len(done.rows), 1):.3f}")
    widths = COLUMN_WIDTHS[: len(headers) - 1] + ["60%"]
    return Batch(
        message_html(notes, "ok"),
        str(done.path),
        gr.update(value=rows, headers=headers, column_widths=widths),
    )


def build(service: Service, active: gr.State) -> gr.Dropdown:
    """Build the tab; returns its run dropdown (the app refreshes it when runs appear)."""
    with gr.Row():
        with gr.Column(scale=3):
            run = run_dropdown(service, None, label="model (run)", elem_id="predict-run", interactive=True)
            text = gr.Textbox(
                label="text",
                placeholder="type a sentence: the probabilities follow as you type",
                lines=3,
                elem_id="predict-text",
            )
            message = gr.HTML(elem_id="predict-message")
        with gr.Column(scale=2):
            probabilities = gr.Label(
                label="class probabilities", num_top_classes=10, elem_id="predict-probabilities"
            )

    with gr.Accordion("Batch prediction of a file", open=True, elem_id="batch-section"):
        gr.Markdown(
            "Upload a CSV or TSV; you get it back with the predicted label and every class's probability."
        )
        with gr.Row():
            with gr.Column():
                batch_file = gr.File(
                    label="texts to classify (CSV or TSV)",
                    file_types=[".csv", ".tsv", ".txt"],
                    type="filepath",
                    elem_id="batch-upload",
                )
                batch_column = gr.Dropdown(
                    label="text column", choices=[], elem_id="batch-text-column", interactive=True
                )
                batch_btn = gr.Button("Predict the file", elem_id="batch-predict")
                batch_message = gr.HTML(elem_id="batch-message")
            with gr.Column():
                download = gr.File(
                    label="predictions (CSV)", interactive=False, height=120, elem_id="batch-download"
                )
        batch_preview = gr.Dataframe(
            headers=PREVIEW_HEADERS,
            label="first predictions",
            interactive=False,
            wrap=False,  # one line per text: the answers stay together in view
            max_height=420,
            column_widths=COLUMN_WIDTHS,
            elem_id="batch-preview",
        )

    for trigger in (text.change, run.change):
        trigger(
            functools.partial(classify, service),
            [run, text],
            [probabilities, message],
            trigger_mode="always_last",
            show_progress="hidden",
            api_visibility="private",
            # a plain HTTP call per keystroke instead of a queue entry and its event stream: a prediction
            # is a few milliseconds of work, bounded by the text limit, and the queue's round trip would
            # be most of the wait
            queue=False,
        )
    for trigger in (batch_file.upload, batch_file.clear):
        trigger(
            functools.partial(batch_columns, service),
            batch_file,
            [batch_column, batch_message, batch_preview, download],
            api_visibility="private",
        )
    batch_btn.click(
        functools.partial(batch, service),
        [run, batch_file, batch_column],
        [batch_message, download, batch_preview],
        api_visibility="private",
        concurrency_id="batch",
        concurrency_limit=1,
    )
    active.change(functools.partial(run_dropdown, service), active, run, api_visibility="private")
    return run
