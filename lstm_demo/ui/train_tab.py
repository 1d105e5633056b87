"""Train tab: upload, preview, columns, label distribution, preset and hyperparameters, start and cancel,
live progress and curves, then the finished run's metrics, per-class table, confusion matrix and mistakes.

Training runs in the background worker; the Start handler is a generator that follows the job and
streams what it reports, so closing the page does not stop the training (the Runs tab still shows it).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..config import PRESETS
from ..data import DataError, preview_table, read_table
from ..examples import EXAMPLES
from ..figures import runs as charts
from ..service import Service
from ..worker import Job, TrainingWorker
from . import results
from .common import duration, message_html, user_message
from .hyperparameters import build_controls, overrides_from, preset_values

MISSED_SAMPLE = 1000  # validation texts predicted at the end to find mistakes


# ---------------------------------------------------------------------------------- rendering


def progress_html(job: Job, position: int | None) -> str:
    """A progress bar with the epoch, ETA and latest figures; `data-status` says how it stands."""
    p = job.progress
    fraction = 1.0 if job.status == "completed" else (p.fraction if p is not None else 0.0)
    if job.status == "queued":
        ahead = (position or 1) - 1
        text = f"queued on {job.device}: " + (
            "starting next" if ahead == 0 else f"{ahead} run{'s' if ahead > 1 else ''} ahead of it"
        )
    elif p is None:
        text = job.status
    else:
        refit = "refit on all rows, " if p.phase == "refit" else ""
        parts = [job.status if job.finished else f"{refit}epoch {max(p.epoch, 1)}/{p.epochs}"]
        if not job.finished and p.steps_per_epoch:
            parts.append(f"step {p.step}/{p.steps_per_epoch}")
        parts.append(f"{fraction:.0%}")
        if not job.finished and p.eta_seconds is not None:
            parts.append(f"ETA {duration(p.eta_seconds)}")
        parts.append(f"elapsed {duration(p.elapsed)}")
        if p.train_loss is not None:
            parts.append(f"loss {p.train_loss:.4f}")
        if p.val_accuracy is not None:
            parts.append(f"val acc {p.val_accuracy:.3f}")
        text = " · ".join(parts)
    return (
        f'<div class="lstm-demo-progress" data-status="{html.escape(job.status)}" data-run="{html.escape(job.run_id)}">'
        f'<div class="lstm-demo-progress-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{fraction * 100:.0f}"><div style="width: {fraction * 100:.1f}%"></div></div>'
        f'<div class="lstm-demo-progress-text">run {html.escape(job.run_id)}: {html.escape(text)}</div></div>'
    )


def _validation_texts(prepared: Any) -> tuple[list[str], list[str]]:
    """The held-out texts and labels the final mistakes are drawn from (capped)."""
    if prepared.test_table is not None:
        table = prepared.test_table
        return list(table.texts[:MISSED_SAMPLE]), list(table.labels[:MISSED_SAMPLE])
    if prepared.val_table is not None:
        table = prepared.val_table
        return list(table.texts[:MISSED_SAMPLE]), list(table.labels[:MISSED_SAMPLE])
    if prepared.refits:  # the kept model was trained on the validation rows too
        return [], []
    idx = prepared.val_idx[:MISSED_SAMPLE]
    return [prepared.table.texts[i] for i in idx], [prepared.table.labels[i] for i in idx]


# ---------------------------------------------------------------------------------- the tab


@dataclass
class TrainTab:
    """What other tabs wire into: the Examples tab loads a file here and starts a training."""

    file: gr.File
    inspect: Callable[[str | None], dict[Any, Any]]  # (path) -> the same updates as an upload
    inspect_outputs: list[Any]
    start_example: Callable[..., Iterator[dict[Any, Any]]]  # (name, encoder, path) -> streamed updates
    start_outputs: list[Any]


def build(service: Service, worker: TrainingWorker, active: gr.State) -> TrainTab:
    settings = service.settings
    max_bytes = settings.limits.upload_bytes
    job_id = gr.State(None)  # this session's latest training

    gr.Markdown(
        "Upload a CSV or TSV with one text column and one label column (or try one in the Examples tab), "
        "check the columns, pick a preset and start. Training runs in the background: you can predict "
        "and explain with other models meanwhile."
    )
    with gr.Row():
        with gr.Column(scale=2):
            file = gr.File(
                label="training data (CSV or TSV)",
                file_types=[".csv", ".tsv", ".txt"],
                type="filepath",
                elem_id="train-upload",
            )
            upload_msg = gr.HTML(elem_id="upload-message")
            with gr.Row():
                text_col = gr.Dropdown(
                    label="text column", choices=[], elem_id="text-column", interactive=True
                )
                label_col = gr.Dropdown(
                    label="label column", choices=[], elem_id="label-column", interactive=True
                )
            data_summary = gr.HTML(elem_id="data-summary")
        with gr.Column(scale=3):
            preview = gr.Dataframe(
                label="first rows", interactive=False, wrap=True, elem_id="data-preview", max_height=260
            )
            distribution = gr.Plot(label="label distribution", elem_id="label-distribution")

    with gr.Row():
        preset = gr.Dropdown(
            label="preset",
            choices=list(PRESETS),
            value="fast",
            elem_id="preset",
            info="fast: seconds on a CPU; default: the tuned model; seed: the design notes' Keras model",
        )
        epochs = gr.Slider(
            1, 100, value=PRESETS["fast"].train.epochs, step=1, label="epochs", elem_id="epochs"
        )
        run_name = gr.Textbox(label="run name (optional)", elem_id="run-name", max_length=200)
    with gr.Accordion("advanced hyperparameters", open=False, elem_id="advanced"):
        controls = build_controls(PRESETS["fast"])
    with gr.Row():
        start_btn = gr.Button("Start training", variant="primary", elem_id="train-start")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
    train_msg = gr.HTML(elem_id="train-message")
    progress = gr.HTML(elem_id="train-progress")
    curves = gr.Plot(label="training curves", elem_id="train-curves")
    with gr.Row():
        with gr.Column():
            metrics = gr.Markdown(elem_id="train-metrics")
            per_class = gr.Dataframe(
                headers=results.PER_CLASS_HEADERS,
                label="per class",
                interactive=False,
                elem_id="train-per-class",
            )
        confusion = gr.Plot(label="confusion matrix", elem_id="train-confusion")
    missed = gr.Dataframe(
        headers=results.MISSED_HEADERS,
        label="misclassified examples (held-out data, most confident first)",
        interactive=False,
        wrap=True,
        column_widths=["64%", "12%", "12%", "12%"],
        elem_id="train-misclassified",
    )

    # ------------------------------------------------------------------ handlers

    def distribution_of(path: str, text: str | None, label: str | None) -> dict[Any, Any]:
        """Read the whole table with these columns: label counts, or the reason it cannot train."""
        try:
            table = read_table(
                path, text or None, label or None, max_bytes=max_bytes, max_rows=settings.limits.rows
            )
        except Exception as e:
            return {upload_msg: message_html(user_message(e)), distribution: None, data_summary: ""}
        counts = table.label_counts()
        summary = (
            f"{len(table.texts):,} rows, {len(counts)} classes "
            f"(text column {table.text_column!r}, label column {table.label_column!r})"
        )
        return {
            upload_msg: message_html(list(table.notes), "info"),
            distribution: charts.label_distribution(counts),
            data_summary: f"<p>{html.escape(summary)}</p>",
        }

    def inspect(path: str | None) -> dict[Any, Any]:
        """Preview an uploaded (or example) file, preselect the guessed columns, count the labels."""
        empty = {
            preview: None,
            text_col: gr.Dropdown(choices=[], value=None),
            label_col: gr.Dropdown(choices=[], value=None),
            distribution: None,
            data_summary: "",
        }
        if not path:
            return {**empty, upload_msg: ""}
        try:
            p = preview_table(path, n=8, max_bytes=max_bytes)
        except Exception as e:
            return {**empty, upload_msg: message_html(user_message(e))}
        columns = list(p.columns)
        out = {
            preview: gr.Dataframe(value=[list(r) for r in p.rows], headers=columns),
            text_col: gr.Dropdown(choices=columns, value=p.text_column),
            label_col: gr.Dropdown(choices=columns, value=p.label_column),
        }
        if p.text_column is None or p.label_column is None:
            missing = "text" if p.text_column is None else "label"
            return {
                **out,
                upload_msg: message_html(f"choose the {missing} column", "info"),
                distribution: None,
                data_summary: "",
            }
        return {**out, **distribution_of(path, p.text_column, p.label_column)}

    def on_columns(path: str | None, text: str | None, label: str | None) -> dict[Any, Any]:
        if not path or not text or not label:
            return {distribution: None, data_summary: ""}
        if text == label:
            return {upload_msg: message_html("the text and label columns must differ"), distribution: None}
        return distribution_of(path, text, label)

    def on_preset(name: str) -> list[Any]:
        cfg = PRESETS.get(name, PRESETS["fast"])
        return [cfg.train.epochs, *preset_values(cfg)]

    def start(
        path: str | None,
        text: str | None,
        label: str | None,
        preset_name: str,
        n_epochs: float,
        name: str,
        *values: Any,
    ) -> Iterator[dict[Any, Any]]:
        """The Start button: the form's columns, preset and hyperparameters."""
        if not path:
            yield {
                upload_msg: message_html("upload a CSV or TSV file first (or try one in the Examples tab)")
            }
            return
        yield from stream(
            lambda: service.prepare(
                path,
                text_column=text or None,
                label_column=label or None,
                preset_name=preset_name or "fast",
                overrides={**overrides_from(values), "train__epochs": int(n_epochs)},
                name=(name or "").strip() or None,
            )
        )

    def start_example(name: str, encoder: str | None, path: str) -> Iterator[dict[Any, Any]]:
        """An example's button: its own preset and overrides, whatever the form says."""
        example = EXAMPLES[name]
        overrides = {**example.overrides, **({"model__encoder": encoder} if encoder else {})}
        title = example.title + (f" ({encoder})" if encoder else "")
        yield from stream(
            lambda: service.prepare(
                path, preset_name=example.preset, overrides=overrides, name=f"example: {title}"
            )
        )

    def stream(prepare: Callable[[], Any]) -> Iterator[dict[Any, Any]]:
        """Validate and queue the run, then stream its progress until it ends."""
        try:
            prepared = prepare()
        except DataError as e:
            yield {upload_msg: message_html(user_message(e)), train_msg: ""}
            return
        except Exception as e:
            yield {train_msg: message_html(user_message(e))}
            return
        held_out = _validation_texts(prepared)
        job = worker.submit(prepared)
        notes = message_html(list(prepared.notes), "info") if prepared.notes else ""
        yield {
            job_id: job.run_id,
            upload_msg: notes,
            train_msg: "",
            progress: progress_html(job, worker.position(job.run_id)),
            curves: None,
            metrics: "",
            per_class: None,
            confusion: None,
            missed: None,
        }
        drawn = 0
        for _ in job.follow(interval=0.5, heartbeat=2.0):
            update: dict[Any, Any] = {progress: progress_html(job, worker.position(job.run_id))}
            history = job.history()
            if len(history) != drawn:
                drawn = len(history)
                update[curves] = charts.training_curves({job.run_id: charts.curve_points(history)})
            yield update
        yield finished(job, held_out)

    def finished(job: Job, held_out: tuple[list[str], list[str]]) -> dict[Any, Any]:
        if job.status == "failed":
            return {train_msg: message_html(f"run {job.run_id} failed: {job.error}")}
        if job.status == "cancelled":
            return {train_msg: message_html(f"run {job.run_id} was cancelled", "info")}
        try:
            detail = service.run(job.run_id)
            summary, rows, figure = results.result_views(detail)
            texts, truth = held_out
            wrong = results.misclassified(service.predict(job.run_id, texts), truth) if texts else []
        except Exception as e:
            return {train_msg: message_html(user_message(e))}
        return {
            train_msg: message_html(
                f"run {job.run_id} finished: it is now the active model in the Predict and Explain tabs", "ok"
            ),
            metrics: summary,
            per_class: rows,
            confusion: figure,
            missed: wrong,
            active: job.run_id,
        }

    def cancel(run_id: str | None) -> str:
        if not run_id or not worker.cancel(run_id):
            return message_html("no training of yours is queued or running", "info")
        return message_html(f"cancelling run {run_id}…", "info")

    inspect_outputs = [upload_msg, preview, text_col, label_col, distribution, data_summary]
    # one queue for both, in order: a clear's empty answer must never land after the next upload's preview
    for event in (file.upload, file.clear):
        event(
            inspect,
            file,
            inspect_outputs,
            api_visibility="private",
            concurrency_id="inspect",
            concurrency_limit=1,
        )
    for dropdown in (text_col, label_col):
        dropdown.input(
            on_columns,
            [file, text_col, label_col],
            [upload_msg, distribution, data_summary],
            api_visibility="private",
        )
    preset.change(on_preset, preset, [epochs, *controls], api_visibility="private")
    start_inputs = [file, text_col, label_col, preset, epochs, run_name, *controls]
    start_outputs = [
        job_id,
        upload_msg,
        train_msg,
        progress,
        curves,
        metrics,
        per_class,
        confusion,
        missed,
        active,
    ]
    start_btn.click(
        start,
        start_inputs,
        start_outputs,
        api_visibility="private",
        concurrency_limit=None,
        show_progress="hidden",
    )
    cancel_btn.click(cancel, job_id, train_msg, api_visibility="private", concurrency_limit=None)
    return TrainTab(file, inspect, inspect_outputs, start_example, start_outputs)
