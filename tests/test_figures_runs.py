"""Figures of data and runs: curve positions, legends by run name, the baseline beside the LSTM,
escaping of user text, shapes checked."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lstm_demo.figures import runs as figs

EVIL = "<img src=x onerror=alert(1)>"


def test_curve_points_place_steps_inside_their_epoch() -> None:
    reports = [
        SimpleNamespace(kind="step", epoch=1, step=5, steps_per_epoch=10, train_loss=0.9, val_loss=None,
                        val_accuracy=None, val_macro_f1=None),
        SimpleNamespace(kind="epoch", epoch=1, step=10, steps_per_epoch=10, train_loss=0.7, val_loss=0.8,
                        val_accuracy=0.6, val_macro_f1=0.5),
        {"kind": "step", "epoch": 2, "step": 4, "train_loss": 0.6},  # stored: no steps_per_epoch
        {"kind": "step", "epoch": 2, "step": 8, "train_loss": 0.5},
    ]  # fmt: skip
    points = figs.curve_points(reports)
    assert [p["x"] for p in points] == [0.5, 1.0, 1.5, 2.0]
    assert points[1]["val_accuracy"] == 0.6 and points[2]["val_loss"] is None


POINTS = figs.curve_points(
    [{"kind": "step", "epoch": 1, "step": 1, "steps_per_epoch": 2, "train_loss": 1.0},
     {"kind": "epoch", "epoch": 1, "step": 2, "train_loss": 0.8, "val_loss": 0.9, "val_accuracy": 0.7}]
)  # fmt: skip


def test_training_curves_draw_validation_at_epoch_ends_only() -> None:
    fig = figs.training_curves({"a1b2c3d4e5f6": POINTS})
    by_name = {t.name: t for t in fig.data}
    assert len(by_name["train loss"].x) == 2 and len(by_name["validation accuracy"].x) == 1
    assert "validation macro-F1" not in by_name  # never recorded: no empty legend entry


def test_overlaid_curves_have_one_legend_entry_per_run_and_metric_grouped_under_run_names() -> None:
    runs = {"a1b2c3d4e5f6": POINTS, "0f9e8d7c6b5a": POINTS, "111122223333": POINTS}
    names = {"a1b2c3d4e5f6": "small lstm", "0f9e8d7c6b5a": EVIL, "111122223333": None}
    fig = figs.training_curves(runs, names=names)
    entries = [(t.legendgroup, t.legendgrouptitle.text, t.name) for t in fig.data]
    assert len(entries) == len(set(entries)) == 3 * 3  # train loss, val loss, val accuracy for each run
    titles = [title for _, title, _ in entries]
    assert titles[:3] == ["small lstm"] * 3  # the run's name, not its id
    assert titles[-1] == "11112222"  # a run without a name shows its short id
    assert len({t.line.color for t in fig.data}) == 3  # one colour per run
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0  # below the plot
    assert fig.layout.legend.traceorder == "grouped"
    assert EVIL not in json.dumps(fig.to_plotly_json(), default=str)  # the run name is escaped


def test_two_runs_sharing_a_name_stay_apart_in_the_legend() -> None:
    labels = figs.run_names(["aaaaaaaa0001", "bbbbbbbb0002"], {"aaaaaaaa0001": "x", "bbbbbbbb0002": "x"})
    assert labels == {"aaaaaaaa0001": "x (aaaaaaaa)", "bbbbbbbb0002": "x (bbbbbbbb)"}


def test_label_distribution_and_confusion_matrix_escape_labels() -> None:
    fig = figs.label_distribution({EVIL: 3, "pos": 5})
    assert list(fig.data[0].y) == [3, 5]
    confusion = figs.confusion_matrix([[3, 1], [0, 5]], [EVIL, "pos"])
    assert [list(r) for r in confusion.data[0].z] == [[3, 1], [0, 5]]
    for f in (fig, confusion):
        assert EVIL not in json.dumps(f.to_plotly_json(), default=str)


def test_confusion_matrix_refuses_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="2 x 2"):
        figs.confusion_matrix([[1, 2, 3]], ["a", "b"])


LSTM = {"val_accuracy": 0.80, "val_macro_f1": 0.70, "test_accuracy": 0.85, "test_macro_f1": 0.75}
BASELINE = {"baseline_val_accuracy": 0.82, "baseline_val_macro_f1": 0.70, "baseline_test_accuracy": 0.80,
            "baseline_test_macro_f1": 0.78, "baseline_seconds": 1.5}  # fmt: skip


def test_baseline_figure_puts_two_bars_beside_each_shared_figure() -> None:
    fig = figs.baseline_figure(LSTM, BASELINE)
    assert [t.name for t in fig.data] == ["LSTM", figs.BASELINE_NAME]
    assert list(fig.data[0].x) == list(figs.SCORES.values())
    assert list(fig.data[0].y) == [0.80, 0.70, 0.85, 0.75] and list(fig.data[1].y) == [0.82, 0.70, 0.80, 0.78]
    no_test = figs.baseline_figure({**LSTM, "test_accuracy": None, "test_macro_f1": None}, BASELINE)
    assert list(no_test.data[1].x) == ["validation accuracy", "validation macro-F1"]
    with pytest.raises(ValueError, match="no validation or test scores"):
        figs.baseline_figure({"val_accuracy": None}, BASELINE)


def test_baseline_verdict_says_by_how_much_the_lstm_beats_or_trails_it() -> None:
    verdict = figs.baseline_verdict(LSTM, BASELINE)
    assert verdict == (
        "On the test split the LSTM beats TF-IDF + logistic regression by 5.0 points of accuracy "
        "and trails it by 3.0 points of macro-F1."
    )
    val_only = figs.baseline_verdict({"val_accuracy": 0.82, "val_macro_f1": 0.6}, BASELINE)
    assert val_only.startswith("On the validation split the LSTM ties with TF-IDF")
    assert "trails it by 10.0 points of macro-F1" in val_only
    assert figs.baseline_verdict(LSTM, {}) == "no TF-IDF + logistic regression figures to compare with"
