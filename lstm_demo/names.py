"""Plain names shared by the engine and the UI, with no heavy imports.

The UI lists these in its controls; `gates.py`, `explain.py` and the store produce them. Keeping them here
lets the UI start without loading torch or captum for a list of words.
"""

from __future__ import annotations

import re

# token ids every tokenizer of this app reserves (`tokenization` trains them in this order) and the
# model relies on: [PAD] pads batches and is the zero embedding row, [UNK] stands for unseen words
PAD_ID = 0
UNK_ID = 1

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

# integrated gradients' completeness check: |convergence delta| may be at most this share of
# |F(x) - F(baseline)|; the engine flags each attribution, the UI and the CLI say the share
DELTA_TOLERANCE = 0.05

# other spellings the command line and the HTTP API accept for a method key
METHOD_ALIASES: dict[str, str] = {"gradshap": "gradient_shap", "inputxgrad": "input_x_gradient"}


def method_key(name: str) -> str:
    """A method's key from its key or alias; unknown names come back unchanged (the caller refuses them)."""
    name = name.strip()
    return METHOD_ALIASES.get(name, name)
