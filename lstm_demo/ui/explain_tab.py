"""Explain tab: attributions per method side by side with IG's delta and ERASER faithfulness, the gate
heatmaps (gate, layer, direction and unit-ordering controls), the decision path, and a second run
explaining the same sentence beside the first.

The handlers are module-level functions of plain values; `build` only lays out and wires them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NamedTuple

import gradio as gr

from ..figures import explain as charts
from ..figures import explain as plots
from ..names import DELTA_TOLERANCE, DIRECTIONS, METHODS, SELECT_MODES, STATE_NAMES
from ..service import Service
from .common import fmt, labels_of, message_html, resolve_run, user_message
from .predict_tab import run_dropdown

DEFAULT_METHODS = ["ig", "occlusion", "saliency"]
# the score's sign says nothing for these: Captum's Saliency is the gradient's magnitude
UNSIGNED_METHODS = ("saliency",)
METHOD_HEADERS = [
    "method",
    "comprehensiveness",
    "sufficiency",
    "IG delta",
    "delta share",
    f"within {DELTA_TOLERANCE:.0%}",
    "seconds",
]
ORDERINGS = {
    "variance": "most varying over the sentence",
    "contribution": "largest push towards the target class (last layer)",
    "index": "the unit numbers typed below",
}
PREDICTED = ""  # the target dropdown's value for "the predicted class"


class Explained(NamedTuple):
    """What one press of Explain shows, in `build`'s output order."""

    message: str = ""  # what went wrong, or IG's delta warning: a banner right above the attributions
    prediction: Any = None
    marked: str = ""
    table: Any = None
    faith_plot: Any = None
    path_plot: Any = None
    compare_prediction: Any = None
    compare_marked: str = ""
    compare_path: Any = None
    gate_plot: Any = None
    gate_message: str = ""


# the second part of Explain's answer (`explain_stages`): what takes the browser longest to draw
FIGURES = ("faith_plot", "path_plot", "compare_path", "gate_plot", "gate_message")


def sentence_faithfulness(
    service: Service, run_id: str, text: str, methods: list[str], steps: int
) -> dict[str, Any]:
    """ERASER comprehensiveness/sufficiency of each method (and chance) on this one sentence."""
    return service.faithfulness(run_id, texts=[text], n=1, steps=steps, methods=methods)


def method_rows(explanation: Any, faithfulness: dict[str, Any] | None) -> list[list[Any]]:
    rows = []
    for name, a in explanation.attributions.items():
        f = (faithfulness or {}).get(name, {})
        ok = "" if a.delta_ok is None else ("yes" if a.delta_ok else "NO")
        ratio = "" if a.delta_ratio is None else f"{a.delta_ratio:.1%}"
        rows.append([
            a.title, fmt(f.get("comprehensiveness")), fmt(f.get("sufficiency")), fmt(a.delta, 4), ratio, ok,
            f"{a.seconds:.3f}",
        ])  # fmt: skip
    if faithfulness and "random" in faithfulness:
        r = faithfulness["random"]
        rows.append(["random ordering", fmt(r["comprehensiveness"]), fmt(r["sufficiency"]), "", "", "", ""])
    return rows


def delta_warning(explanation: Any) -> str:
    """A banner when an integrated-gradients method's scores miss the score change by more than tolerated."""
    missed = [a for a in explanation.attributions.values() if a.delta_ok is False]
    if not missed:
        return ""
    lines = [
        f"{a.title}: its word scores add up to the change in the class score with an error of "
        + (f"{a.delta_ratio:.0%}" if a.delta_ratio is not None else f"{a.delta:.3f}")
        + f", more than the {DELTA_TOLERANCE:.0%} tolerated; read its colours with care, or raise the integration steps"
        for a in missed
    ]
    return message_html(lines, "warning")


