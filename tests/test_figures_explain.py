"""Explaining one sentence: user text is always escaped, colours follow the sign (or only the strength),
each gate panel carries its own scale, tokens keep the user's words."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from lstm_demo.figures.explain import (
    decision_path_figure,
    faithfulness_bars,
    gate_heatmaps,
    highlight_html,
    methods_html,
    score_color,
    token_labels,
)

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
    assert "<i>x</i>" in parsed.texts and parsed.texts[-12:] == ["<b>ig</b>", *HOSTILE, "occlusion", *HOSTILE]


def test_the_red_blue_legend_is_only_for_signed_methods():
    signed_only = methods_html(["good"], {"Integrated Gradients": [1.0]}, target="<pos>")
    assert "pushes towards '&lt;pos&gt;'" in signed_only and "not in which direction" not in signed_only
    unsigned_only = methods_html(["good", "bad"], {"Saliency": [1.0, 0.5]})
    assert "pushes towards" not in unsigned_only and "Saliency: how strongly" in unsigned_only
    assert "rgba(214, 39, 40" not in unsigned_only  # no red: a magnitude says nothing about direction
    assert 'title="0.5000"' in unsigned_only  # and its score is shown without a sign
    both = methods_html(["good"], {"ig": [-1.0], "saliency": [1.0]})
    assert "pushes towards" in both and "saliency: how strongly" in both


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


STATES = {
    "input": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]],
    "forget": [[0.9, 0.9, 0.9], [0.5, 0.5, 0.5], [0.1, 0.1, 0.1]],
    "cell": [[-2.5, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]],
    "hidden": [[0.0, 0.3, -0.1]] * 3,
}


def _axes(fig) -> list:
    """The colour axis of each heatmap, in panel order, from the figure's JSON."""
    layout = fig.to_plotly_json()["layout"]
    return [layout[t.coloraxis] for t in fig.data]


def test_gate_heatmaps_give_each_panel_its_own_colour_scale():
    fig = gate_heatmaps(["a", "b", "c"], STATES, units=[0, 1, 2])
    assert len({t.coloraxis for t in fig.data}) == 4  # one colour axis per panel, none shared
    gates, cell, hidden = _axes(fig)[:2], _axes(fig)[2], _axes(fig)[3]
    for gate in gates:  # sigmoid gates: a fixed 0-1 scale, so 0.9 looks saturated next to any cell
        assert (gate["cmin"], gate["cmax"]) == (0.0, 1.0)
        assert gate["colorscale"][0][1] != gate["colorscale"][-1][1]
    assert (cell["cmin"], cell["cmax"]) == (-2.5, 2.5)  # symmetric around 0, fitted to the cell
    assert (hidden["cmin"], hidden["cmax"]) == (-0.3, 0.3)  # and the hidden state on its own
    bars = [axis["colorbar"]["x"] for axis in _axes(fig)]
    assert bars == sorted(bars) and len(set(bars)) == 4  # a colour bar beside each panel
    domains = [fig.layout[f"xaxis{i if i > 1 else ''}"].domain for i in range(1, 5)]
    assert all(d[1] < x for d, x in zip(domains, bars, strict=True))
    assert all(x < d[0] for d, x in zip(domains[1:], bars, strict=False))  # between its panel and the next


def test_gate_heatmaps_order_units_and_escape_hover_text():
    tokens = ["the", "<script>x</script>", "the"]  # a repeated token must keep its own row
    fig = gate_heatmaps(tokens, STATES, units=[2, 0], names=["input", "cell"], title="<b>layer 0</b>")
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert [list(row) for row in fig.data[1].z] == [[1.0, -2.5], [0.0, 0.0], [1.0, 1.0]]  # requested order
    hover = fig.data[0]
    assert "%{customdata[0]}" in hover.hovertemplate and "%{z" in hover.hovertemplate
    assert hover.customdata[1][0][0] == "&lt;script&gt;x&lt;/script&gt;"
    assert list(hover.customdata[0][0][1:]) == ["unit 2", "input"]  # token, unit and value on hover
    assert fig.layout.yaxis.ticktext == ("the", "&lt;script&gt;x&lt;/script&gt;", "the")
    assert fig.layout.yaxis.tickvals == (0, 1, 2)
    assert fig.layout.xaxis.ticktext == ("2", "0") and fig.layout.xaxis.title.text == "unit"
    assert fig.layout.yaxis.title.text == "token"
    assert "<b>" not in fig.layout.title.text
    with pytest.raises(ValueError, match="unknown states"):
        gate_heatmaps(tokens, STATES, units=[0], names=["output"])


def test_token_labels_keep_the_users_words_and_mark_unknown_ones():
    # "Loved" and "zorblax" are one token each (lower-cased; unknown); "unhappily" is two pieces
    tokens = ["loved", "[UNK]", "un", "##happily"]
    words = ["Loved", "zorblax", "unhappily"]
    assert token_labels(tokens, words, [0, 1, 2, 2]) == ["Loved", "zorblax [UNK]", "un", "##happily"]
    assert token_labels(tokens) == tokens  # without the words: the tokens as they are
    fig = gate_heatmaps(tokens, {"hidden": [[0.1]] * 4}, [0], words=words, word_index=[0, 1, 2, 2])
    assert fig.layout.yaxis.ticktext[:2] == ("Loved", "zorblax [UNK]")
    assert fig.data[0].customdata[1][0][0] == "zorblax [UNK]"
    path = decision_path_figure(tokens, [[0.5, 0.5]] * 4, ["a", "b"], words=words, word_index=[0, 1, 2, 2])
    assert path.layout.xaxis.ticktext[1] == "zorblax [UNK]"
    with pytest.raises(ValueError, match="3 word indices for 4 tokens"):
        token_labels(tokens, words, [0, 1, 2])


def test_decision_path_figure_has_one_line_per_class():
    fig = decision_path_figure(["a", "<b>"], [[0.3, 0.7], [0.9, 0.1]], ["neg", "<i>pos</i>"])
    assert [t.y for t in fig.data] == [(0.3, 0.9), (0.7, 0.1)]
    assert [t.name for t in fig.data] == ["neg", "&lt;i&gt;pos&lt;/i&gt;"]
    assert fig.data[1].meta == "&lt;i&gt;pos&lt;/i&gt;"
    assert fig.layout.xaxis.ticktext == ("a", "&lt;b&gt;")
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    with pytest.raises(ValueError, match="2 probability rows for 1 tokens"):
        decision_path_figure(["a"], [[0.5, 0.5], [0.5, 0.5]], ["x", "y"])


def test_faithfulness_bars_one_group_per_method() -> None:
    fig = faithfulness_bars({"ig": {"comprehensiveness": 0.4, "sufficiency": 0.1},
                             "<b>random</b>": {"comprehensiveness": 0.1, "sufficiency": 0.3}})  # fmt: skip
    assert [t.name for t in fig.data] == ["comprehensiveness", "sufficiency"]
    assert list(fig.data[0].y) == [0.4, 0.1]
    assert list(fig.data[0].x) == ["ig", "&lt;b&gt;random&lt;/b&gt;"]
