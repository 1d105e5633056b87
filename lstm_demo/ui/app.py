"""The Gradio app: one builder per tab, the named API endpoints, and `launch` (`python app.py`, `lstm-demo serve`).

Per-session values (the uploaded file, this session's training, the active model) live in Gradio
components and `gr.State`, so people using the app at once never see each other's uploads; the runs
themselves are shared through the database, as the Runs tab shows.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from ..config import AppSettings
from ..service import Service
from . import about_tab, api, examples_tab, explain_tab, predict_tab, runs_tab, train_tab
from .common import latest_completed
from .login import ClientAddress, LoginGuard

CSS = Path(__file__).resolve().parents[2] / "assets" / "style.css"
QUEUE_CONCURRENCY = 4  # events of one kind served at once, unless the event says otherwise
INTRO = (
    "# LSTM text classifier\n"
    "Train a recurrent classifier on your own labelled texts, use it, and open it up: which words drove a "
    "decision, what every gate did at every word, and how the decision formed along the sentence."
)


def build_app(service: Service) -> gr.Blocks:
    """The whole app around one service, the only door to trainings, runs and models."""
    # uploads and handed-out files leave Gradio's cache after a day (checked hourly)
    with gr.Blocks(title="LSTM demo", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        api.register(service)  # first, so the endpoints get their plain names
        active = gr.State(None)  # this session's active model: set by a finished training or "Load as active"
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Train", id="train", elem_id="tab-train") as train_t:
                train = train_tab.build(service, active, demo.load)
            with gr.Tab("Examples", id="examples", elem_id="tab-examples") as examples_t:
                examples_tab.build(service, train, tabs, "train")
            with gr.Tab("Predict", id="predict", elem_id="tab-predict") as predict_t:
                predict_run = predict_tab.build(service, active)
            with gr.Tab("Explain", id="explain", elem_id="tab-explain") as explain_t:
                explain_run, compare_run = explain_tab.build(service, active)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs") as runs_t:
                timer = runs_tab.build(service, active, runs_t)
            with gr.Tab("How an LSTM works", id="about", elem_id="tab-about") as about_t:
                about_tab.build()

        private: dict[str, Any] = {"api_visibility": "private"}
        # runs trained elsewhere (another session, the command line) appear when a tab is opened
        refresh = functools.partial(predict_tab.run_dropdown, service)
        predict_t.select(refresh, predict_run, predict_run, **private)
        explain_t.select(refresh, explain_run, explain_run, **private)
        explain_t.select(functools.partial(refresh, optional=True), compare_run, compare_run, **private)
        for tab in (train_t, examples_t, predict_t, explain_t, about_t):
            tab.select(_timer_off, None, timer, **private)
        demo.load(functools.partial(latest_completed, service), None, active, **private)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY)
    return demo


def _timer_off() -> gr.Timer:
    return gr.Timer(active=False)


def launch_options(settings: AppSettings, host: str | None = None, port: int | None = None) -> dict[str, Any]:
    """`Blocks.launch` arguments from the settings: address, throttled login, upload limit, no share link
    unless asked."""
    return {
        "server_name": host or settings.host,
        "server_port": port or settings.port,
        "auth": LoginGuard(*settings.auth).check if settings.auth else None,
        "app_kwargs": {"middleware": [Middleware(ClientAddress)]},
        "share": settings.share,
        "max_file_size": settings.limits.upload_bytes,
        "css_paths": [CSS] if CSS.is_file() else None,
        "show_error": False,  # handlers answer with messages; nothing else should reach the page
        "ssr_mode": False,
        "mcp_server": False,
        "enable_monitoring": False,
        "run_history": False,  # the page keeps no copy of calls (texts, uploads) in the browser
    }


def launch(host: str | None = None, port: int | None = None) -> None:
    """Serve the app until interrupted (blocking); `host` and `port` override the settings."""
    settings = AppSettings.from_env()
    service = Service(settings)
    try:
        with private_gradio_cache():
            app = build_app(service)
            app.launch(**launch_options(settings, host, port), prevent_thread_lock=True)
            service.warm_up()  # once the page answers, so the launch does not wait for it
            app.block_thread()
    finally:
        service.shutdown()  # a training cut short is recorded as cancelled


@contextlib.contextmanager
def private_gradio_cache() -> Iterator[Path | None]:
    """Gradio keeps uploads and the files it hands out in /tmp/gradio, one path shared by every user of
    the machine; unless GRADIO_TEMP_DIR names a folder, this process uses a private one, removed at exit."""
    if os.environ.get("GRADIO_TEMP_DIR"):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="lstm-demo-gradio-"))
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # read when the app and its components are made
    try:
        yield folder
    finally:
        os.environ.pop("GRADIO_TEMP_DIR", None)
        shutil.rmtree(folder, ignore_errors=True)
