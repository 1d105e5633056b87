"""The baseline beside every run: fitted on the run's own split, stored with it, compared in words,
and never the reason a run fails."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from helpers import write_toy_csv

from lstm_demo import model_card, yardstick
from lstm_demo.config import AppSettings, Limits, preset
from lstm_demo.service import Service
from lstm_demo.ui import results, runs_tab


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real tiny training with a test file: the service, the run's detail."""
    home = tmp_path_factory.mktemp("home")
    csv = write_toy_csv(home / "train.csv", n=80, seed=0)
    test_csv = write_toy_csv(home / "test.csv", n=20, seed=1)
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home)}))
    events = list(svc.train(csv, test_path=test_csv, preset_name="fast", overrides={"train__epochs": 2}))
    yield svc, svc.run(events[-1].run_id)
    svc.shutdown()


def test_a_run_carries_its_baseline_figures_on_its_own_splits(run):
    svc, detail = run
    base = detail.metrics[yardstick.KEY]
    assert base["baseline_unavailable"] is None
    assert base["baseline_val_accuracy"] >= 0.75 and base["baseline_test_accuracy"] >= 0.75
    loaded = svc.load(detail.summary.id)  # the model directory's metrics.json carries it too
    assert loaded.metrics[yardstick.KEY] == base
    assert base["baseline_train_rows"] == loaded.metrics["data"]["train_rows"]
    assert base["baseline_train_rows"] < 80  # the validation share stays out, as for the LSTM


def test_the_run_summary_model_card_and_runs_table_compare_the_lstm_with_it(run):
    svc, detail = run
    verdict = yardstick.verdict(detail.metrics)
    assert verdict.startswith("On the test split the LSTM ") and "TF-IDF + logistic regression" in verdict
    assert verdict in model_card.model_card(detail, detail.metrics)
    assert "On the test split the LSTM " in results.metrics_markdown(detail)
    [row] = [r for r in runs_tab.table_rows(svc, "", "") if r[runs_tab.ID_COLUMN] == detail.summary.id]
    shown = row[runs_tab.HEADERS.index("baseline")]
    assert shown and float(shown) == pytest.approx(
        detail.metrics["baseline"]["baseline_test_accuracy"], abs=1e-3
    )


def _prepared(texts, labels, *, val=(), test=None):
    n = len(texts)
    table = SimpleNamespace(texts=[*texts, *val], labels=[*labels, *(["a"] * len(val))])
    return SimpleNamespace(
        run_id="r", table=table, train_idx=list(range(n)), val_idx=list(range(n, n + len(val))),
        val_table=None, test_table=test, config=preset("fast"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("texts", "labels", "reason"),
    [
        (["good film", "bad film"], ["pos", "pos"], "at least two classes"),
        (["!!", "??"], ["pos", "neg"], "no words"),
    ],
)
def test_a_baseline_that_cannot_be_fitted_is_recorded_unavailable_with_the_reason(texts, labels, reason):
    record = yardstick.measure(_prepared(texts, labels), Limits())
    assert reason in record["baseline_unavailable"]
    assert record["baseline_val_accuracy"] is None
    assert yardstick.verdict({"val": {"accuracy": 0.9}, "baseline": record}).startswith("No TF-IDF")


def test_an_unexpected_baseline_error_never_fails_the_run(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("sklearn broke")

    monkeypatch.setattr("lstm_demo.baseline.fit_baseline", boom)
    record = yardstick.measure(_prepared(["good", "bad"], ["pos", "neg"]), Limits())
    assert record["baseline_unavailable"] == "RuntimeError: sklearn broke"


def test_cli_figures_are_always_present_even_for_a_run_without_a_baseline():
    figures = yardstick.json_figures({"val": {"accuracy": 0.8}})
    assert {f"baseline_{k}" for k in yardstick.FIGURES} <= set(figures)
    assert all(figures[f"baseline_{k}"] is None for k in yardstick.FIGURES)
    assert figures["baseline_unavailable"]


def test_the_runs_column_reads_a_finished_run_once_and_nothing_while_it_trains():
    reads: list[str] = []
    metrics = {"baseline": {"baseline_val_accuracy": 0.7, "baseline_test_accuracy": None}}
    column = yardstick.Column(lambda run_id: reads.append(run_id) or metrics)
    assert column.accuracy("r", finished=False) is None and reads == []
    assert [column.accuracy("r", finished=True) for _ in range(3)] == [0.7] * 3
    assert reads == ["r"]
