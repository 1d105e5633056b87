"""The app's run and data figures: curve positions, escaping of user text, shapes checked."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lstm_demo import charts

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
    points = charts.curve_points(reports)
    assert [p["x"] for p in points] == [0.5, 1.0, 1.5, 2.0]
    assert points[1]["val_accuracy"] == 0.6 and points[2]["val_loss"] is None


def test_training_curves_draw_validation_at_epoch_ends_only() -> None:
    points = charts.curve_points(
        [{"kind": "step", "epoch": 1, "step": 1, "steps_per_epoch": 2, "train_loss": 1.0},
         {"kind": "epoch", "epoch": 1, "step": 2, "train_loss": 0.8, "val_loss": 0.9, "val_accuracy": 0.7}]
    )  # fmt: skip
    fig = charts.training_curves({"run a": points, EVIL: points})
    by_name = {t.name: t for t in fig.data}
    assert len(by_name["run a: train loss"].x) == 2 and len(by_name["run a: validation accuracy"].x) == 1
    assert EVIL not in json.dumps(fig.to_plotly_json(), default=str)  # the run name is escaped


def test_label_distribution_and_confusion_matrix_escape_labels() -> None:
    fig = charts.label_distribution({EVIL: 3, "pos": 5})
    assert list(fig.data[0].y) == [3, 5]
    confusion = charts.confusion_matrix([[3, 1], [0, 5]], [EVIL, "pos"])
    assert [list(r) for r in confusion.data[0].z] == [[3, 1], [0, 5]]
    for f in (fig, confusion):
        assert EVIL not in json.dumps(f.to_plotly_json(), default=str)


def test_confusion_matrix_refuses_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="2 x 2"):
        charts.confusion_matrix([[1, 2, 3]], ["a", "b"])


def test_faithfulness_bars_one_group_per_method() -> None:
    fig = charts.faithfulness_bars({"ig": {"comprehensiveness": 0.4, "sufficiency": 0.1},
                                    "random": {"comprehensiveness": 0.1, "sufficiency": 0.3}})  # fmt: skip
    assert [t.name for t in fig.data] == ["comprehensiveness", "sufficiency"]
    assert list(fig.data[0].y) == [0.4, 0.1]