def highlights(explanation: Any) -> str:
    """Every method's word scores, one row each, with the target, the sign's meaning and the baseline."""
    scores = {a.title: a.word_scores for a in explanation.attributions.values()}
    baselines = sorted({a.baseline for a in explanation.attributions.values()})
    p = explanation.probabilities[explanation.target]
    signed = [a.title for a in explanation.attributions.values() if a.method not in UNSIGNED_METHODS]
    unsigned = [a.title for a in explanation.attributions.values() if a.method in UNSIGNED_METHODS]
    meaning = []
    if signed:
        meaning.append("Red pushes towards it, blue away" + (f" ({', '.join(signed)})" if unsigned else ""))
    if unsigned:
        meaning.append(f"{', '.join(unsigned)}: influence only, without a direction (deeper is stronger)")
    caption = (
        f"explaining '{explanation.target}' (p = {p:.3f}; predicted '{explanation.predicted}'). "
        f"{'. '.join(meaning)}. Baseline: {'; '.join(baselines)}."
    )
    return plots.methods_html(explanation.words, scores, caption=caption)


def gate_figure(
    service: Service,
    run_id: str,
    text: str,
    states: list[str],
    layer: int,
    direction: str,
    order: str,
    k: int,
    units: str,
    target: str,
) -> Any:
    """The chosen gates of one layer and direction for the chosen units, as heatmaps."""
    trace = service.gates(run_id, text)
    states = [s for s in STATE_NAMES[trace.encoder] if s in (states or [])] or list(
        STATE_NAMES[trace.encoder]
    )
    labels = labels_of(service, run_id)
    indices = unit_numbers(units) if order == "index" else None
    layers = {lt.layer for lt in trace.layers}
    layer = int(layer) if int(layer) in layers else max(layers)  # a stale choice from another run
    direction = direction if any(lt.direction == direction for lt in trace.layers) else DIRECTIONS[0]
    chosen = service.select_units(
        trace,
        order,
        int(k),
        layer=layer,
        direction=direction,
        state="hidden" if "hidden" in states else states[0],
        indices=indices,
        target=labels.index(target) if target in labels else None,
    )
    lt = trace.layer(layer, direction)
    title = f"layer {lt.layer}, {direction}: {len(chosen)} units by {order}"
    return plots.gate_heatmaps(  # the rows keep the user's words, [UNK] marked
        trace.tokens,
        lt.states,
        chosen,
        names=states,
        title=title,
        words=trace.words,
        word_index=trace.word_index,
    )


def path_figure(dp: Any, title: str) -> Any:
    """A `DecisionPath` drawn, its axis in the user's words ([UNK] marked) as the heatmaps' rows."""
    return plots.decision_path_figure(
        dp.tokens, dp.probabilities, dp.labels, title=title, words=dp.words, word_index=dp.word_index
    )


def unit_numbers(text: str) -> list[int]:
    """'0 5, 12' -> [0, 5, 12]."""
    parts = (text or "").replace(",", " ").split()
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError("type the unit numbers to show as whole numbers, e.g. 0 5 12")
    return [int(p) for p in parts]


def model_controls(service: Service, run_id: str | None) -> tuple[Any, ...]:
    """Target, gate, layer and direction choices that fit the chosen run, each with a value among them."""
    try:
        detail = service.run(run_id) if run_id else None
    except ValueError:  # deleted meanwhile: leave the controls as they are
        detail = None
    if detail is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    model = detail.config.get("model", {})
    encoder = model.get("encoder", "lstm")
    labels = list(detail.config.get("labels", []))
    directions = list(DIRECTIONS if model.get("bidirectional") else DIRECTIONS[:1])
    n_layers = model.get("num_layers", 1)
    layers = [(f"layer {i}" + (" (top)" if i == n_layers - 1 else ""), i) for i in range(n_layers)]
    return (
        gr.update(
            choices=[("predicted class", PREDICTED), *((label, label) for label in labels)], value=PREDICTED
        ),
        gr.update(choices=list(STATE_NAMES[encoder]), value=list(STATE_NAMES[encoder])),
        gr.update(choices=layers, value=layers[-1][1]),
        gr.update(choices=directions, value=directions[0]),
    )


def on_active(service: Service, run_id: str | None) -> tuple[Any, ...]:
    return (run_dropdown(service, run_id), *model_controls(service, run_id))


def compare_visible(other: str | None) -> Any:
    """The second run's column takes room only when a second run is chosen."""
    return gr.update(visible=bool(other))


def draw_gates(service: Service, run_id: str | None, sentence: str, *controls: Any) -> tuple[Any, str]:
    """(heatmaps, message) for the gate controls' values."""
    if not sentence or not sentence.strip():
        return None, ""
    try:
        return gate_figure(service, resolve_run(service, run_id), sentence, *controls), ""
    except Exception as e:
        return None, message_html(user_message(e))


