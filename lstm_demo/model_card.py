"""The model card: a short Markdown description of a run that travels inside its bundle."""

from __future__ import annotations

import math
from typing import Any

from . import yardstick
from .artifacts import refit_summary
from .store import DatasetInfo, RunDetail

# The same for every run: what the model is for, and how to use the bundle.
_USE_AND_LOADING = """
## Intended use and limitations

- Classifies short texts into the labels above, for texts like those it was trained on.
- Trained from scratch on the user's data only: it has no pretrained knowledge of language,
  so words absent from its training data are unknown to it, and its scores say nothing
  about texts from another domain. Check it on your own held-out data before relying on it.
- It inherits any bias or label noise of its training data.

## How to load

```
lstm-demo import this-bundle.zip
```

The bundle holds `config.json` (preprocessing, tokenizer, model and training settings),
`tokenizer.json`, `model.safetensors` (weights; no pickle), `metrics.json` and `run.json`.
"""


def model_card(detail: RunDetail, metrics: dict[str, Any]) -> str:
    """A short Markdown model card from the run's config, data and final metrics."""
    s, cfg = detail.summary, detail.config
    labels = cfg.get("labels", [])
    lines = [
        f"# Model card: {s.name or 'run ' + s.id}",
        "",
        f"A text classifier trained from scratch with lstm-demo (run `{s.id}`, preset `{s.preset}`, "
        f"finished {s.finished.isoformat() if s.finished else 'n/a'}).",
        "",
        "## Architecture",
        "",
        f"- {_architecture(cfg)}",
        f"- labels ({len(labels)}): {', '.join(f'`{label}`' for label in labels)}",
        f"- epochs run: {s.epochs_run}, best epoch: {s.best_epoch}",
        "",
        "## Training data",
        "",
        *_data(detail.dataset),
        "",
        "## Results",
        "",
        *_results(metrics),
        *_baseline(metrics),
    ]
    return "\n".join(lines) + "\n" + _USE_AND_LOADING


def _architecture(cfg: dict[str, Any]) -> str:
    m = cfg.get("model", {})
    return (
        f"{'bidirectional ' if m.get('bidirectional') else ''}{str(m.get('encoder', '?')).upper()}, "
        f"{m.get('num_layers')} layer(s), hidden size {m.get('hidden_size')}, "
        f"embedding size {m.get('embedding_dim')}, {m.get('pooling')} pooling, "
        f"vocabulary of {m.get('vocab_size')} tokens ({cfg.get('tokenizer', {}).get('kind')} tokenizer)"
    )


def _data(data: DatasetInfo | None) -> list[str]:
    if data is None:
        return ["- not recorded"]
    counts = ", ".join(f"{k}: {v}" for k, v in data.label_counts.items())
    return [
        f"- `{data.name}`: {data.rows} rows, text column `{data.text_column}`, "
        f"label column `{data.label_column}`",
        f"- label counts: {counts}",
        f"- sha256 of the file: `{data.fingerprint}`",
    ]


def _results(metrics: dict[str, Any]) -> list[str]:
    refit = refit_summary(metrics)
    first_pass = "validation (first pass, before the refit)" if refit else "validation"
    splits = [(name, metrics.get(key)) for name, key in ((first_pass, "val"), ("test", "test"))]
    splits = [(name, v) for name, v in splits if isinstance(v, dict)]
    lines = ["| split | accuracy | macro-F1 |", "|---|---|---|"]
    lines += [f"| {name} | {_pct(v.get('accuracy'))} | {_f3(v.get('macro_f1'))} |" for name, v in splits]
    for name, v in splits:
        per_class = v.get("per_class") or {}
        if isinstance(per_class, dict) and per_class:
            lines += ["", f"Per class ({name}):", "", "| label | precision | recall | F1 | support |"]
            lines.append("|---|---|---|---|---|")
            lines += [
                f"| {label} | {_f3(c.get('precision'))} | {_f3(c.get('recall'))} | {_f3(c.get('f1'))} | "
                f"{c.get('support')} |"
                for label, c in per_class.items()
            ]
    if refit:
        lines += ["", f"The kept model was then refit on all {refit.get('rows')} training rows for "
                  f"{refit.get('epochs')} epochs, the count the validated first pass chose."]  # fmt: skip
    return lines


def _baseline(metrics: dict[str, Any]) -> list[str]:
    """The yardstick: how the model compares with TF-IDF + logistic regression on the same split."""
    verdict = yardstick.verdict(metrics)
    return ["", verdict] if verdict else []


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if _number(value) else "n/a"


def _f3(value: Any) -> str:
    return f"{value:.3f}" if _number(value) else "n/a"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
