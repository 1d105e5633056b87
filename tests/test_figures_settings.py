"""A run's settings and several runs side by side: every setting shown, differences highlighted, user
text escaped."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from lstm_demo.config import PRESETS
from lstm_demo.figures.settings import flatten_settings, run_settings_html, settings_compare_html

EVIL = "<img src=x onerror=alert(1)>"


class _Rows(HTMLParser):
    """The table's rows as (row class, cell texts), as a browser would read them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, list[str]]] = []
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs |= {name for name, _ in attrs}
        if tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _rows(markup: str) -> _Rows:
    parser = _Rows()
    parser.feed(markup)
    return parser


def test_flatten_settings_joins_sections_with_dots() -> None:
    assert flatten_settings({"model": {"encoder": "gru", "sizes": {"h": 8}}, "preset": "x"}) == {
        "model.encoder": "gru",
        "model.sizes.h": 8,
        "preset": "x",
    }


def test_run_settings_show_every_setting_and_the_dataset() -> None:
    config = PRESETS["default"].to_dict()
    dataset = {"name": EVIL, "rows": 67349, "fingerprint": "ab" * 32, "label_counts": {"neg": 3, EVIL: 5}}
    parsed = _rows(run_settings_html(config, dataset))
    cells = {row[0]: row[1] for _, row in parsed.rows if len(row) == 2}
    setting_rows = [
        row for _, row in parsed.rows[: [r[0] for _, r in parsed.rows].index("dataset")] if row[1]
    ]
    assert len(setting_rows) == len(flatten_settings(config))  # every setting of the run is on its page
    assert cells["encoder"] == config["model"]["encoder"]
    assert cells["learning_rate"] == f"{config['train']['learning_rate']:g}"
    assert cells["rows"] == "67,349" and cells["fingerprint"] == "ab" * 6
    assert cells["name"] == EVIL and cells["label counts"] == f"neg: 3, {EVIL}: 5"  # shown, never run
    assert parsed.tags <= {"table", "tr", "td", "b", "span"} and "onerror" not in parsed.attrs
    sections = [row[0] for _, row in parsed.rows if row[1] == ""]
    assert sections == ["model", "preprocess", "tokenizer", "train", "dataset"]


def test_settings_side_by_side_highlight_only_the_rows_that_differ() -> None:
    a = PRESETS["default"].to_dict()
    b = PRESETS["default"].to_dict()
    b["model"]["encoder"] = "gru"
    b["train"]["learning_rate"] = 0.5
    del b["model"]["pooling"]  # an older run without the setting
    parsed = _rows(settings_compare_html({"run a": a, EVIL: b}))
    header, *body = parsed.rows
    assert header[1] == ["setting", "run a", EVIL]
    differing = {cells[0]: cells[1:] for cls, cells in body if cls == "lstm-demo-differs"}
    assert differing == {
        "model.encoder": [a["model"]["encoder"], "gru"],
        "model.pooling": [a["model"]["pooling"], "—"],
        "train.learning_rate": [f"{a['train']['learning_rate']:g}", "0.5"],
    }
    assert len(body) == len(flatten_settings(a))  # the rest are shown too, unhighlighted
    markup = settings_compare_html({"run a": a, EVIL: b})
    assert f"3 of {len(body)} settings differ" in markup
    assert EVIL not in markup
    only = _rows(settings_compare_html({"run a": a, "run b": b}, only_differences=True))
    assert [cells[0] for _, cells in only.rows[1:]] == [
        "model.encoder",
        "model.pooling",
        "train.learning_rate",
    ]


def test_one_run_alone_has_nothing_highlighted_and_none_is_refused() -> None:
    parsed = _rows(settings_compare_html({"only": {"a": 1, "b": [1, 2], "c": True}}))
    assert [cells for _, cells in parsed.rows[1:]] == [["a", "1"], ["b", "1, 2"], ["c", "yes"]]
    assert all(cls == "" for cls, _ in parsed.rows)
    with pytest.raises(ValueError, match="at least one run"):
        settings_compare_html({})
