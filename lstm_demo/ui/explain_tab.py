"""Explain tab: attributions per method side by side with IG's delta and ERASER faithfulness, the gate
heatmaps (gate, layer, direction and unit-ordering controls), the decision path, and a second run
explaining the same sentence beside the first.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr

from ..figures import explain as charts
from ..figures import explain as plots
from ..names import DIRECTIONS, METHODS, SELECT_MODES, STATE_NAMES
from ..service import Service
from .common import fmt, labels_of, message_html, resolve_run, user_message
from .predict_tab import run_dropdown

DEFAULT_METHODS = ["ig", "occlusion", "saliency"]
METHOD_HEADERS = [
    "method",
    "IG delta",
    "delta share",
    "within 5%",
    "comprehensiveness",
    "sufficiency",
    "seconds",
]
ORDERINGS = {
    "variance": "most varying over the sentence",
    "contribution": "largest push towards the target class (last layer)",
    "index": "the unit numbers typed below",
}
PREDICTED = ""  # the target dropdown's value for "the predicted class"


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
        rows.append(
            [
                a.title,
                fmt(a.delta, 4),
                ratio,
                ok,
                fmt(f.get("comprehensiveness")),
                fmt(f.get("sufficiency")),
                f"{a.seconds:.3f}",
            ]
        )
    if faithfulness and "random" in faithfulness:
        r = faithfulness["random"]
        rows.append(["random ordering", "", "", "", fmt(r["comprehensiveness"]), fmt(r["sufficiency"]), ""])
    return rows


def highlights(explanation: Any) -> str:
    """Every method's word scores, one row each, with the target and baseline in the caption."""
    scores = {a.title: a.word_scores for a in explanation.attributions.values()}
    baselines = sorted({a.baseline for a in explanation.attributions.values()})
    p = explanation.probabilities[explanation.target]
    caption = (
        f"explaining '{explanation.target}' (p = {p:.3f}; predicted '{explanation.predicted}'). "
        f"Red pushes towards it, blue away. Baseline: {'; '.join(baselines)}."
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
    chosen = service.select_units(
        trace,
        order,
        int(k),
        layer=int(layer),
        direction=direction,
        state="hidden" if "hidden" in states else states[0],
        indices=indices,
        target=labels.index(target) if target in labels else None,
    )
    lt = trace.layer(int(layer), direction)
    title = f"layer {lt.layer}, {direction}: {len(chosen)} units by {order}"
    return plots.gate_heatmaps(trace.tokens, lt.states, chosen, names=states, title=title)


def unit_numbers(text: str) -> list[int]:
    """'0 5, 12' -> [0, 5, 12]."""
    parts = (text or "").replace(",", " ").split()
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError("type the unit numbers to show as whole numbers, e.g. 0 5 12")
    return [int(p) for p in parts]


def model_controls(service: Service, run_id: str | None) -> tuple[Any, ...]:
    """Target, gate, layer and direction choices that fit the chosen run."""
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
    layers = [
        (f"layer {i}" + (" (top)" if i == model.get("num_layers", 1) - 1 else ""), i)
        for i in range(model.get("num_layers", 1))
    ]
    return (
        gr.Dropdown(
            choices=[("predicted class", PREDICTED), *((label, label) for label in labels)], value=PREDICTED
        ),
        gr.CheckboxGroup(choices=list(STATE_NAMES[encoder]), value=list(STATE_NAMES[encoder])),
        gr.Dropdown(choices=layers, value=layers[-1][1]),
        gr.Radio(choices=directions, value=directions[0]),
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
                service,
                None,
                optional=True,
                label="compare with run (optional)",
                elem_id="explain-compare",
                interactive=True,
            )
    with gr.Row():
        target = gr.Dropdown(
            label="target class",
            choices=[("predicted class", PREDICTED)],
            value=PREDICTED,
            elem_id="explain-target",
            interactive=True,
        )
        methods = gr.CheckboxGroup(
            label="methods",
            choices=[(title, key) for key, title in METHODS.items()],
            value=DEFAULT_METHODS,
            elem_id="explain-methods",
        )
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
            table = gr.Dataframe(
                headers=METHOD_HEADERS,
                label="methods: convergence delta and faithfulness",
                interactive=False,
                elem_id="explain-table",
            )
            faith_plot = gr.Plot(label="faithfulness on this sentence", elem_id="explain-faithfulness-plot")
            path_plot = gr.Plot(label="decision path", elem_id="decision-path")
        with gr.Column(scale=2, elem_id="compare-column"):
            gr.Markdown("**Second run** (choose one above to compare)")
            compare_prediction = gr.Label(label="prediction", num_top_classes=5, elem_id="compare-prediction")
            compare_marked = gr.HTML(elem_id="compare-highlights")
            compare_path = gr.Plot(label="decision path", elem_id="compare-decision-path")

    gr.Markdown(
        "### Gates and states\nRows are the words, columns the chosen units; see *How an LSTM works* for the equations."
    )
    with gr.Row():
        gate_states = gr.CheckboxGroup(
            label="gates and states",
            choices=list(STATE_NAMES["lstm"]),
            value=list(STATE_NAMES["lstm"]),
            elem_id="gate-states",
        )
        layer = gr.Dropdown(label="layer", choices=[("layer 0 (top)", 0)], value=0, elem_id="gate-layer")
        direction = gr.Radio(
            label="direction", choices=["forward"], value="forward", elem_id="gate-direction"
        )
    with gr.Row():
        order = gr.Radio(
            label="unit ordering",
            choices=[(ORDERINGS[m], m) for m in SELECT_MODES],
            value="variance",
            elem_id="gate-order",
        )
        k = gr.Slider(1, 64, value=12, step=1, label="units shown", elem_id="gate-k")
        units = gr.Textbox(
            label="unit numbers (for 'the unit numbers typed')", placeholder="0 5 12", elem_id="gate-units"
        )
    gate_message = gr.HTML(elem_id="gate-message")
    gate_plot = gr.Plot(label="gate heatmaps", elem_id="gate-heatmaps")

    gate_inputs = [run, text, gate_states, layer, direction, order, k, units, target]

    def draw_gates(run_id: str | None, sentence: str, *controls: Any) -> dict[Any, Any]:
        if not sentence or not sentence.strip():
            return {gate_plot: None, gate_message: ""}
        try:
            figure = gate_figure(service, resolve_run(service, run_id), sentence, *controls)
        except Exception as e:
            return {gate_plot: None, gate_message: message_html(user_message(e))}
        return {gate_plot: figure, gate_message: ""}

    def explain_one(run_id: str, sentence: str, chosen: list[str], target_label: str, n_steps: int) -> Any:
        labels = labels_of(service, run_id)
        return service.explain(
            run_id,
            sentence,
            methods=chosen or ["ig"],
            target=target_label if target_label in labels else None,
            steps=int(n_steps),
        )

    def explain(
        run_id: str | None,
        other: str | None,
        sentence: str,
        target_label: str,
        chosen: list[str],
        n_steps: float,
        measure: bool,
        *controls: Any,
    ) -> dict[Any, Any]:
        cleared = {
            prediction: None,
            marked: "",
            table: None,
            faith_plot: None,
            path_plot: None,
            compare_prediction: None,
            compare_marked: "",
            compare_path: None,
        }
        try:
            run_id = resolve_run(service, run_id)
            e = explain_one(run_id, sentence, chosen, target_label, n_steps)
            faith = (
                sentence_faithfulness(service, run_id, sentence, list(e.attributions), int(n_steps))
                if measure
                else None
            )
            dp = service.decision_path(run_id, sentence)
        except Exception as err:
            return {**cleared, message: message_html(user_message(err)), gate_plot: None}
        out = {
            **cleared,
            message: "",
            prediction: e.probabilities,
            marked: highlights(e),
            table: method_rows(e, faith),
            faith_plot: charts.faithfulness_bars(faith, title="on this sentence") if faith else None,
            path_plot: plots.decision_path_figure(
                dp.tokens, dp.probabilities, dp.labels, title=f"run {run_id}"
            ),
            **draw_gates(run_id, sentence, *controls, target_label),
        }
        if other:
            try:
                e2 = explain_one(other, sentence, chosen, target_label, n_steps)
                dp2 = service.decision_path(other, sentence)
                out.update(
                    {
                        compare_prediction: e2.probabilities,
                        compare_marked: highlights(e2),
                        compare_path: plots.decision_path_figure(
                            dp2.tokens, dp2.probabilities, dp2.labels, title=f"run {other}"
                        ),
                    }
                )
            except Exception as err:
                out[compare_marked] = message_html(f"run {other}: {user_message(err)}")
        return out

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
    explain_outputs = [
        message,
        prediction,
        marked,
        table,
        faith_plot,
        path_plot,
        compare_prediction,
        compare_marked,
        compare_path,
        gate_plot,
        gate_message,
    ]
    for trigger in (explain_btn.click, text.submit):
        trigger(
            explain,
            explain_inputs,
            explain_outputs,
            api_visibility="private",
            concurrency_id="explain",
            concurrency_limit=2,
        )
    for control in (gate_states, layer, direction, order, k):
        control.change(
            draw_gates,
            gate_inputs,
            [gate_plot, gate_message],
            trigger_mode="always_last",
            api_visibility="private",
            concurrency_id="explain",
            concurrency_limit=2,
        )
    units.submit(draw_gates, gate_inputs, [gate_plot, gate_message], api_visibility="private")
    run.change(
        functools.partial(model_controls, service),
        run,
        [target, gate_states, layer, direction],
        api_visibility="private",
    )

    def on_active(run_id: str | None) -> tuple[Any, ...]:
        return (run_dropdown(service, run_id), *model_controls(service, run_id))

    active.change(on_active, active, [run, target, gate_states, layer, direction], api_visibility="private")
    return run, compare
