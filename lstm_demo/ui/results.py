"""How runs are shown (Train tab at the end of training, Runs tab for one run or several side by side):
plain values and figures from a stored run, no gradio."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ..figures import runs as charts
from ..service import baseline_verdict
from .common import duration, fmt

PER_CLASS_HEADERS = ["label", "precision", "recall", "F1", "support"]
MISSED_HEADERS = ["predicted", "true label", "confidence", "text"]
TRIAL_HEADERS = ["trial", "state", "value", "epochs", "seconds", "settings"]  # an `auto` run's search
SETTING_SECTIONS = ("model", "tokenizer", "preprocess", "train")  # the config's sections, shown in order
UNSTOPPED = ("cancelled", "interrupted", "failed")  # runs that ended without a final evaluation
# a dead process's technical trace ("(pid 7663 on vm)") says nothing a person can act on
_PROCESS_TRACE = re.compile(r"\s*\(pid \d+ on [^)]*\)")


def plain_error(text: str | None) -> str:
    """A stored error in plain words: process ids and host names left out."""
    if not text:
        return ""
    text = _PROCESS_TRACE.sub("", text)
    return text.replace("interrupted: its process stopped", "interrupted: the app stopped while it trained")


def md_text(text: str) -> str:
    """User text (a run name, an error) shown literally inside Markdown: no HTML, links or emphasis."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_\[\]()#+!|{}~-])", r"\\\1", text)


def last_validation(curve: Sequence[Any]) -> Any | None:
    """The last end-of-epoch point with validation figures: what a stopped run still has to show."""
    epochs = [p for p in curve if p.kind == "epoch" and p.val_accuracy is not None]
    return epochs[-1] if epochs else None


def baseline_line(metrics: Mapping[str, Any]) -> str:
    """TF-IDF + logistic regression on the same split, when the run has one, and the gap to it.

    Its figures are `baseline_*` keys, in a `baseline` record or beside the run's own figures."""
    base = metrics.get("baseline") or metrics
    split, acc = "test", base.get("baseline_test_accuracy")
    if acc is None:  # no test split: the record holds None there
        split, acc = "validation", base.get("baseline_val_accuracy")
    if acc is None:
        return ""
    own = (metrics.get(split if split == "test" else "val") or {}).get("accuracy")
    gap = f" (the LSTM {own - acc:+.3f})" if own is not None else ""
    return f"- baseline, TF-IDF + logistic regression: {split} accuracy **{fmt(acc)}**{gap}"


def metrics_markdown(detail: Any) -> str:
    """A short summary of a stored run: status, scores, baseline, epochs, time, device, dataset."""
    s = detail.summary
    metrics = detail.metrics or {}
    lines = [f"**Run `{s.id}`**: {s.status}" + (f", {md_text(s.name)}" if s.name else "")]
    refit = metrics.get("refit")
    if s.val_accuracy is not None:
        lines.append(
            f"- validation: accuracy **{fmt(s.val_accuracy)}**, macro-F1 **{fmt(s.val_macro_f1)}**"
            + (" (first pass, before the refit)" if refit else "")
        )
    elif s.status in UNSTOPPED and (point := last_validation(detail.curve)) is not None:
        lines.append(
            f"- last validation (epoch {point.epoch}): accuracy **{fmt(point.val_accuracy)}**, "
            f"macro-F1 **{fmt(point.val_macro_f1)}**"
        )
    if s.test_accuracy is not None:
        lines.append(f"- test: accuracy **{fmt(s.test_accuracy)}**, macro-F1 **{fmt(s.test_macro_f1)}**")
    if baseline := baseline_line(metrics):
        lines.append(baseline)
    if verdict := baseline_verdict(metrics):
        lines.append(f"- {md_text(verdict)}")
    lines += [f"- {md_text(note)}" for note in metrics.get("notes") or []]
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
        lines.append(f"- {md_text(plain_error(s.error))}")
    return "\n".join(lines)


