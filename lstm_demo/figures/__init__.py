"""Figures and HTML tables from plain data (lists, dicts, the frozen dataclasses' fields).

- `explain`: what explains one sentence: highlighted words, gate heatmaps, the decision path,
  faithfulness per method.
- `runs`: what describes data and runs: label counts, training curves, confusion matrix, the LSTM
  beside its TF-IDF baseline.
- `settings`: one run's settings and dataset, and several runs' settings side by side.

No gradio, no torch. Every piece of user text (tokens, words, labels, run names, setting values)
goes through `esc` before it reaches HTML or a plotly figure: plotly renders a subset of HTML in
hover labels, tick labels, titles and legends, and a sentence like ``<img src=x onerror=alert(1)>``
must be shown, never run.
"""

from __future__ import annotations

import html

# plotly's default qualitative colours, in order: one per run or class
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def esc(text: object) -> str:
    """`text` as HTML-safe text (quotes too, so it is safe inside an attribute)."""
    return html.escape(str(text), quote=True)


def figure_title(text: str) -> str | None:
    """An escaped figure title, or None (no title bar) for an empty one."""
    return esc(text) if text else None
