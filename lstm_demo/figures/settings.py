"""A run's settings and dataset as an HTML table, and several runs' settings side by side with the
rows that differ highlighted. Plain data in (a `RunConfig.to_dict`, flat or nested; a dataset's
fields); escaped HTML out (see `figures`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import esc

MISSING = "—"  # a setting one of the compared runs does not have
FINGERPRINT_SHOWN = 12  # characters of a dataset's sha256 shown; the whole of it on hover
_TABLE = 'class="lstm-demo-settings" style="border-collapse: collapse; font-size: 0.9em;"'
_CELL = 'style="padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top;"'
_DIFFERS = "background-color: #fff3cd; font-weight: 600;"  # amber, as a highlighter pen


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"encoder": "lstm"}} -> {"model.encoder": "lstm"}; flat keys pass through."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def format_value(value: Any) -> str:
    """A setting as a person reads it: yes/no, short floats, lists comma-separated, missing or empty as a dash."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value) or MISSING
    return str(value)


def _row(cells: list[str], *, header: bool = False, style: str = "", cls: str = "") -> str:
    tag = "th" if header else "td"
    attrs = (f' class="{cls}"' if cls else "") + (f' style="{style}"' if style else "")
    return f"<tr{attrs}>" + "".join(f"<{tag} {_CELL}>{c}</{tag}>" for c in cells) + "</tr>"


def _dataset_rows(dataset: Mapping[str, Any]) -> list[str]:
    rows = []
    for key, value in dataset.items():
        if key == "fingerprint" and value:
            shown = f'<span title="{esc(value)}">{esc(str(value)[:FINGERPRINT_SHOWN])}</span>'
        elif key == "label_counts" and isinstance(value, Mapping):
            shown = ", ".join(f"{esc(label)}: {n:,}" for label, n in value.items())
        elif isinstance(value, int) and not isinstance(value, bool):
            shown = f"{value:,}"
        else:
            shown = esc(format_value(value))
        rows.append(_row([esc(key.replace("_", " ")), shown]))
    return rows


def run_settings_html(settings: Mapping[str, Any], dataset: Mapping[str, Any] | None = None) -> str:
    """Every setting of one run, grouped by section (preprocess, tokenizer, model, train), then its
    dataset (name, rows, fingerprint, label counts), as one two-column table."""
    flat = flatten_settings(settings)
    rows, section = [], None
    for key in sorted(flat, key=lambda k: ("." in k, k.split(".")[0])):  # top-level keys first
        head, _, rest = key.partition(".")
        if rest and head != section:
            section = head
            rows.append(_row([f"<b>{esc(head)}</b>", ""], style="background-color: #f4f4f4;"))
        rows.append(_row([esc(rest or key), esc(format_value(flat[key]))]))
    if dataset:
        rows.append(_row(["<b>dataset</b>", ""], style="background-color: #f4f4f4;"))
        rows += _dataset_rows(dataset)
    return f"<table {_TABLE}>{''.join(rows)}</table>"


def settings_compare_html(runs: Mapping[str, Mapping[str, Any]], *, only_differences: bool = False) -> str:
    """Several runs' settings side by side (run name -> settings, flat or nested), one column per run;
    rows whose values differ are highlighted and counted in the caption. A setting a run lacks
    (an older configuration) shows as a dash and counts as a difference."""
    if not runs:
        raise ValueError("choose at least one run to show its settings")
    flats = {name: flatten_settings(s) for name, s in runs.items()}
    keys: list[str] = []
    for flat in flats.values():
        keys += [k for k in flat if k not in keys]
    _absent = object()
    differs = {k for k in keys if len({repr(f.get(k, _absent)) for f in flats.values()}) > 1}
    rows = [_row(["setting", *(esc(name) for name in flats)], header=True)]
    for key in keys:
        if only_differences and key not in differs:
            continue
        cells = [esc(key), *(esc(format_value(f.get(key))) for f in flats.values())]
        if key in differs:
            rows.append(_row(cells, style=_DIFFERS, cls="lstm-demo-differs"))
        else:
            rows.append(_row(cells))
    caption = (
        f'<caption style="caption-side: top; text-align: left;">{len(differs)} of {len(keys)} settings '
        "differ (highlighted)</caption>"
    )
    return f"<table {_TABLE}>{caption}{''.join(rows)}</table>"
