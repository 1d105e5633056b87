"""The browser app (Gradio): one builder per tab over `service`; never imports torch, captum or sqlalchemy."""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported
# Gradio summarises every finished event with pandas for its monitoring page, which is off here;
# that costs each prediction CPU time, so summarise (almost) never. Read when the queue is made.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000000")

from .app import build_app, launch, launch_options  # noqa: E402

__all__ = ["build_app", "launch", "launch_options"]
