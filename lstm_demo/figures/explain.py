"""What explains one sentence: words shaded by attribution, gate heatmaps, the decision path, and
how faithful each method was. Plain data in; HTML or plotly figures out (see `figures`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..names import METHODS
from ..tokenization import UNK
from . import PALETTE, esc, figure_title

POSITIVE_RGB = (214, 39, 40)  # red: pushes towards the explained class
NEGATIVE_RGB = (31, 119, 180)  # blue: pushes away from it
MAGNITUDE_RGB = (117, 107, 177)  # purple: strength without a direction (unsigned methods)
DIVERGING = [[0.0, "rgb(31,119,180)"], [0.5, "rgb(255,255,255)"], [1.0, "rgb(214,39,40)"]]
SEQUENTIAL = [[0.0, "rgb(255,255,255)"], [1.0, "rgb(63,0,125)"]]  # white at 0, dark purple at 1

# sigmoid gates: always in 0..1, so they get a fixed 0-1 scale instead of one centred on 0
SIGMOID_STATES = frozenset({"input", "forget", "output", "reset", "update"})
# methods whose scores are magnitudes (Saliency takes |gradient|): they cannot say towards or against
UNSIGNED_METHODS = frozenset({"saliency"})
_UNSIGNED_ROWS = UNSIGNED_METHODS | {METHODS[m] for m in UNSIGNED_METHODS}  # by key or by title


def score_color(score: float, scale: float, *, signed: bool = True) -> str:
    """A translucent colour whose opacity is |score| / scale, capped at 1: red or blue by sign when
    `signed`, one colour for a magnitude."""
    alpha = min(abs(score) / scale, 1.0) if scale > 0 else 0.0
    r, g, b = MAGNITUDE_RGB if not signed else POSITIVE_RGB if score >= 0 else NEGATIVE_RGB
    return f"rgba({r}, {g}, {b}, {alpha:.3f})"


def _scale(scores: Sequence[float | None]) -> float:
    return max((abs(s) for s in scores if s is not None), default=0.0)


def highlight_html(
    tokens: Sequence[str],
    scores: Sequence[float | None],
    *,
    scale: float | None = None,
    signed: bool = True,
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
            color = score_color(score, scale, signed=signed)
            style, title = f"background-color: {color};", f"{score:+.4f}" if signed else f"{score:.4f}"
        spans.append(
            f'<span class="lstm-demo-token" style="{style} padding: 1px 3px; border-radius: 3px;" '
            f'title="{esc(title)}">{esc(token)}</span>'
        )
    return '<div class="lstm-demo-highlight" style="line-height: 2;">' + " ".join(spans) + "</div>"


def _swatch(rgb: tuple[int, int, int], text: str) -> str:
    r, g, b = rgb
    return (
        f'<span style="background-color: rgba({r}, {g}, {b}, 0.8); padding: 0 6px; border-radius: 3px;">'
        f"&nbsp;</span> {text}"
    )


def attribution_legend(names: Sequence[str], target: str | None = None) -> str:
    """How to read the colours of the rows `names` (method keys or titles): the red/blue legend only
    when a signed method is among them, and its own wording for the unsigned ones."""
    towards = f"'{esc(target)}'" if target else "the explained class"
    unsigned = [n for n in names if n in _UNSIGNED_ROWS]
    parts = []
    if len(unsigned) < len(names):
        parts.append(
            _swatch(POSITIVE_RGB, f"pushes towards {towards}")
            + " &nbsp; "
            + _swatch(NEGATIVE_RGB, "against it")
        )
    if unsigned:
        which = ", ".join(esc(n) for n in unsigned)
        parts.append(
            _swatch(MAGNITUDE_RGB, f"{which}: how strongly the word moves the score, not in which direction")
        )
    return '<div class="lstm-demo-legend">' + "<br>".join(parts) + "</div>"


def methods_html(
    tokens: Sequence[str],
    scores_by_method: Mapping[str, Sequence[float | None]],
    *,
    caption: str = "",
    target: str | None = None,
) -> str:
    """Several methods side by side: one row per method, each coloured on its own scale, with a legend.

    Methods measure different things in different units (a logit share, a probability drop, a
    gradient norm), so each row's strongest token gets full colour; compare rankings, not shades.
    Rows are keyed by method key or title; an unsigned method's row is shaded in one colour.
    """
    rows = [
        f'<tr><th style="text-align: left; padding-right: 1em; white-space: nowrap;">{esc(name)}</th>'
        f"<td>{highlight_html(tokens, scores, signed=name not in _UNSIGNED_ROWS)}</td></tr>"
        for name, scores in scores_by_method.items()
    ]
    legend = attribution_legend(list(scores_by_method), target) if scores_by_method else ""
    cap = f"<div>{esc(caption)}</div>" if caption else ""
    return (
        f'<table class="lstm-demo-methods"><caption style="caption-side: bottom; text-align: left;">'
        f"{legend}{cap}</caption>{''.join(rows)}</table>"
    )


def token_labels(
    tokens: Sequence[str], words: Sequence[str] | None = None, word_index: Sequence[int] | None = None
) -> list[str]:
    """A label per token that keeps the user's words (`Encoded.words`, `.word_index`).

    A word read as one token shows as the user typed it (the model may have lower-cased or stemmed
    it); a piece of a longer word shows as the piece; an unknown word shows as the word marked
    `[UNK]`, so the user sees which of their words the model could not read. Without the words,
    the tokens themselves.
    """
    if not words or not word_index:  # None, or a trace made from ids alone
        return list(tokens)
    if len(word_index) != len(tokens):
        raise ValueError(f"got {len(word_index)} word indices for {len(tokens)} tokens")
    pieces = Counter(word_index)
    labels = []
    for token, w in zip(tokens, word_index, strict=True):
        if token == UNK:
            labels.append(f"{words[w]} {UNK}")
        else:
            labels.append(words[w] if pieces[w] == 1 else token)
    return labels


def _token_axis(labels: Sequence[str]) -> dict:
    """Tick labels for token positions: positions, not category names, so repeated words stay apart."""
    return {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": [esc(t) for t in labels]}


def _color_axis(name: str, grid: Sequence[Sequence[float]], x_end: float) -> dict:
    """A colour axis for one panel, its bar just right of the panel: gates on a fixed 0-1 scale,
    everything else on a diverging scale symmetric around 0 fitted to this panel's values."""
    if name in SIGMOID_STATES:
        scale, low, high = SEQUENTIAL, 0.0, 1.0
    else:
        bound = max((abs(v) for row in grid for v in row), default=0.0) or 1.0
        scale, low, high = DIVERGING, -bound, bound
    bar = {"x": x_end + 0.004, "xanchor": "left", "thickness": 8, "len": 1.0, "tickfont": {"size": 9}}
    return {"colorscale": scale, "cmin": low, "cmax": high, "colorbar": bar}


