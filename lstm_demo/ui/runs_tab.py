"""Runs tab: every stored run with its live status; a run page (summary, settings, data, curves) with
load as active, cancel, delete (confirmed), export and import; several runs compared side by side.

The handlers are module-level functions of plain values; `build` only lays out and wires them.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import gradio as gr

from ..names import RUN_STATUSES
from ..service import Service, trial_of
from . import results
from .common import duration, fmt, message_html, run_label, user_message

# the columns a person compares first come first; the rest scroll into view
HEADERS = ["status", "name", "val acc", "test acc", "baseline", "val F1", "epochs", "progress", "id", "preset", "dataset",
           "duration", "device", "created"]  # fmt: skip
ID_COLUMN = HEADERS.index("id")
SETTINGS_HEADERS = ["setting", "value"]
LIVE_SECONDS = 2.0  # how often the table refreshes while the tab is open


class Listing(NamedTuple):
    table: Any
    one: Any  # the run picker: choices and value together, so the value is always among them
    several: Any
    message: Any = gr.skip()


class RunPage(NamedTuple):
    summary: str
    settings: list[list[str]] | None
    per_class: list[list[Any]] | None
    confusion: Any
    curves: Any
    message: Any = gr.skip()  # an error, else the last action's message stays


class Comparison(NamedTuple):
    table: str
    curves: Any
    message: Any = gr.skip()


EMPTY_PAGE = RunPage("", None, None, None, None)


def live_progress(service: Service, run_id: str) -> str:
    """'queued #2' or 'epoch 3/8, 41%' for a run this app is training; '' otherwise."""
    job = service.job(run_id)
    if job is None or job.finished:
        return ""
    if job.status == "queued":
        position = service.position(run_id)
        return f"queued #{position}" if position else "queued"
    p = job.progress
    if p is None:
        return "starting"
    if (trial := trial_of(p)) is not None:  # an `auto` run still searching
        return f"searching: trial {trial.number}, {p.fraction:.0%} of the budget"
    refit = "refit " if p.phase == "refit" else ""
    return f"{refit}epoch {max(p.epoch, 1)}/{p.epochs}, {p.fraction:.0%}" + (
        "; cancelling" if job.cancel_requested else ""
    )


def table_rows(service: Service, status: str | None, search: str | None) -> list[list[Any]]:
    rows = []
    for r in service.runs(status=status or None, search=(search or "").strip() or None):
        rows.append([
            r.status, r.name or "", fmt(r.val_accuracy), fmt(r.test_accuracy),
            fmt(service.baseline_accuracy(r)), fmt(r.val_macro_f1),
            "" if r.epochs_run is None else r.epochs_run, live_progress(service, r.id), r.id, r.preset,
            r.dataset_name or "", duration(r.duration_seconds), r.device or "", r.created.strftime("%Y-%m-%d %H:%M"),
        ])  # fmt: skip
    return rows


def run_pickers(service: Service, chosen: str | None, overlaid: list[str] | None) -> tuple[Any, Any]:
    """Both run pickers with fresh choices, keeping what is chosen when it still exists."""
    choices = [(run_label(r), r.id) for r in service.runs()]
    ids = {value for _, value in choices}
    return (
        gr.update(choices=choices, value=chosen if chosen in ids else None),
        gr.update(choices=choices, value=[r for r in overlaid or [] if r in ids]),
    )


def refresh(
    service: Service, status: str | None, query: str | None, chosen: str | None, overlaid: list[str] | None
) -> Listing:
    """The table and both run pickers."""
    try:
        rows = table_rows(service, status, query)
        one, several = run_pickers(service, chosen, overlaid)
    except Exception as e:
        return Listing(gr.skip(), gr.skip(), gr.skip(), message_html(user_message(e)))
    return Listing(rows, one, several)


def tick(service: Service, status: str | None, query: str | None) -> Any:
    try:
        return table_rows(service, status, query)
    except Exception:  # a transient database error must not stop the live table
        return gr.skip()


def picked(service: Service, row: list[Any] | None) -> Any:
    """A click on a table row chooses that run."""
    if not row or len(row) <= ID_COLUMN:
        return gr.skip()
    one, _ = run_pickers(service, str(row[ID_COLUMN]), None)
    return one


def show(service: Service, run_id: str | None) -> RunPage:
    """The run page: summary, per-class figures, confusion matrix, every setting, the data and curves."""
    if not run_id:
        return EMPTY_PAGE
    try:
        detail = service.run(run_id)
        summary, rows, figure = results.result_views(detail)
        curves = results.curves_figure([detail])
    except Exception as e:
        return EMPTY_PAGE._replace(message=message_html(user_message(e)))
    return RunPage(summary, results.run_page(detail), rows, figure, curves)


def compare(service: Service, run_ids: list[str] | None) -> Comparison:
    """Two or more runs: their settings side by side (differences marked) and their curves overlaid."""
    run_ids = list(run_ids or [])
    if not run_ids:
        return Comparison("", None)
    try:
        details = [service.run(r) for r in run_ids]
    except Exception as e:
        return Comparison("", None, message_html(user_message(e)))
    if len(details) < 2:
        return Comparison(
            message_html("choose a second run to compare with", "info"), results.curves_figure(details)
        )
    return Comparison(results.compare_html(details), results.curves_figure(details))


def load(service: Service, run_id: str | None) -> tuple[Any, str]:
    """(the session's active run, message)."""
    if not run_id:
        return gr.skip(), message_html("choose a run first")
    try:
        service.load(run_id)  # refuses runs without a model, with the reason
    except Exception as e:
        return gr.skip(), message_html(user_message(e))
    return run_id, message_html(f"run {run_id} is now active in Predict and Explain", "ok")


def cancel(service: Service, run_id: str | None) -> str:
    if not run_id or not service.cancel(run_id):
        return message_html("that run is not queued or running in this app", "info")
    return message_html(f"cancelling run {run_id}…", "info")


def ask_delete(run_id: str | None) -> tuple[Any, str]:
    """(the confirmation row, its question): nothing is deleted until the person confirms."""
    if not run_id:
        return gr.update(visible=False), message_html("choose a run first")
    question = f"delete run {run_id} with its model files? This cannot be undone."
    return gr.update(visible=True), message_html(question, "info")


def delete(service: Service, run_id: str | None) -> tuple[Any, str, Any]:
    """(the confirmation row, message, run picker)."""
    hidden = gr.update(visible=False)
    if not run_id:
        return hidden, message_html("choose a run first"), gr.skip()
    try:
        service.delete(run_id)  # refuses a queued or running run, with the reason
    except Exception as e:
        return hidden, message_html(user_message(e)), gr.skip()
    return hidden, message_html(f"run {run_id} deleted with its files", "ok"), gr.update(value=None)


def keep() -> tuple[Any, str]:
    return gr.update(visible=False), ""


def export(service: Service, run_id: str | None) -> tuple[str | None, str]:
    """(the bundle's path, message)."""
    if not run_id:
        return None, message_html("choose a run first")
    try:
        path = service.export(run_id, service.scratch_dir() / f"lstm-demo-{run_id}.zip")
    except Exception as e:
        return None, message_html(user_message(e))
    return str(path), message_html(f"run {run_id} exported", "ok")


def import_bundle(service: Service, path: str | None) -> tuple[str, Any]:
    """(message, run picker showing the imported run among fresh choices)."""
    if not path:
        return "", gr.skip()
    try:
        summary = service.import_bundle(path)
        one, _ = run_pickers(service, summary.id, None)
    except Exception as e:
        return message_html(user_message(e)), gr.skip()
    return message_html(f"imported as run {summary.id}", "ok"), one


def build(service: Service, active: gr.State, tab: gr.Tab) -> gr.Timer:
    """Build the tab; returns its live-refresh timer, which runs while `tab` is the one open."""
    with gr.Row():
        status = gr.Dropdown(
            label="status",
            choices=[("all", ""), *((s, s) for s in RUN_STATUSES)],
            value="",
            elem_id="runs-status",
        )
        search = gr.Textbox(label="search (id, name, preset, dataset, device)", elem_id="runs-search")
        refresh_btn = gr.Button("Refresh", elem_id="runs-refresh")
    table = gr.Dataframe(headers=HEADERS, interactive=False, elem_id="runs-table", max_height=420, wrap=False)
    message = gr.HTML(elem_id="runs-message")
    with gr.Row():
        one = gr.Dropdown(label="run", choices=[], elem_id="runs-run", interactive=True, scale=3)
        load_btn = gr.Button("Load as active", variant="primary", elem_id="runs-load", scale=1)
        cancel_btn = gr.Button("Cancel", elem_id="runs-cancel", scale=1)
        delete_btn = gr.Button("Delete", variant="stop", elem_id="runs-delete", scale=1)
        export_btn = gr.Button("Export bundle", elem_id="runs-export", scale=1)
    with gr.Row(visible=False, elem_id="runs-confirm") as confirm_row:
        confirm_text = gr.HTML(elem_id="runs-confirm-text")
        confirm_btn = gr.Button("Yes, delete it", variant="stop", elem_id="runs-delete-confirm")
        keep_btn = gr.Button("Keep it", elem_id="runs-delete-keep")
    with gr.Accordion("run page", open=True, elem_id="runs-page"):
        with gr.Row():
            with gr.Column(scale=2):
                detail_md = gr.Markdown(elem_id="runs-detail")
                per_class = gr.Dataframe(
                    headers=results.PER_CLASS_HEADERS,
                    label="per class",
                    interactive=False,
                    elem_id="runs-per-class",
                )
            confusion = gr.Plot(label="confusion matrix", elem_id="runs-confusion", scale=2)
        run_curves = gr.Plot(label="training curves", elem_id="runs-run-curves")
        settings = gr.Dataframe(
            headers=SETTINGS_HEADERS, label="settings and data", interactive=False, elem_id="runs-settings",
            max_height=360, column_widths=["35%", "65%"],
        )  # fmt: skip
    with gr.Accordion("compare runs", open=False, elem_id="runs-compare-section"):
        several = gr.Dropdown(
            label="runs to compare (two or more)", choices=[], multiselect=True, elem_id="runs-compare",
            interactive=True,
        )  # fmt: skip
        compared = gr.HTML(elem_id="runs-compare-table")
        curves = gr.Plot(label="training curves", elem_id="runs-curves")
    with gr.Accordion("move runs between apps", open=False, elem_id="runs-bundles"):
        with gr.Row():
            exported = gr.File(label="exported bundle", interactive=False, elem_id="runs-export-file")
            bundle = gr.File(
                label="import a bundle (.zip)", file_types=[".zip"], type="filepath", elem_id="runs-import"
            )
    timer = gr.Timer(LIVE_SECONDS, active=False)

    with_service = functools.partial
    private: dict[str, Any] = {"api_visibility": "private"}
    refresh_inputs = [status, search, one, several]
    refresh_outputs = [table, one, several, message]
    do_refresh = with_service(refresh, service)
    for trigger in (refresh_btn.click, status.change, search.submit):
        trigger(do_refresh, refresh_inputs, refresh_outputs, **private)
    timer.tick(with_service(tick, service), [status, search], table, show_progress="hidden", **private)
    table.select(_picked_row(service), None, one, **private)
    page = [detail_md, settings, per_class, confusion, run_curves, message]
    one.change(with_service(show, service), one, page, **private)
    several.change(with_service(compare, service), several, [compared, curves, message], **private)
    load_btn.click(with_service(load, service), one, [active, message], **private)
    cancel_btn.click(with_service(cancel, service), one, message, **private).then(
        do_refresh, refresh_inputs, refresh_outputs, **private
    )
    delete_btn.click(ask_delete, one, [confirm_row, confirm_text], **private)
    keep_btn.click(keep, None, [confirm_row, confirm_text], **private)
    confirm_btn.click(with_service(delete, service), one, [confirm_row, message, one], **private).then(
        do_refresh, refresh_inputs, refresh_outputs, **private
    )
    export_btn.click(with_service(export, service), one, [exported, message], **private)
    bundle.upload(with_service(import_bundle, service), bundle, [message, one], **private).then(
        do_refresh, refresh_inputs, refresh_outputs, **private
    )
    tab.select(with_service(_opened, service), refresh_inputs, [*refresh_outputs, timer], **private)
    return timer


def _picked_row(service: Service) -> Any:
    """The table's select listener: Gradio passes the event by its annotation, so it stays a def."""

    def on_select(evt: gr.SelectData) -> Any:
        return picked(service, evt.row_value)

    return on_select


def _opened(service: Service, *args: Any) -> tuple[Any, ...]:
    return (*refresh(service, *args), gr.Timer(active=True))
