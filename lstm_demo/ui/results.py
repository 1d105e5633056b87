"""How a finished run is shown (Train tab at the end of training, Runs tab for any run)."""

from __future__ import annotations

import html
import re
from typing import Any

import plotly.graph_objects as go

from ..figures import runs as charts
from .common import duration, fmt

PER_CLASS_HEADERS = ["label", "precision", "recall", "F1", "support"]
MISSED_HEADERS = ["text", "true label", "predicted", "confidence"]


def metrics_markdown(detail: Any) -> str:
    """A short summary of a stored run: status, scores, epochs, time, device."""
    s = detail.summary
    lines = [f"**Run `{s.id}`**: {s.status}" + (f", {md_text(s.name)}" if s.name else "")]
    refit = (detail.metrics or {}).get("refit")
    if s.val_accuracy is not None:
        lines.append(
            f"- validation: accuracy **{fmt(s.val_accuracy)}**, macro-F1 **{fmt(s.val_macro_f1)}**"
            + (" (first pass, before the refit)" if refit else "")
        )
    if s.test_accuracy is not None:
        lines.append(f"- test: accuracy **{fmt(s.test_accuracy)}**, macro-F1 **{fmt(s.test_macro_f1)}**")
    if s.epochs_run is not None:
        best = f", best epoch {s.best_epoch}" if s.best_epoch is not None else ""
        lines.append(
            f"- {s.epochs_run} epochs{best}, {duration(s.duration_seconds)} on {md_text(s.device or '?')}"
        )
    if refit:
        lines.append(
            f"- then refit on all {refit['rows']} training rows for {refit['epochs']} epochs: the kept model"
        )
    if s.error:
        lines.append(f"- {md_text(s.error)}")
    return "\n".join(lines)


def md_text(text: str) -> str:
    """User text (a run name, an error) shown literally inside Markdown: no HTML, links or emphasis."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_\[\]()#+!|{}~-])", r"\\\1", text)


def report_of(detail: Any) -> dict[str, Any] | None:
    """The test report when there is one (the figures that matter), else the validation report."""
    metrics = detail.metrics or {}
    return metrics.get("test") or metrics.get("val") or None


def per_class_rows(report: dict[str, Any] | None) -> list[list[Any]]:
    if not report:
        return []
    return [
        [label, round(v["precision"], 3), round(v["recall"], 3), round(v["f1"], 3), v["support"]]
        for label, v in report.get("per_class", {}).items()
    ]


def confusion_figure(report: dict[str, Any] | None, split: str = "") -> go.Figure | None:
    if not report or not report.get("confusion"):
        return None
    return charts.confusion_matrix(report["confusion"], report["labels"], title=f"confusion matrix ({split})")


def result_views(detail: Any) -> tuple[str, list[list[Any]], go.Figure | None]:
    """(summary markdown, per-class rows, confusion figure) for a stored run."""
    report = report_of(detail)
    metrics = detail.metrics or {}
    split = (
        "test" if metrics.get("test") else "validation, first pass" if metrics.get("refit") else "validation"
    )
    return metrics_markdown(detail), per_class_rows(report), confusion_figure(report, split)


def misclassified(predictions: list[Any], truth: list[str], k: int = 12) -> list[list[Any]]:
    """Up to `k` wrong predictions, the most confident mistakes first."""
    wrong = [(p, t) for p, t in zip(predictions, truth, strict=True) if p.label != t]
    wrong.sort(key=lambda pt: -pt[0].probabilities[pt[0].label])
    return [[p.text, t, p.label, round(p.probabilities[p.label], 3)] for p, t in wrong[:k]]
