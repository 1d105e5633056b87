"""Rendering: user text is always escaped, colours follow the sign, figures are labelled."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from lstm_demo.plots import decision_path_figure, gate_heatmaps, highlight_html, methods_html, score_color

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '" onmouseover="alert(3)',
    "&amp;",
    "ok",
]


class _Collect(HTMLParser):
    """Records every tag and attribute a browser would build from the HTML, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]

    def handle_data(self, data):
        if data.strip():
            self.texts.append(data)


def _parse(markup: str) -> _Collect:
    parser = _Collect()
    parser.feed(markup)
    return parser


def test_highlight_shows_hostile_tokens_as_text_and_never_as_markup():
    markup = highlight_html(HOSTILE, [0.5, -0.2, 0.1, 0.0, None])
    parsed = _parse(markup)
    assert set(parsed.tags) == {"div", "span"}
    assert set(parsed.attrs) <= {"class", "style", "title"}  # no onerror / onmouseover
    assert parsed.texts == HOSTILE  # each token reads back exactly as the user typed it


def test_methods_side_by_side_escape_method_names_and_tokens():
    markup = methods_html(
        HOSTILE, {"<b>ig</b>": [1, 0, 0, 0, 0], "occlusion": [0, 1, 0, 0, 0]}, caption="<i>x</i>"
    )
    parsed = _parse(markup)
    assert set(parsed.tags) == {"table", "caption", "tr", "th", "td", "div", "span"}
    assert parsed.texts == ["<i>x</i>", "<b>ig</b>", *HOSTILE, "occlusion", *HOSTILE]


def test_colour_follows_sign_and_strength():
    markup = highlight_html(["good", "bad", "meh", "gone"], [2.0, -1.0, 0.0, None])
    styles = re.findall(r'style="([^"]*)"', markup)[1:]  # skip the wrapping div
    assert "rgba(214, 39, 40, 1.000)" in styles[0]  # strongest positive: full red
    assert "rgba(31, 119, 180, 0.500)" in styles[1]  # half as strong, negative: half blue
    assert "0.000)" in styles[2]
    assert "color: #888" in styles[3] and "not seen by the model" in markup
    assert 'title="+2.0000"' in markup and 'title="-1.0000"' in markup
    assert score_color(1.0, 0.0) == "rgba(214, 39, 40, 0.000)"  # all-zero sentence: no division by zero
    assert "rgba(214, 39, 40, 0.500)" in highlight_html(["a"], [1.0], scale=2.0)


def test_highlight_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 scores for 1 tokens"):
        highlight_html(["a"], [1.0, 2.0])


def test_gate_heatmaps_share_a_symmetric_scale_and_escape_hover_text():
    tokens = ["the", "<script>x</script>", "the"]  # a repeated token must keep its own row
    states = {
        "input": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]],
        "cell": [[-2.5, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]],
        "hidden": [[0.0] * 3] * 3,
    }
    fig = gate_heatmaps(tokens, states, units=[2, 0], names=["input", "cell"], title="<b>layer 0</b>")
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert [list(row) for row in fig.data[1].z] == [
        [1.0, -2.5],
        [0.0, 0.0],
        [1.0, 1.0],
    ]  # columns in the requested order
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-2.5, 2.5)
    assert all(t.coloraxis == "coloraxis" for t in fig.data)
    hover = fig.data[0]
    assert "%{customdata[0]}" in hover.hovertemplate and "%{z" in hover.hovertemplate
    assert hover.customdata[1][0][0] == "&lt;script&gt;x&lt;/script&gt;"
    assert list(hover.customdata[0][0][1:]) == ["unit 2", "input"]
    assert fig.layout.yaxis.ticktext == ("the", "&lt;script&gt;x&lt;/script&gt;", "the")
    assert fig.layout.yaxis.tickvals == (0, 1, 2)
    assert fig.layout.xaxis.ticktext == ("2", "0") and fig.layout.xaxis.title.text == "unit"
    assert fig.layout.yaxis.title.text == "token"
    assert "<b>" not in fig.layout.title.text
    with pytest.raises(ValueError, match="unknown states"):
        gate_heatmaps(tokens, states, units=[0], names=["forget"])


def test_decision_path_figure_has_one_line_per_class():
    fig = decision_path_figure(["a", "<b>"], [[0.3, 0.7], [0.9, 0.1]], ["neg", "<i>pos</i>"])
    assert [t.y for t in fig.data] == [(0.3, 0.9), (0.7, 0.1)]
    assert [t.name for t in fig.data] == ["neg", "&lt;i&gt;pos&lt;/i&gt;"]
    assert fig.data[1].meta == "&lt;i&gt;pos&lt;/i&gt;"
    assert fig.layout.xaxis.ticktext == ("a", "&lt;b&gt;")
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    with pytest.raises(ValueError, match="2 probability rows for 1 tokens"):
        decision_path_figure(["a"], [[0.5, 0.5], [0.5, 0.5]], ["x", "y"])
