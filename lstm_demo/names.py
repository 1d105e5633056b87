"""Plain names shared by the engine and the UI, with no heavy imports.

The UI lists these in its controls; `gates.py`, `explain.py` and the store produce them. Keeping them here
lets the UI start without loading torch or captum for a list of words.
"""

from __future__ import annotations

import re

# states recorded per encoder, in the order the heatmaps show them (PyTorch's gate order aside)
STATE_NAMES: dict[str, tuple[str, ...]] = {
    "lstm": ("input", "forget", "candidate", "output", "cell", "hidden"),
    "gru": ("reset", "update", "candidate", "hidden"),
    "rnn": ("hidden",),
}
SELECT_MODES = ("variance", "contribution", "index")  # how the units to show are chosen
DIRECTIONS = ("forward", "backward")

# attribution methods (keys used by the CLI, the API and the UI) and their display titles
METHODS: dict[str, str] = {
    "ig": "Integrated Gradients",
    "ig_uniform": "Integrated Gradients (uniform steps)",
    "gradient_shap": "GradientSHAP",
    "occlusion": "Occlusion",
    "saliency": "Saliency",
    "input_x_gradient": "Input x Gradient",
}

# the life of a run, as the store records it; a finished run never runs again
RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("completed", "failed", "cancelled", "interrupted")
# what a run id may look like (the store's own are 12 hex digits; an imported one may differ)
RUN_ID_PATTERN = re.compile(r"[0-9A-Za-z_-]{4,32}")