def explain_one(
    service: Service, run_id: str, sentence: str, chosen: list[str], target_label: str, n_steps: float
) -> Any:
    labels = labels_of(service, run_id)
    return service.explain(
        run_id,
        sentence,
        methods=chosen or ["ig"],
        target=target_label if target_label in labels else None,
        steps=int(n_steps),
    )


def explain(service: Service, *inputs: Any) -> Explained:
    """Everything the tab shows for one sentence (the first run, its gates, and the second run if chosen)
    in one answer: the last of `explain_stages`, which takes the same inputs."""
    *_, everything = explain_stages(service, *inputs)
    return everything


def explain_stages(
    service: Service,
    run_id: str | None,
    other: str | None,
    sentence: str,
    target_label: str,
    chosen: list[str],
    n_steps: float,
    measure: bool,
    *controls: Any,
) -> Iterator[Explained]:
    """`explain` as the button answers it, in two parts: first the words' colours, the prediction and the
    methods' table (what a person reads first), with the previous sentence's figures left as they are;
    then everything, figures included. The browser takes longer to draw the figures (six heatmap panels,
    the decision path, the faithfulness bars) than the model takes to compute all of it."""
    try:
        run_id = resolve_run(service, run_id)
        e = explain_one(service, run_id, sentence, chosen, target_label, n_steps)
        faith = (
            sentence_faithfulness(service, run_id, sentence, list(e.attributions), int(n_steps))
            if measure
            else None
        )
        dp = service.decision_path(run_id, sentence)
    except Exception as err:
        yield Explained(message=message_html(user_message(err)))
        return
    words = Explained(
        message=delta_warning(e),
        prediction=e.probabilities,
        marked=highlights(e),
        table=method_rows(e, faith),
    )
    dp2 = None
    if other:
        try:
            e2 = explain_one(service, other, sentence, chosen, target_label, n_steps)
            dp2 = service.decision_path(other, sentence)
        except Exception as err:
            words = words._replace(compare_marked=message_html(f"run {other}: {user_message(err)}"))
        else:
            words = words._replace(compare_prediction=e2.probabilities, compare_marked=highlights(e2))
    yield words._replace(**{name: gr.skip() for name in FIGURES})
    gate_plot, gate_message = draw_gates(service, run_id, sentence, *controls, target_label)
    yield words._replace(
        faith_plot=charts.faithfulness_bars(faith, title="on this sentence") if faith else None,
        path_plot=path_figure(dp, f"run {run_id}"),
        compare_path=None if dp2 is None else path_figure(dp2, f"run {other}"),
        gate_plot=gate_plot,
        gate_message=gate_message,
    )


