"""Plain names shared by the engine and the UI, with no heavy imports.

The UI lists these in its controls; `gates.py` and `explain.py` compute them. Keeping them here
lets the UI start without loading torch or captum for a list of words.
"""

from __future__ import annotations

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

# how a run stands, in the order a person reads them; a finished run never changes status again
# except that `interrupted` may be set on a run whose process died
RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("completed", "failed", "cancelled", "interrupted")
# what a run id may look like (an imported bundle's id is checked against it before it is reused)
RUN_ID_PATTERN = r"[0-9A-Za-z_-]{4,32}"

# short method names the command line and the HTTP API also accept
METHOD_ALIASES: dict[str, str] = {"gradshap": "gradient_shap", "inputxgrad": "input_x_gradient"}
