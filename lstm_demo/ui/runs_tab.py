"""Runs tab: every stored run with its live status, curves of several runs overlaid, one run's details,
load as active, cancel, delete, export and import bundles."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..figures import runs as charts
from ..service import Service
from ..worker import TrainingWorker
from . import results
from .common import duration, fmt, message_html, run_label, scratch_dir, user_message

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
HEADERS = ["id", "name", "status", "progress", "preset", "dataset", "val acc", "val F1", "test acc", "epochs",
           "duration", "device", "created"]  # fmt: skip
LIVE_SECONDS = 2.0  # how often the table refreshes while the tab is open


def live_progress(worker: TrainingWorker, run_id: str) -> str:
    """'queued #2' or 'epoch 3/8, 41%' for a run this app is training; '' otherwise."""
    job = worker.get(run_id)
    if job is None or job.finished:
        return ""
    position = worker.position(run_id)
    if job.status == "queued":
        return f"queued #{position}" if position else "queued"
    p = job.progress
    if p is None:
        return "starting"
    refit = "refit " if p.phase == "refit" else ""
    return f"{refit}epoch {max(p.epoch, 1)}/{p.epochs}, {p.fraction:.0%}" + (
        "; cancelling" if job.cancel_requested else ""
    )


def table_rows(
    service: Service, worker: TrainingWorker, status: str | None, search: str | None
) -> list[list[Any]]:
    rows = []
    for r in service.runs(status=status or None, search=(search or "").strip() or None):
        when = r.created.strftime("%Y-%m-%d %H:%M")
        rows.append([
            r.id, r.name or "", r.status, live_progress(worker, r.id), r.preset, r.dataset_name or "",
            fmt(r.val_accuracy), fmt(r.val_macro_f1), fmt(r.test_accuracy),
            "" if r.epochs_run is None else r.epochs_run, duration(r.duration_seconds), r.device or "", when,
        ])  # fmt: skip
    return rows


def curves_figure(service: Service, run_ids: list[str]) -> Any:
    if not run_ids:
        return None
    curves = service.curves(run_ids)
    return charts.training_curves(
        {rid: charts.curve_points(points) for rid, points in curves.items()}, title="training curves"
    )


def build(service: Service, worker: TrainingWorker, active: gr.State, tab: gr.Tab) -> gr.Timer:
    """Build the tab; returns its live-refresh timer, which runs while `tab` is the one open."""
    with gr.Row():
        status = gr.Dropdown(
            label="status",
            choices=[("all", ""), *((s, s) for s in STATUSES)],
            value="",
            elem_id="runs-status",
        )
        search = gr.Textbox(label="search (id, name, preset, dataset, device)", elem_id="runs-search")
        refresh_btn = gr.Button("Refresh", elem_id="runs-refresh")
    table = gr.Dataframe(headers=HEADERS, interactive=False, elem_id="runs-table", max_height=420)
    message = gr.HTML(elem_id="runs-message")
    with gr.Row():
        with gr.Column(scale=2):
            one = gr.Dropdown(label="run", choices=[], elem_id="runs-run", interactive=True)
            with gr.Row():
                load_btn = gr.Button("Load as active", variant="primary", elem_id="runs-load")
                cancel_btn = gr.Button("Cancel", elem_id="runs-cancel")
                delete_btn = gr.Button("Delete", variant="stop", elem_id="runs-delete")
                export_btn = gr.Button("Export bundle", elem_id="runs-export")
            with gr.Row():
                exported = gr.File(label="exported bundle", interactive=False, elem_id="runs-export-file")
                bundle = gr.File(
                    label="import a bundle (.zip)",
                    file_types=[".zip"],
                    type="filepath",
                    elem_id="runs-import",
                )
        with gr.Column(scale=3):
            detail_md = gr.Markdown(elem_id="runs-detail")
            per_class = gr.Dataframe(
                headers=results.PER_CLASS_HEADERS,
                label="per class",
                interactive=False,
                elem_id="runs-per-class",
            )
            confusion = gr.Plot(label="confusion matrix", elem_id="runs-confusion")
    several = gr.Dropdown(
        label="overlay the curves of", choices=[], multiselect=True, elem_id="runs-compare", interactive=True
    )
    curves = gr.Plot(label="training curves", elem_id="runs-curves")
    timer = gr.Timer(LIVE_SECONDS, active=False)

    def refresh(
        status_value: str, query: str, chosen: str | None, overlaid: list[str] | None
    ) -> dict[Any, Any]:
        """The table and both run pickers (keeping what is chosen when it still exists)."""
        try:
            rows = table_rows(service, worker, status_value, query)
            choices = [(run_label(r), r.id) for r in service.runs()]
        except Exception as e:
            return {message: message_html(user_message(e))}
        ids = {value for _, value in choices}
        return {
            table: rows,
            one: gr.Dropdown(choices=choices, value=chosen if chosen in ids else None),
            several: gr.Dropdown(choices=choices, value=[r for r in overlaid or [] if r in ids]),
        }

    def tick(status_value: str, query: str) -> Any:
        try:
            return table_rows(service, worker, status_value, query)
        except Exception:  # a transient database error must not stop the live table
            return gr.skip()

    def picked(evt: gr.SelectData) -> Any:
        """A click on a table row chooses that run."""
        row = evt.row_value or []
        if not row:
            return gr.skip()
        return gr.Dropdown(choices=[(run_label(r), r.id) for r in service.runs()], value=row[0])

    def show(run_id: str | None) -> dict[Any, Any]:
        if not run_id:
            return {detail_md: "", per_class: None, confusion: None}
        try:
            summary, rows, figure = results.result_views(service.run(run_id))
        except Exception as e:
            return {message: message_html(user_message(e)), detail_md: "", per_class: None, confusion: None}
        return {detail_md: summary, per_class: rows, confusion: figure}

    def overlay(run_ids: list[str] | None) -> dict[Any, Any]:
        try:
            return {curves: curves_figure(service, list(run_ids or []))}
        except Exception as e:
            return {message: message_html(user_message(e)), curves: None}

    def load(run_id: str | None) -> dict[Any, Any]:
        if not run_id:
            return {message: message_html("choose a run first")}
        try:
            service.load(run_id)  # refuses runs without a model, with the reason
        except Exception as e:
            return {message: message_html(user_message(e))}
        return {
            active: run_id,
            message: message_html(f"run {run_id} is now active in Predict and Explain", "ok"),
        }

    def cancel(run_id: str | None) -> dict[Any, Any]:
        if not run_id or not worker.cancel(run_id):
            return {message: message_html("that run is not queued or running in this app", "info")}
        return {message: message_html(f"cancelling run {run_id}…", "info")}

    def delete(run_id: str | None) -> dict[Any, Any]:
        if not run_id:
            return {message: message_html("choose a run first")}
        job = worker.get(run_id)
        if job is not None and not job.finished:
            return {message: message_html(f"run {run_id} is {job.status}: cancel it before deleting it")}
        try:
            service.delete(run_id)
        except Exception as e:
            return {message: message_html(user_message(e))}
        return {
            message: message_html(f"run {run_id} deleted with its files", "ok"),
            one: None,
            detail_md: "",
            per_class: None,
            confusion: None,
        }

    def export(run_id: str | None) -> dict[Any, Any]:
        if not run_id:
            return {message: message_html("choose a run first"), exported: None}
        try:
            out = scratch_dir() / f"lstm-demo-{run_id}.zip"
            path = service.export(run_id, out)
        except Exception as e:
            return {message: message_html(user_message(e)), exported: None}
        return {exported: str(path), message: message_html(f"run {run_id} exported", "ok")}

    def import_bundle(path: str | None) -> dict[Any, Any]:
        if not path:
            return {}
        try:
            summary = service.import_bundle(path)
        except Exception as e:
            return {message: message_html(user_message(e))}
        return {message: message_html(f"imported as run {summary.id}", "ok"), one: summary.id}

    refresh_inputs = [status, search, one, several]
    refresh_outputs = [table, one, several, message]
    private = {"api_visibility": "private"}
    for trigger in (refresh_btn.click, status.change, search.submit):
        trigger(refresh, refresh_inputs, refresh_outputs, **private)
    timer.tick(tick, [status, search], table, show_progress="hidden", **private)
    table.select(picked, None, one, **private)
    one.change(show, one, [detail_md, per_class, confusion, message], **private)
    several.change(overlay, several, [curves, message], **private)
    load_btn.click(load, one, [active, message], **private)
    cancel_btn.click(cancel, one, message, **private).then(
        refresh, refresh_inputs, refresh_outputs, **private
    )
    delete_btn.click(delete, one, [message, one, detail_md, per_class, confusion], **private).then(
        refresh, refresh_inputs, refresh_outputs, **private
    )
    export_btn.click(export, one, [exported, message], **private)
    bundle.upload(import_bundle, bundle, [message, one], **private).then(
        refresh, refresh_inputs, refresh_outputs, **private
    )

    def opened(*args: Any) -> dict[Any, Any]:
        return {**refresh(*args), timer: gr.Timer(active=True)}

    tab.select(opened, refresh_inputs, [*refresh_outputs, timer], **private)
    return timer
