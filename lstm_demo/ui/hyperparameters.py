"""The Train tab's hyperparameter controls: one per configuration field, filled from the chosen preset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..config import EMBEDDING_INITS, ENCODERS, MONITORS, POOLINGS, PRESETS, TOKENIZER_KINDS, RunConfig


@dataclass(frozen=True)
class Field:
    """One hyperparameter control; `key` is the `section__name` that `config.override` takes."""

    key: str
    label: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    info: str = ""


FIELDS = (
    Field("model__encoder", "recurrent layer", ENCODERS, info="rnn is a vanilla tanh RNN, for comparison"),
    Field("model__bidirectional", "bidirectional"),
    Field("model__num_layers", "layers", minimum=1, maximum=4, step=1),
    Field("model__embedding_dim", "embedding size"),
    Field(
        "model__embedding_init",
        "embedding initialisation",
        EMBEDDING_INITS,
        info="uniform: Keras' ±0.05; normal: N(0, 1)",
    ),
    Field("model__hidden_size", "hidden size"),
    Field("model__pooling", "pooling", POOLINGS, info="how the states over the text become one vector"),
    Field("model__embedding_dropout", "embedding dropout", minimum=0.0, maximum=0.9, step=0.05),
    Field(
        "model__variational_dropout",
        "one dropout mask per text",
        info="as Keras' LSTM dropout: the same units dropped at every word",
    ),
    Field("model__dropout", "dropout", minimum=0.0, maximum=0.9, step=0.05),
    Field("model__recurrent_dropout", "recurrent dropout", minimum=0.0, maximum=0.9, step=0.05),
    Field("tokenizer__kind", "tokenizer", TOKENIZER_KINDS),
    Field("tokenizer__vocab_size", "vocabulary size"),
    Field("tokenizer__min_frequency", "minimum word count"),
    Field("preprocess__max_length", "tokens kept per text"),
    Field("preprocess__lowercase", "lowercase"),
    Field("preprocess__strip_accents", "strip accents"),
    Field("preprocess__remove_stopwords", "remove stop words"),
    Field("preprocess__stem", "stem words"),
    Field("train__batch_size", "batch size"),
    Field("train__learning_rate", "learning rate"),
    Field("train__weight_decay", "weight decay"),
    Field(
        "train__patience", "early-stopping patience", info="epochs without improvement; 0 never stops early"
    ),
    Field("train__monitor", "monitored metric", MONITORS, info="chooses the epoch kept; loss: the lowest"),
    Field("train__class_weights", "weight classes by rarity"),
    Field("train__label_smoothing", "label smoothing", minimum=0.0, maximum=0.5, step=0.05),
    Field(
        "train__adversarial",
        "adversarial training",
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        info="also train on embeddings pushed along the loss gradient, by this share of their size; "
        "doubles the time per step",
    ),
    Field("train__val_fraction", "validation share", minimum=0.05, maximum=0.5, step=0.05),
    Field(
        "train__refit",
        "refit on all rows",
        info="once validation has chosen the epochs, train again on every row",
    ),
    Field("train__seed", "seed"),
    Field(
        "train__budget",
        "search budget (seconds)",
        info="auto only: how long to search settings before training",
    ),
    Field("train__device", "device", ("auto", "cpu", "cuda", "mps"), info="auto: CUDA, then MPS, then CPU"),
    Field(
        "train__nproc",
        "processes / GPUs",
        info="train in this many processes together (torchrun): one per GPU on CUDA, else CPU processes",
    ),
)


def _sections() -> list[tuple[str, list[Field]]]:
    """The fields in rows: on/off switches together, then model, text and training settings, in FIELDS order."""
    switches = [f for f in FIELDS if isinstance(preset_value(PRESETS["fast"], f.key), bool)]
    rest = [f for f in FIELDS if f not in switches]
    by = {s: [f for f in rest if f.key.startswith(s)] for s in ("model", "tokenizer", "preprocess", "train")}
    return [
        ("model", by["model"]),
        ("text", by["tokenizer"] + by["preprocess"]),
        ("training", by["train"]),
        ("switches", switches),
    ]


def preset_value(cfg: RunConfig, key: str) -> Any:
    section, name = key.split("__", 1)
    return getattr(getattr(cfg, section), name)


def control(field: Field, value: Any) -> gr.components.Component:
    elem_id = "hp-" + field.key.replace("__", "-").replace("_", "-")
    common = {"label": field.label, "value": value, "elem_id": elem_id, "info": field.info or None}
    if isinstance(value, bool):
        return gr.Checkbox(**common)
    if field.choices:
        return gr.Dropdown(
            choices=list(field.choices), allow_custom_value=field.key == "train__device", **common
        )
    if field.minimum is not None:
        return gr.Slider(minimum=field.minimum, maximum=field.maximum, step=field.step, **common)
    return gr.Number(precision=0 if isinstance(value, int) else None, **common)


SECTIONS = _sections()
CONTROL_ORDER = tuple(f for _, group in SECTIONS for f in group)  # the order of the controls' values


def overrides_from(values: tuple[Any, ...]) -> dict[str, Any]:
    """The advanced controls' values as `config.override` keys, with the preset's Python types."""
    out: dict[str, Any] = {}
    for field, value in zip(CONTROL_ORDER, values, strict=True):
        if value is None or value == "":
            continue
        kind = type(preset_value(PRESETS["default"], field.key))
        out[field.key] = kind(value) if kind in (int, float) else value
    return out


def preset_values(cfg: RunConfig) -> list[Any]:
    """The preset's value for each control, in CONTROL_ORDER."""
    return [preset_value(cfg, f.key) for f in CONTROL_ORDER]


def build_controls(cfg: RunConfig) -> list[gr.components.Component]:
    """All the controls, in titled rows, set to `cfg`; returned in CONTROL_ORDER."""
    controls = []
    for title, group in SECTIONS:
        gr.Markdown(f"**{title}**")
        with gr.Row(equal_height=False):
            controls += [control(f, preset_value(cfg, f.key)) for f in group]
    return controls


@dataclass(frozen=True)
class VectorsControls:
    choice: gr.Dropdown  # "" (none), or a file in the app's vectors folder
    freeze: gr.Checkbox
    upload: gr.File
    message: gr.HTML


def build_vectors() -> VectorsControls:
    """Pretrained word vectors: a file of the app's vectors folder (listed when the section opens),
    frozen or fine-tuned, and an upload that adds one there."""
    gr.Markdown("**pretrained word vectors**")
    with gr.Row(equal_height=False):
        choice = gr.Dropdown(
            label="start the embedding from", choices=[("none", "")], value="", elem_id="vectors-choice",
            info="word vectors in the app's vectors folder; the embedding takes their size",
        )  # fmt: skip
        freeze = gr.Checkbox(
            label="freeze the vectors", value=False, elem_id="vectors-freeze",
            info="keep the embedding as the vectors start it; else fine-tune them",
        )  # fmt: skip
        upload = gr.File(
            label="add vectors: .txt/.vec text, or .npy + .vocab",
            file_count="multiple", file_types=[".txt", ".vec", ".npy", ".vocab"], type="filepath",
            elem_id="vectors-upload",
        )  # fmt: skip
    message = gr.HTML(elem_id="vectors-message")
    return VectorsControls(choice, freeze, upload, message)
