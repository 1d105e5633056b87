"""Examples tab: one click loads an example into the Train tab and starts training it; no upload needed."""

from __future__ import annotations

import functools
import html
import shutil
from typing import Any

import gradio as gr

from ..service import Service
from .common import user_message
from .train_tab import TrainTab

# The long-range task is there to compare an LSTM with a vanilla RNN: it gets a button for each.
ENCODER_BUTTONS = {"long_range": (("lstm", "Train an LSTM"), ("rnn", "Train a vanilla RNN"))}
INTRO = (
    "Each button loads an example dataset into the **Train** tab and starts training it with a small "
    "preset; the Train tab shows its progress and the time left as it is measured."
)


def example_copy(service: Service, name: str) -> str:
    """The example's CSV copied to a fresh temporary folder, where Gradio may serve it from."""
    source = service.example_path(name)
    target = service.scratch_dir() / source.name
    shutil.copyfile(source, target)
    return str(target)


def load(service: Service, inspect: Any, train_tab_id: str, name: str) -> tuple[Any, ...]:
    """(the Train tab's file, the selected tab, the file's inspection); raises when the example cannot be
    had, so the training after it does not start."""
    try:
        path = example_copy(service, name)
    except Exception as e:
        raise gr.Error(html.escape(user_message(e)), print_exception=False) from None
    return (path, gr.Tabs(selected=train_tab_id), *inspect(path))


def build(service: Service, train: TrainTab, tabs: gr.Tabs, train_tab_id: str) -> None:
    gr.Markdown(INTRO)
    for example in service.examples():
        name = example.name
        with gr.Group(elem_classes=["lstm-demo-example"]):
            gr.Markdown(f"### {example.title}\n{example.description}")
            with gr.Row():
                for encoder, text in ENCODER_BUTTONS.get(name, ((None, "Try it"),)):
                    suffix = f"-{encoder}" if encoder else ""
                    button = gr.Button(
                        text, variant="primary", elem_id=f"example-{name}{suffix}".replace("_", "-")
                    )
                    button.click(
                        functools.partial(load, service, train.inspect, train_tab_id, name),
                        None,
                        [train.file, tabs, *train.inspect_outputs],
                        api_visibility="private",
                    ).success(
                        train.start_example(name, encoder),
                        train.browser,
                        train.start_outputs,
                        api_visibility="private",
                        concurrency_limit=None,
                        show_progress="hidden",
                        cancels=[train.following],
                    )
