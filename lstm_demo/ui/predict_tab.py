"""Predict tab: class probabilities that follow the text as it is typed, and batch prediction of a file."""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr

from ..data import preview_table
from ..service import Service
from .api import predict_table
from .common import message_html, resolve_run, run_choices, user_message

BATCH_PREVIEW_ROWS = 20


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


def build(service: Service, active: gr.State) -> gr.Dropdown:
    """Build the tab; returns its run dropdown (the app refreshes it when runs appear)."""
    max_bytes = service.settings.limits.upload_bytes
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

    gr.Markdown(
        "### Batch prediction\nUpload a CSV or TSV; you get it back with the predicted label and every class's probability."
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
        headers=["text", "predicted", "confidence"],
        label="first predictions",
        interactive=False,
        wrap=True,
        elem_id="batch-preview",
    )

    def classify(run_id: str | None, sentence: str | None) -> dict[Any, Any]:
        """Only `service.predict`: this runs on every keystroke (models are cached by the service)."""
        if not sentence or not sentence.strip():
            return {probabilities: None, message: ""}
        try:
            prediction = service.predict(run_id or resolve_run(service, None), [sentence])[0]
        except Exception as e:
            return {probabilities: None, message: message_html(user_message(e))}
        return {probabilities: prediction.probabilities, message: ""}

    def batch_columns(path: str | None) -> dict[Any, Any]:
        if not path:
            return {batch_column: gr.Dropdown(choices=[], value=None), batch_message: ""}
        try:
            p = preview_table(path, max_bytes=max_bytes)
        except Exception as e:
            return {
                batch_column: gr.Dropdown(choices=[], value=None),
                batch_message: message_html(user_message(e)),
            }
        return {batch_column: gr.Dropdown(choices=list(p.columns), value=p.text_column), batch_message: ""}

    def batch(run_id: str | None, path: str | None, column: str | None) -> dict[Any, Any]:
        if not path:
            return {batch_message: message_html("upload a CSV or TSV of texts first"), download: None}
        try:
            out, table, predictions = predict_table(service, resolve_run(service, run_id), path, column)
        except Exception as e:
            return {batch_message: message_html(user_message(e)), download: None, batch_preview: None}
        has_truth = bool(table.labels)
        rows = [
            [p.text, *([table.labels[i]] if has_truth else []), p.label, round(p.probabilities[p.label], 3)]
            for i, p in enumerate(predictions[:BATCH_PREVIEW_ROWS])
        ]
        headers = ["text", *(["label"] if has_truth else []), "predicted", "confidence"]
        notes = [f"{len(predictions):,} texts from {table.source} classified", *table.notes]
        if has_truth:
            right = sum(p.label == t for p, t in zip(predictions, table.labels, strict=True))
            notes.insert(1, f"accuracy against its label column: {right / len(predictions):.3f}")
        return {
            batch_message: message_html(notes, "ok"),
            download: str(out),
            batch_preview: gr.Dataframe(value=rows, headers=headers),
        }

    for trigger in (text.change, run.change):
        trigger(
            classify,
            [run, text],
            [probabilities, message],
            trigger_mode="always_last",
            show_progress="hidden",
            api_visibility="private",
            concurrency_id="predict",
            concurrency_limit=4,
        )
    batch_file.upload(batch_columns, batch_file, [batch_column, batch_message], api_visibility="private")
    batch_btn.click(
        batch,
        [run, batch_file, batch_column],
        [batch_message, download, batch_preview],
        api_visibility="private",
        concurrency_id="batch",
        concurrency_limit=1,
    )
    active.change(functools.partial(run_dropdown, service), active, run, api_visibility="private")
    return run
