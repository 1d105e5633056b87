"""The browser app (Gradio): one builder per tab over `service`; never imports torch, captum or sqlalchemy."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from .app import build_app, launch, launch_options  # noqa: E402

__all__ = ["build_app", "launch", "launch_options"]