def build(service: Service, active: gr.State) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Build the tab; returns its run dropdowns (the app refreshes them when runs appear)."""
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(
                label="text", lines=2, placeholder="a sentence to explain", elem_id="explain-text"
            )
        with gr.Column(scale=2):
            run = run_dropdown(service, None, label="model (run)", elem_id="explain-run", interactive=True)
            compare = run_dropdown(
                service, None, optional=True, label="compare with run (optional)", elem_id="explain-compare",
                interactive=True,
            )  # fmt: skip
    with gr.Row():
        target = gr.Dropdown(
            label="target class", choices=[("predicted class", PREDICTED)], value=PREDICTED,
            elem_id="explain-target", interactive=True,
        )  # fmt: skip
        methods = gr.CheckboxGroup(
            label="methods", choices=[(title, key) for key, title in METHODS.items()], value=DEFAULT_METHODS,
            elem_id="explain-methods",
        )  # fmt: skip
        steps = gr.Slider(
            8, 300, value=50, step=1, label="integration steps (IG, GradientSHAP)", elem_id="explain-steps"
        )
        faithful = gr.Checkbox(
            label="measure faithfulness (ERASER)", value=True, elem_id="explain-faithfulness"
        )
    explain_btn = gr.Button("Explain", variant="primary", elem_id="explain-button")
    message = gr.HTML(elem_id="explain-message")

    with gr.Row():
        with gr.Column(scale=3):
            prediction = gr.Label(label="prediction", num_top_classes=5, elem_id="explain-prediction")
            marked = gr.HTML(elem_id="explain-highlights")
        with gr.Column(scale=2, visible=False, elem_id="compare-column") as compare_column:
            compare_prediction = gr.Label(
                label="second run: prediction", num_top_classes=5, elem_id="compare-prediction"
            )
            compare_marked = gr.HTML(elem_id="compare-highlights")
    with gr.Accordion("methods: faithfulness and convergence", open=True, elem_id="explain-methods-section"):
        table = gr.Dataframe(headers=METHOD_HEADERS, interactive=False, elem_id="explain-table", wrap=True)
        faith_plot = gr.Plot(label="faithfulness on this sentence", elem_id="explain-faithfulness-plot")
    with gr.Accordion("decision path", open=True, elem_id="explain-path-section"):
        with gr.Row():
            path_plot = gr.Plot(label="decision path", elem_id="decision-path")
            compare_path = gr.Plot(
                label="second run: decision path", elem_id="compare-decision-path", visible=False
            )
    with gr.Accordion("gates and states", open=True, elem_id="explain-gates-section"):
        gate_controls, gate_message, gate_plot = _gate_section()
    gate_states, layer, direction, order, k, units = gate_controls

    private: dict[str, Any] = {"api_visibility": "private"}
    gate_inputs = [run, text, gate_states, layer, direction, order, k, units, target]
    explain_inputs = [
        run,
        compare,
        text,
        target,
        methods,
        steps,
        faithful,
        gate_states,
        layer,
        direction,
        order,
        k,
        units,
    ]
    explain_outputs = [message, prediction, marked, table, faith_plot, path_plot, compare_prediction,
                       compare_marked, compare_path, gate_plot, gate_message]  # fmt: skip
    do_explain = functools.partial(explain_stages, service)
    for trigger in (explain_btn.click, text.submit):
        trigger(
            do_explain,
            explain_inputs,
            explain_outputs,
            concurrency_id="explain",
            concurrency_limit=2,
            **private,
        )
    do_gates = functools.partial(draw_gates, service)
    for control in (gate_states, layer, direction, order, k):
        control.change(
            do_gates, gate_inputs, [gate_plot, gate_message], trigger_mode="always_last", concurrency_id="explain",
            concurrency_limit=2, **private,
        )  # fmt: skip
    units.submit(do_gates, gate_inputs, [gate_plot, gate_message], **private)
    run.change(
        functools.partial(model_controls, service), run, [target, gate_states, layer, direction], **private
    )
    compare.change(compare_visible, compare, compare_column, **private)
    compare.change(compare_visible, compare, compare_path, **private)
    active.change(
        functools.partial(on_active, service), active, [run, target, gate_states, layer, direction], **private
    )
    return run, compare


def _gate_section() -> tuple[tuple[Any, ...], gr.HTML, gr.Plot]:
    """The gate heatmaps' controls (states, layer, direction, ordering, count, unit numbers), message and plot."""
    gr.Markdown("Rows are the words, columns the chosen units; see *How an LSTM works* for the equations.")
    with gr.Row():
        gate_states = gr.CheckboxGroup(
            label="gates and states", choices=list(STATE_NAMES["lstm"]), value=list(STATE_NAMES["lstm"]),
            elem_id="gate-states",
        )  # fmt: skip
        # a layer chosen for the previous run may arrive with the next run's request: `gate_figure`
        # clamps it, rather than Gradio refusing it as "not in the list of choices"
        layer = gr.Dropdown(
            label="layer",
            choices=[("layer 0 (top)", 0)],
            value=0,
            elem_id="gate-layer",
            allow_custom_value=True,
        )
        direction = gr.Radio(
            label="direction", choices=["forward"], value="forward", elem_id="gate-direction"
        )
    with gr.Row():
        order = gr.Radio(
            label="unit ordering", choices=[(ORDERINGS[m], m) for m in SELECT_MODES], value="variance",
            elem_id="gate-order",
        )  # fmt: skip
        k = gr.Slider(1, 64, value=12, step=1, label="units shown", elem_id="gate-k")
        units = gr.Textbox(
            label="unit numbers (for 'the unit numbers typed')",
            placeholder="0 5 12",
            elem_id="gate-units",
        )
    gate_message = gr.HTML(elem_id="gate-message")
    gate_plot = gr.Plot(label="gate heatmaps", elem_id="gate-heatmaps")
    return (gate_states, layer, direction, order, k, units), gate_message, gate_plot
