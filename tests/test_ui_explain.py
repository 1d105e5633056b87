"""The Explain tab's handlers, without a browser: controls that fit the run, the IG banner, the captions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from helpers import write_toy_csv

from lstm_demo.config import AppSettings
from lstm_demo.names import DELTA_TOLERANCE
from lstm_demo.service import Service
from lstm_demo.ui import explain_tab

FAST = {"train__epochs": 1, "model__hidden_size": 8, "model__embedding_dim": 8}
SENTENCE = "the film was great but the plot dull"
GATES = (
    ["input", "hidden"],
    1,
    "forward",
    "variance",
    4,
    "",
    "",
)  # states, layer, direction, order, k, units, target


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A two-layer run, then a one-layer run."""
    home = tmp_path_factory.mktemp("home")
    csv = write_toy_csv(home / "toy.csv", n=60)
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home), "LSTM_DEMO_DEVICE": "cpu"}))
    ids = []
    for layers in (2, 1):
        overrides = {**FAST, "model__num_layers": layers}
        ids.append(list(svc.train(csv, preset_name="fast", overrides=overrides))[-1].run.id)
    yield svc, *ids
    svc.shutdown()


def test_the_layer_choice_always_holds_its_value(runs):
    """After a two-layer run, a one-layer run must not leave the layer dropdown on a layer it lacks."""
    svc, two, one = runs
    for run_id, layers in ((two, [0, 1]), (one, [0])):
        target, states, layer, direction = explain_tab.model_controls(svc, run_id)
        assert [value for _, value in layer["choices"]] == layers and layer["value"] == layers[-1]
        assert target["value"] in [value for _, value in target["choices"]]
        assert direction["choices"] == ["forward"] and direction["value"] == "forward"


def test_a_stale_layer_from_the_previous_run_draws_the_top_layer(runs):
    svc, _, one = runs
    figure, message = explain_tab.draw_gates(svc, one, SENTENCE, *GATES)
    assert message == "" and "layer 0" in figure.layout.title.text


def test_the_heatmap_rows_keep_a_word_the_vocabulary_lacks_with_its_marker(runs):
    svc, _, one = runs
    figure, message = explain_tab.draw_gates(svc, one, "the film was zyxwv", *GATES)
    rows = [str(t) for t in figure.layout.yaxis.ticktext]
    assert message == "" and rows[:3] == ["the", "film", "was"] and rows[3].startswith("zyxwv")
    assert "UNK" in rows[3]


def test_the_decision_path_axis_keeps_the_users_words_as_the_heatmap_rows(runs):
    svc, _, one = runs
    stages = list(explain_tab.explain_stages(svc, one, "", "The Film was zyxwv", "", ["saliency"], 16, False,
                                             *GATES[:-1]))  # fmt: skip
    words = [str(t) for t in stages[-1].path_plot.layout.xaxis.ticktext]
    rows = [str(t) for t in stages[-1].gate_plot.layout.yaxis.ticktext]
    assert words[:3] == ["The", "Film", "was"] and words[3].startswith("zyxwv") and "UNK" in words[3]
    assert words == rows


def test_the_compare_column_shows_only_with_a_second_run():
    assert explain_tab.compare_visible("")["visible"] is False
    assert explain_tab.compare_visible("abc123")["visible"] is True


def test_one_run_leaves_the_compare_column_empty_and_two_fill_it(runs):
    svc, two, one = runs
    alone = explain_tab.explain(svc, one, "", SENTENCE, "", ["ig", "saliency"], 16, False, *GATES[:-1])
    assert (
        "msg-error" not in alone.message and alone.compare_prediction is None and alone.gate_plot is not None
    )
    assert [row[0] for row in alone.table] == ["Integrated Gradients", "Saliency"]
    both = explain_tab.explain(svc, one, two, SENTENCE, "", ["ig"], 16, False, *GATES[:-1])
    assert set(both.compare_prediction) == {"neg", "pos"} and "lstm-demo-token" in both.compare_marked


def test_explain_answers_the_words_first_then_the_figures_with_the_same_words(runs):
    """The button's two answers: the attributions and the table at once, the last sentence's figures left
    as they are (the browser takes longest to draw those); then everything, the figures drawn."""
    svc, two, one = runs
    words, everything = explain_tab.explain_stages(svc, one, two, SENTENCE, "", ["ig"], 16, True, *GATES[:-1])
    skip = explain_tab.gr.skip()
    assert "lstm-demo-token" in words.marked and "lstm-demo-token" in words.compare_marked
    assert words.table and words.prediction
    assert all(getattr(words, name) == skip for name in explain_tab.FIGURES)
    assert everything._replace(**{name: skip for name in explain_tab.FIGURES}) == words
    assert all(
        getattr(everything, name) is not None
        for name in ("faith_plot", "path_plot", "compare_path", "gate_plot")
    )


def test_an_explain_that_fails_answers_once_with_the_reason(runs):
    svc, _, one = runs
    [answer] = explain_tab.explain_stages(svc, one, "", "   ", "", ["ig"], 16, False, *GATES[:-1])
    assert "msg-error" in answer.message and answer.gate_plot is None


def _attribution(method: str, delta_ok: bool | None, ratio: float | None) -> SimpleNamespace:
    return SimpleNamespace(method=method, title=method.upper(), delta_ok=delta_ok, delta_ratio=ratio, delta=0.6,
                           word_scores=[0.1, -0.2], baseline="padding", seconds=0.01)  # fmt: skip


def _explanation(*attributions: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(words=["good", "film"], probabilities={"pos": 0.9, "neg": 0.1}, target="pos",
                           predicted="pos", attributions={a.method: a for a in attributions})  # fmt: skip


def test_an_integrated_gradients_delta_over_the_tolerance_raises_a_banner():
    assert explain_tab.delta_warning(_explanation(_attribution("ig", True, 0.01))) == ""
    banner = explain_tab.delta_warning(_explanation(_attribution("ig", False, 0.6)))
    assert "lstm-demo-msg-warning" in banner and "60%" in banner and "IG" in banner


def test_the_tolerance_said_in_the_banner_and_the_table_is_the_one_the_engine_checks():
    """Both say the share `names.DELTA_TOLERANCE` sets, the one `explain` flags each attribution by."""
    tolerance = f"{DELTA_TOLERANCE:.0%}"
    banner = explain_tab.delta_warning(_explanation(_attribution("ig", False, 0.6)))
    assert f"more than the {tolerance} tolerated" in banner
    assert f"within {tolerance}" in explain_tab.METHOD_HEADERS


@pytest.mark.parametrize(
    ("methods", "red", "unsigned"),
    [(["ig"], True, False), (["saliency"], False, True), (["ig", "saliency"], True, True)],
)
def test_red_pushes_towards_is_said_only_of_signed_methods(methods, red, unsigned):
    caption = explain_tab.highlights(_explanation(*(_attribution(m, None, None) for m in methods)))
    assert ("Red pushes towards it" in caption) is red
    assert ("without a direction" in caption) is unsigned
