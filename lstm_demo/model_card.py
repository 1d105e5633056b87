"""The model card: a short Markdown description of a run that travels inside its bundle."""

from __future__ import annotations

import math
from typing import Any

from .artifacts import refit_summary
from .store import RunDetail


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def _f2(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def model_card(detail: RunDetail, metrics: dict[str, Any]) -> str:
    """A short Markdown model card from the run's config, data and final metrics."""
    s, cfg, data = detail.summary, detail.config, detail.dataset
    m = cfg.get("model", {})
    labels = cfg.get("labels", [])
    arch = (
        f"{'bidirectional ' if m.get('bidirectional') else ''}{str(m.get('encoder', '?')).upper()}, "
        f"{m.get('num_layers')} layer(s), hidden size {m.get('hidden_size')}, "
        f"embedding size {m.get('embedding_dim')}, {m.get('pooling')} pooling, "
        f"vocabulary of {m.get('vocab_size')} tokens ({cfg.get('tokenizer', {}).get('kind')} tokenizer)"
    )
    lines = [
        f"# Model card: {s.name or 'run ' + s.id}",
        "",
        f"A text classifier trained from scratch with lstm-demo (run `{s.id}`, preset `{s.preset}`, "
        f"finished {s.finished.isoformat() if s.finished else 'n/a'}).",
        "",
        "## Architecture",
        "",
        f"- {arch}",
        f"- labels ({len(labels)}): {', '.join(f'`{label}`' for label in labels)}",
        f"- epochs run: {s.epochs_run}, best epoch: {s.best_epoch}",
        "",
        "## Training data",
        "",
    ]
    if data is not None:
        counts = ", ".join(f"{k}: {v}" for k, v in data.label_counts.items())
        lines += [
            f"- `{data.name}`: {data.rows} rows, text column `{data.text_column}`, "
            f"label column `{data.label_column}`",
            f"- label counts: {counts}",
            f"- sha256 of the file: `{data.fingerprint}`",
        ]
    else:
        lines.append("- not recorded")
    lines += ["", "## Results", "", "| split | accuracy | macro-F1 |", "|---|---|---|"]
    refit = refit_summary(metrics)
    first_pass = "validation (first pass, before the refit)" if refit else "validation"
    splits = [(name, metrics.get(key)) for name, key in ((first_pass, "val"), ("test", "test"))]
    splits = [(name, v) for name, v in splits if isinstance(v, dict)]
    for name, v in splits:
        lines.append(f"| {name} | {_pct(v.get('accuracy'))} | {_f2(v.get('macro_f1'))} |")
    for name, v in splits:
        per_class = v.get("per_class") or {}
        if not isinstance(per_class, dict) or not per_class:
            continue
        lines += ["", f"Per class ({name}):", "", "| label | precision | recall | F1 | support |"]
        lines.append("|---|---|---|---|---|")
        for label, c in per_class.items():
            lines.append(
                f"| {label} | {_f2(c.get('precision'))} | {_f2(c.get('recall'))} | "
                f"{_f2(c.get('f1'))} | {c.get('support')} |"
            )
    if refit:
        lines += ["", f"The kept model was then refit on all {refit.get('rows')} training rows for "
                  f"{refit.get('epochs')} epochs, the count the validated first pass chose."]  # fmt: skip
    lines += [
        "",
        "## Intended use and limitations",
        "",
        "- Classifies short texts into the labels above, for texts like those it was trained on.",
        "- Trained from scratch on the user's data only: it has no pretrained knowledge of language,",
        "  so words absent from its training data are unknown to it, and its scores say nothing",
        "  about texts from another domain. Check it on your own held-out data before relying on it.",
        "- It inherits any bias or label noise of its training data.",
        "",
        "## How to load",
        "",
        "```",
        "lstm-demo import this-bundle.zip",
        "```",
        "",
        "The bundle holds `config.json` (preprocessing, tokenizer, model and training settings),",
        "`tokenizer.json`, `model.safetensors` (weights; no pickle), `metrics.json` and `run.json`.",
        "",
    ]
    return "\n".join(lines)