def dataset_rows(dataset: Any) -> list[list[str]]:
    """The data a run was trained on, as (what, value) rows."""
    if dataset is None:
        return []
    counts = ", ".join(f"{label}: {n:,}" for label, n in dataset.label_counts.items())
    return [
        ["dataset", dataset.name],
        ["rows", f"{dataset.rows:,}"],
        ["columns (text, label)", f"{dataset.text_column}, {dataset.label_column}"],
        ["fingerprint (sha256)", dataset.fingerprint[:16]],
        ["label counts", counts],
    ]


def settings(config: Mapping[str, Any]) -> dict[str, str]:
    """Every setting of a run as `section.name` -> its value in words, in the config's order."""
    out = {"preset": str(config.get("preset", ""))}
    for section in SETTING_SECTIONS:
        for name, value in (config.get(section) or {}).items():
            out[f"{section}.{name}"] = _words(value)
    return out


def _words(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def run_page(detail: Any) -> list[list[str]]:
    """The run page's table: the dataset, then every setting."""
    return dataset_rows(detail.dataset) + [[k, v] for k, v in settings(detail.config).items()]


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


def run_title(summary: Any) -> str:
    """How a run is named in legends and column heads: its name (or dataset) with its id."""
    name = summary.name or summary.dataset_name or summary.preset
    return f"{name} ({summary.id})"


def curves_figure(details: Sequence[Any], title: str = "training curves") -> go.Figure | None:
    """The runs' curves overlaid: one legend entry per run and metric, named after the run."""
    runs = {d.summary.id: charts.curve_points(d.curve) for d in details if d.curve}
    names = {d.summary.id: d.summary.name or d.summary.dataset_name or d.summary.preset for d in details}
    return charts.training_curves(runs, names=names, title=title) if runs else None


def compare_html(details: Sequence[Any]) -> str:
    """Several runs' settings and figures side by side; rows where they differ are marked."""
    if not details:
        return ""
    columns = [{**_figures(d), **settings(d.config)} for d in details]
    keys = list(dict.fromkeys(k for c in columns for k in c))
    keys.sort(key=lambda k: len({c.get(k, "") for c in columns}) == 1)  # the differences first
    head = "".join(f"<th>{html.escape(run_title(d.summary))}</th>" for d in details)
    rows = []
    for key in keys:
        values = [c.get(key, "") for c in columns]
        differs = len(set(values)) > 1
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in values)
        mark = ' class="lstm-demo-differs"' if differs else ""
        rows.append(f"<tr{mark}><th scope=row>{html.escape(key)}</th>{cells}</tr>")
    n = sum(len(set(c.get(k, "") for c in columns)) > 1 for k in keys)
    caption = f"{n} of {len(keys)} rows differ (marked)"
    return (
        f'<table class="lstm-demo-compare"><caption>{caption}</caption>'
        f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _figures(detail: Any) -> dict[str, str]:
    s = detail.summary
    return {
        "status": s.status,
        "dataset": s.dataset_name or "",
        "val accuracy": fmt(s.val_accuracy),
        "val macro-F1": fmt(s.val_macro_f1),
        "test accuracy": fmt(s.test_accuracy),
        "epochs": "" if s.epochs_run is None else str(s.epochs_run),
        "duration": duration(s.duration_seconds),
    }


def trial_rows(trials: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """An `auto` run's trials (`TrialReport.to_dict`s), one row each, the best so far marked."""
    best = max((t for t in trials if t["state"] == "complete"), key=lambda t: t["value"], default=None)
    return [
        [
            f"{t['number']}{' (best)' if best is not None and t['number'] == best['number'] else ''}",
            t["state"],
            "" if t["value"] is None else f"{abs(t['value']):.4f}",
            t["epochs"],
            round(t["seconds"], 1),
            ", ".join(f"{k.split('__', 1)[1]}={_words(v)}" for k, v in t["params"].items()),
        ]
        for t in trials
    ]
