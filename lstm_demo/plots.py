"""Figures and HTML from plain data (lists, dicts, the frozen dataclasses' fields). No gradio, no torch.

Every piece of user text (tokens, words, label names) is passed through `html.escape` before it
reaches HTML or a plotly figure: plotly renders a subset of HTML in hover labels, tick labels and
legends, and a sentence like ``<img src=x onerror=alert(1)>`` must be shown, never run.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

POSITIVE_RGB = (214, 39, 40)  # red: pushes towards the explained class
NEGATIVE_RGB = (31, 119, 180)  # blue: pushes away from it
# plotly's diverging scale, blue for negative, white at zero, red for positive
DIVERGING = [[0.0, "rgb(31,119,180)"], [0.5, "rgb(255,255,255)"], [1.0, "rgb(214,39,40)"]]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def score_color(score: float, scale: float) -> str:
    """A translucent red (positive) or blue (negative) whose opacity is |score| / scale, capped at 1."""
    alpha = min(abs(score) / scale, 1.0) if scale > 0 else 0.0
    r, g, b = POSITIVE_RGB if score >= 0 else NEGATIVE_RGB
    return f"rgba({r}, {g}, {b}, {alpha:.3f})"


def _scale(scores: Sequence[float | None]) -> float:
    return max((abs(s) for s in scores if s is not None), default=0.0)


def highlight_html(
    tokens: Sequence[str], scores: Sequence[float | None], *, scale: float | None = None
) -> str:
    """Tokens (or words) as inline spans shaded by score; hovering shows the score.

    `scale` is the |score| drawn at full colour (default: the largest |score|, so each sentence uses
    the whole range). A `None` score (a word the model never saw, e.g. a dropped stop word) is grey.
    """
    if len(tokens) != len(scores):
        raise ValueError(f"got {len(scores)} scores for {len(tokens)} tokens")
    scale = _scale(scores) if scale is None else scale
    spans = []
    for token, score in zip(tokens, scores, strict=True):
        if score is None:
            style, title = "color: #888;", "not seen by the model"
        else:
            style, title = f"background-color: {score_color(score, scale)};", f"{score:+.4f}"
        spans.append(
            f'<span class="lstm-demo-token" style="{style} padding: 1px 3px; border-radius: 3px;" '
            f'title="{_esc(title)}">{_esc(token)}</span>'
        )
    return '<div class="lstm-demo-highlight" style="line-height: 2;">' + " ".join(spans) + "</div>"


def methods_html(
    tokens: Sequence[str], scores_by_method: Mapping[str, Sequence[float | None]], *, caption: str = ""
) -> str:
    """Several methods side by side: one row per method, each coloured on its own scale.

    Methods measure different things in different units (a logit share, a probability drop, a
    gradient norm), so each row's strongest token gets full colour; compare rankings, not shades.
    """
    rows = [
        f'<tr><th style="text-align: left; padding-right: 1em; white-space: nowrap;">{_esc(name)}</th>'
        f"<td>{highlight_html(tokens, scores)}</td></tr>"
        for name, scores in scores_by_method.items()
    ]
    cap = (
        f'<caption style="caption-side: bottom; text-align: left;">{_esc(caption)}</caption>'
        if caption
        else ""
    )
    return f'<table class="lstm-demo-methods">{cap}{"".join(rows)}</table>'


def _token_axis(tokens: Sequence[str]) -> dict:
    """Tick labels for token positions: positions, not category names, so repeated words stay apart."""
    return {"tickmode": "array", "tickvals": list(range(len(tokens))), "ticktext": [_esc(t) for t in tokens]}


def gate_heatmaps(
    tokens: Sequence[str],
    states: Mapping[str, Sequence[Sequence[float]]],
    units: Sequence[int],
    *,
    names: Sequence[str] | None = None,
    title: str = "",
) -> go.Figure:
    """One heatmap per gate/state (tokens down, chosen units across), all on one symmetric colour scale.

    `states` is a `LayerTrace.states` (name -> T x H); `units` the columns to show, in that order
    (`gates.select_units`); `names` the states to draw (default: all, in their order).
    """
    names = list(states) if names is None else list(names)
    units = list(units)
    if not names or not units:
        raise ValueError("need at least one state and one unit to draw")
    unknown = [n for n in names if n not in states]
    if unknown:
        raise ValueError(f"unknown states {unknown}; choose from {list(states)}")
    grids = {n: [[row[u] for u in units] for row in states[n]] for n in names}  # name -> T x k
    bound = max((abs(v) for grid in grids.values() for row in grid for v in row), default=0.0) or 1.0
    safe_tokens = [_esc(t) for t in tokens]
    fig = make_subplots(
        rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True, horizontal_spacing=0.02
    )
    for col, name in enumerate(names, start=1):
        custom = [[[tok, f"unit {u}", name] for u in units] for tok in safe_tokens]  # T x k x 3
        fig.add_trace(
            go.Heatmap(
                z=grids[name],
                x=list(range(len(units))),
                y=list(range(len(tokens))),
                customdata=custom,
                coloraxis="coloraxis",
                hovertemplate="token: %{customdata[0]}<br>%{customdata[1]}<br>%{customdata[2]}: %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(
            tickmode="array", tickvals=list(range(len(units))), ticktext=[str(u) for u in units],
            title_text="unit", row=1, col=col,
        )  # fmt: skip
    fig.update_yaxes(autorange="reversed", **_token_axis(tokens))  # first token at the top
    fig.update_yaxes(title_text="token", row=1, col=1)
    fig.update_layout(
        title=_esc(title) if title else None,
        coloraxis={
            "colorscale": DIVERGING,
            "cmin": -bound,
            "cmax": bound,
            "colorbar": {"title": {"text": "value"}},
        },
        height=max(320, 22 * len(tokens) + 140),
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
    )
    return fig


def decision_path_figure(
    tokens: Sequence[str], probabilities: Sequence[Sequence[float]], labels: Sequence[str], *, title: str = ""
) -> go.Figure:
    """Class probabilities after each prefix of the text: one line per class (`gates.DecisionPath`)."""
    if len(probabilities) != len(tokens):
        raise ValueError(f"got {len(probabilities)} probability rows for {len(tokens)} tokens")
    safe_tokens = [_esc(t) for t in tokens]
    fig = go.Figure()
    for c, label in enumerate(labels):
        fig.add_trace(
            go.Scatter(
                x=list(range(len(tokens))),
                y=[row[c] for row in probabilities],
                mode="lines+markers",
                name=_esc(label),
                customdata=safe_tokens,
                meta=_esc(label),  # via meta, so a label is never read as part of the template
                hovertemplate="after %{customdata}<br>p(%{meta}) = %{y:.3f}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="text read up to this token", **_token_axis(tokens))
    fig.update_yaxes(title_text="probability", range=[0, 1])
    fig.update_layout(title=_esc(title) if title else None, hovermode="x unified", margin={"t": 50})
    return fig