def gate_heatmaps(
    tokens: Sequence[str],
    states: Mapping[str, Sequence[Sequence[float]]],
    units: Sequence[int],
    *,
    names: Sequence[str] | None = None,
    title: str = "",
    words: Sequence[str] | None = None,
    word_index: Sequence[int] | None = None,
) -> go.Figure:
    """One heatmap per gate/state (tokens down, chosen units across), each with its own colour bar.

    `states` is a `LayerTrace.states` (name -> T x H); `units` the columns to show, in that order
    (`gates.select_units`); `names` the states to draw (default: all, in their order); `words` and
    `word_index` (from the text's `Encoded`) label the rows with the user's words (`token_labels`).
    Gates live in 0..1 and the cell in about -5..5: one shared scale would wash the gates out.
    """
    names = list(states) if names is None else list(names)
    units = list(units)
    if not names or not units:
        raise ValueError("need at least one state and one unit to draw")
    unknown = [n for n in names if n not in states]
    if unknown:
        raise ValueError(f"unknown states {unknown}; choose from {list(states)}")
    labels = token_labels(tokens, words, word_index)
    safe_labels = [esc(t) for t in labels]
    spacing = min(0.07, 1 / len(names)) if len(names) > 1 else 0.0  # room for each panel's colour bar
    fig = make_subplots(
        rows=1, cols=len(names), subplot_titles=[esc(n) for n in names], shared_yaxes=True,
        horizontal_spacing=spacing,
    )  # fmt: skip
    for col, name in enumerate(names, start=1):
        grid = [[row[u] for u in units] for row in states[name]]  # T x k
        axis = "coloraxis" if col == 1 else f"coloraxis{col}"
        x_end = fig.layout[f"xaxis{col if col > 1 else ''}"].domain[1]
        fig.add_trace(
            go.Heatmap(
                z=grid,
                x=list(range(len(units))),
                y=list(range(len(tokens))),
                customdata=[[[tok, f"unit {u}", esc(name)] for u in units] for tok in safe_labels],
                coloraxis=axis,
                hovertemplate="token: %{customdata[0]}<br>%{customdata[1]}<br>%{customdata[2]}: %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_layout({axis: _color_axis(name, grid, x_end)})
        fig.update_xaxes(
            tickmode="array", tickvals=list(range(len(units))), ticktext=[str(u) for u in units],
            title_text="unit", row=1, col=col,
        )  # fmt: skip
    fig.update_yaxes(autorange="reversed", **_token_axis(labels))  # first token at the top
    fig.update_yaxes(title_text="token", row=1, col=1)
    fig.update_layout(
        title=figure_title(title),
        height=max(320, 22 * len(tokens) + 140),
        margin={"l": 10, "r": 40, "t": 60, "b": 40},
    )
    return fig


def decision_path_figure(
    tokens: Sequence[str],
    probabilities: Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    title: str = "",
    words: Sequence[str] | None = None,
    word_index: Sequence[int] | None = None,
) -> go.Figure:
    """Class probabilities after each prefix of the text: one line per class (`gates.DecisionPath`)."""
    if len(probabilities) != len(tokens):
        raise ValueError(f"got {len(probabilities)} probability rows for {len(tokens)} tokens")
    shown = token_labels(tokens, words, word_index)
    safe_tokens = [esc(t) for t in shown]
    fig = go.Figure()
    for c, label in enumerate(labels):
        fig.add_trace(
            go.Scatter(
                x=list(range(len(tokens))),
                y=[row[c] for row in probabilities],
                mode="lines+markers",
                name=esc(label),
                customdata=safe_tokens,
                meta=esc(label),  # via meta, so a label is never read as part of the template
                hovertemplate="after %{customdata}<br>p(%{meta}) = %{y:.3f}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="text read up to this token", **_token_axis(shown))
    fig.update_yaxes(title_text="probability", range=[0, 1])
    fig.update_layout(title=figure_title(title), hovermode="x unified", margin={"t": 50})
    return fig


def faithfulness_bars(scores: Mapping[str, Mapping[str, float]], *, title: str = "") -> go.Figure:
    """Comprehensiveness (higher is better) and sufficiency (lower is better) per method, beside chance.

    `scores` is `service.faithfulness` output: method -> {"comprehensiveness", "sufficiency", ...}.
    """
    methods = list(scores)
    safe = [esc(m) for m in methods]
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
        barmode="group", title=figure_title(title), height=300, margin={"l": 10, "r": 10, "t": 40, "b": 40}
    )
    return fig
