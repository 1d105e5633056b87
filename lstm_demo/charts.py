"""The app's other figures from plain data: training curves, label counts, confusion matrix, faithfulness.

`plots.py` draws what explains one sentence; this module draws what describes data and runs. No
gradio, no torch. Every label, run name and class name is escaped, as in `plots.py`: plotly
renders a subset of HTML in legends, ticks and hover labels.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

CURVES = (  # (field, display name, panel): losses on the left, validation scores on the right
    ("train_loss", "train loss", 1),
    ("val_loss", "validation loss", 1),
    ("val_accuracy", "validation accuracy", 2),
    ("val_macro_f1", "validation macro-F1", 2),
)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def curve_points(points: Iterable[Any]) -> list[dict[str, Any]]:
    """Training reports (`train.Progress`, `store.MetricPoint` or dicts with the same fields) as
    plot points whose `x` is the position in epochs (2.5 = half-way through the third epoch).

    A step report inside epoch e sits at e - 1 + step / steps_per_epoch; where the steps per epoch
    are not recorded (stored curves), the largest step seen in that epoch stands in for it.
    """
    rows = [p if isinstance(p, Mapping) else vars(p) for p in points]
    last_step: dict[int, int] = {}
    for r in rows:
        last_step[r["epoch"]] = max(last_step.get(r["epoch"], 0), int(r.get("step") or 0))
    out = []
    for r in rows:
        if r.get("kind") == "epoch":
            x = float(r["epoch"])
        else:
            per_epoch = r.get("steps_per_epoch") or last_step.get(r["epoch"]) or 1
            x = r["epoch"] - 1 + int(r.get("step") or 0) / per_epoch
        out.append({"x": x, **{name: r.get(name) for name, _, _ in CURVES}, "kind": r.get("kind")})
    return out


def training_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "") -> go.Figure:
    """Loss (left) and validation scores (right) against epochs; one colour per run, overlaid.

    `runs` maps a display name to `curve_points` output. Validation figures exist at epoch ends
    only, so they are drawn from the epoch points; the train loss from every point.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "validation"), horizontal_spacing=0.1)
    dashes = {"train_loss": "solid", "val_loss": "dash", "val_accuracy": "solid", "val_macro_f1": "dot"}
    for i, (name, points) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        for field, label, col in CURVES:
            use = points if field == "train_loss" else [p for p in points if p.get("kind") == "epoch"]
            xy = [(p["x"], p[field]) for p in use if p.get(field) is not None]
            if not xy:
                continue
            legend = f"{_esc(name)}: {label}" if len(runs) > 1 else label
            fig.add_trace(
                go.Scatter(
                    x=[x for x, _ in xy],
                    y=[y for _, y in xy],
                    mode="lines+markers" if field != "train_loss" else "lines",
                    name=legend,
                    line={"color": color, "dash": dashes[field]},
                    meta=legend,
                    hovertemplate="%{meta}<br>epoch %{x:.2f}: %{y:.4f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(
        title=_esc(title) if title else None,
        height=360,
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def label_distribution(counts: Mapping[str, int], *, title: str = "") -> go.Figure:
    """Rows per class as bars, so a skewed dataset is visible before training."""
    labels = list(counts)
    total = sum(counts.values()) or 1
    safe = [_esc(label) for label in labels]
    fig = go.Figure(
        go.Bar(
            x=list(range(len(labels))),
            y=[counts[label] for label in labels],
            customdata=[[s, counts[label] / total] for s, label in zip(safe, labels, strict=True)],
            hovertemplate="%{customdata[0]}: %{y} rows (%{customdata[1]:.1%})<extra></extra>",
            marker_color=PALETTE[0],
        )
    )
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=safe, title_text="label")
    fig.update_yaxes(title_text="rows")
    fig.update_layout(
        title=_esc(title) if title else None, height=280, margin={"l": 10, "r": 10, "t": 40, "b": 40}
    )
    return fig


def confusion_matrix(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], *, title: str = ""
) -> go.Figure:
    """`confusion[i][j]`: examples of true class i predicted as j; counts written in the cells."""
    n = len(labels)
    if len(confusion) != n or any(len(row) != n for row in confusion):
        raise ValueError(f"the confusion matrix must be {n} x {n} for {n} labels")
    safe = [_esc(label) for label in labels]
    custom = [[[safe[i], safe[j]] for j in range(n)] for i in range(n)]  # n x n x 2
    fig = go.Figure(
        go.Heatmap(
            z=[list(row) for row in confusion],
            x=list(range(n)),
            y=list(range(n)),
            customdata=custom,
            colorscale="Blues",
            text=[[str(v) for v in row] for row in confusion],
            texttemplate="%{text}",
            hovertemplate="true %{customdata[0]}<br>predicted %{customdata[1]}: %{z}<extra></extra>",
            showscale=False,
        )
    )
    axis = {"tickmode": "array", "tickvals": list(range(n)), "ticktext": safe}
    fig.update_xaxes(title_text="predicted", **axis)
    fig.update_yaxes(title_text="true", autorange="reversed", **axis)
    fig.update_layout(
        title=_esc(title) if title else None,
        height=max(280, 40 * n + 140),
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
    )
    return fig


def faithfulness_bars(scores: Mapping[str, Mapping[str, float]], *, title: str = "") -> go.Figure:
    """Comprehensiveness (higher is better) and sufficiency (lower is better) per method, beside chance.

    `scores` is `service.faithfulness` output: method -> {"comprehensiveness", "sufficiency", ...}.
    """
    methods = list(scores)
    safe = [_esc(m) for m in methods]
    fig = go.Figure()
    for key, color in (("comprehensiveness", PALETTE[1]), ("sufficiency", PALETTE[0])):
        fig.add_trace(
            go.Bar(
                name=key,
                x=safe,
                y=[scores[m].get(key) for m in methods],
                marker_color=color,
                meta=key,
                hovertemplate="%{x}<br>%{meta}: %{y:.3f}<extra></extra>",
            )
        )
    fig.update_yaxes(title_text="drop in the target probability")
    fig.update_layout(
        barmode="group",
        title=_esc(title) if title else None,
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
    )
    return fig
