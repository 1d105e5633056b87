"""What describes data and runs: label counts, training curves of one or several runs, the confusion
matrix, and the LSTM beside its TF-IDF baseline. Plain data in; plotly figures out (see `figures`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import PALETTE, esc, figure_title

CURVES = (  # (field, display name, panel): losses on the left, validation scores on the right
    ("train_loss", "train loss", 1),
    ("val_loss", "validation loss", 1),
    ("val_accuracy", "validation accuracy", 2),
    ("val_macro_f1", "validation macro-F1", 2),
)
DASHES = {"train_loss": "solid", "val_loss": "dash", "val_accuracy": "solid", "val_macro_f1": "dot"}
SCORES = {  # a run's final figures (`RunSummary` fields), as the baseline comparison names them
    "val_accuracy": "validation accuracy",
    "val_macro_f1": "validation macro-F1",
    "test_accuracy": "test accuracy",
    "test_macro_f1": "test macro-F1",
}
BASELINE_NAME = "TF-IDF + logistic regression"
SHORT_ID = 8  # characters of a run id shown where a run has no name


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


def run_names(run_ids: Sequence[str], names: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """How each run is called in a legend: its name, else its short id; a name that two runs share
    gets the short id added, so no two legend groups read the same."""
    names = names or {}
    base = {rid: names.get(rid) or rid[:SHORT_ID] for rid in run_ids}
    seen = Counter(base.values())
    return {
        rid: f"{b} ({rid[:SHORT_ID]})" if seen[b] > 1 and names.get(rid) else b for rid, b in base.items()
    }


def training_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    names: Mapping[str, str | None] | None = None,
    title: str = "",
) -> go.Figure:
    """Loss (left) and validation scores (right) against epochs; one colour per run, overlaid.

    `runs` maps a run id to its `curve_points`; `names` maps run ids to run names (a run without
    one shows its short id). The legend, below the plot, has one entry per run and metric,
    grouped under the run's name. Validation figures exist at epoch ends only, so they are drawn
    from the epoch points; the train loss from every point.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "validation"), horizontal_spacing=0.1)
    labels = run_names(list(runs), names)
    for i, (run_id, points) in enumerate(runs.items()):
        color, run = PALETTE[i % len(PALETTE)], esc(labels[run_id])
        for field, label, col in CURVES:
            use = points if field == "train_loss" else [p for p in points if p.get("kind") == "epoch"]
            xy = [(p["x"], p[field]) for p in use if p.get(field) is not None]
            if not xy:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[x for x, _ in xy],
                    y=[y for _, y in xy],
                    mode="lines" if field == "train_loss" else "lines+markers",
                    name=label,
                    legendgroup=run_id,
                    legendgrouptitle={"text": run},
                    line={"color": color, "dash": DASHES[field]},
                    meta=f"{run}: {label}",
                    hovertemplate="%{meta}<br>epoch %{x:.2f}: %{y:.4f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(
        title=figure_title(title),
        height=440 + 110 * ((len(runs) - 1) // 4),  # the legend below wraps after about four runs
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "traceorder": "grouped"},
    )
    return fig


def label_distribution(counts: Mapping[str, int], *, title: str = "") -> go.Figure:
    """Rows per class as bars, so a skewed dataset is visible before training."""
    labels = list(counts)
    total = sum(counts.values()) or 1
    safe = [esc(label) for label in labels]
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
    fig.update_layout(title=figure_title(title), height=280, margin={"l": 10, "r": 10, "t": 40, "b": 40})
    return fig


def confusion_matrix(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], *, title: str = ""
) -> go.Figure:
    """`confusion[i][j]`: examples of true class i predicted as j; counts written in the cells."""
    n = len(labels)
    if len(confusion) != n or any(len(row) != n for row in confusion):
        raise ValueError(f"the confusion matrix must be {n} x {n} for {n} labels")
    safe = [esc(label) for label in labels]
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
        title=figure_title(title), height=max(280, 40 * n + 140), margin={"l": 10, "r": 10, "t": 40, "b": 40}
    )
    return fig


def _baseline_scores(baseline: Mapping[str, float | None]) -> dict[str, float | None]:
    """The baseline's figures by `SCORES` key, from plain keys or `BaselineResult.to_dict`'s prefixed ones."""
    return {key: baseline.get(key, baseline.get(f"baseline_{key}")) for key in SCORES}


def _shared_scores(lstm: Mapping[str, float | None], baseline: Mapping[str, float | None]) -> list[str]:
    """The `SCORES` both models have (a run without a test split has no test figures)."""
    base = _baseline_scores(baseline)
    return [k for k in SCORES if lstm.get(k) is not None and base[k] is not None]


def baseline_figure(
    lstm: Mapping[str, float | None], baseline: Mapping[str, float | None], *, title: str = ""
) -> go.Figure:
    """The LSTM's figures beside the baseline's, two bars per figure both have.

    `lstm` is keyed like `SCORES` (a `RunSummary`'s fields); `baseline` too, or `BaselineResult.to_dict`.
    """
    keys = _shared_scores(lstm, baseline)
    if not keys:
        raise ValueError("the run and its baseline share no figure to compare (no validation or test scores)")
    base = _baseline_scores(baseline)
    fig = go.Figure()
    for name, values, color in (("LSTM", lstm, PALETTE[0]), (BASELINE_NAME, base, "#999999")):
        fig.add_trace(
            go.Bar(
                name=name,
                x=[SCORES[k] for k in keys],
                y=[values[k] for k in keys],
                text=[f"{values[k]:.3f}" for k in keys],
                textposition="outside",
                marker_color=color,
                meta=name,
                hovertemplate="%{meta}<br>%{x}: %{y:.4f}<extra></extra>",
            )
        )
    fig.update_yaxes(range=[0, 1.1], title_text="score")
    fig.update_layout(
        barmode="group",
        title=figure_title(title),
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.15},
    )
    return fig


def baseline_verdict(lstm: Mapping[str, float | None], baseline: Mapping[str, float | None]) -> str:
    """One sentence saying by how much the LSTM beats or trails the baseline, on the test split when
    both have one (else validation), in points of accuracy and of macro-F1."""
    keys = _shared_scores(lstm, baseline)
    split = "test" if "test_accuracy" in keys else "validation" if "val_accuracy" in keys else None
    if split is None:
        return f"no {BASELINE_NAME} figures to compare with"
    base = _baseline_scores(baseline)
    parts = []
    for key in (k for k in keys if SCORES[k].startswith(split)):
        gap = 100 * (lstm[key] - base[key])  # type: ignore[operator]
        other = BASELINE_NAME if not parts else "it"
        metric = SCORES[key].removeprefix(f"{split} ")
        if abs(gap) < 0.05:  # equal to the printed precision
            parts.append(f"ties with {other} on {metric}")
        else:
            parts.append(f"{'beats' if gap > 0 else 'trails'} {other} by {abs(gap):.1f} points of {metric}")
    return f"On the {split} split the LSTM " + " and ".join(parts) + "."
