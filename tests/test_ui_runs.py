"""The Runs tab's handlers, without a browser: the table, the run page, comparisons, delete, bundles."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_toy_csv

from lstm_demo.config import AppSettings
from lstm_demo.service import Service
from lstm_demo.ui import results, runs_tab

FAST = {"train__epochs": 2, "model__hidden_size": 8, "model__embedding_dim": 8}


def _service(home: Path) -> Service:
    return Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home), "LSTM_DEMO_DEVICE": "cpu"}))


def _train(svc: Service, csv: Path, name: str, **overrides) -> str:
    events = list(svc.train(csv, preset_name="fast", overrides={**FAST, **overrides}, name=name))
    return events[-1].run.id


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A service with two completed runs that differ in their layers and learning rate."""
    home = tmp_path_factory.mktemp("home")
    csv = write_toy_csv(home / "reviews.csv", n=60)
    svc = _service(home)
    one = _train(svc, csv, "one layer")
    two = _train(svc, csv, "two layers", model__num_layers=2, train__learning_rate=0.01)
    yield svc, one, two
    svc.shutdown()


def test_the_table_puts_status_name_and_accuracy_first(runs):
    svc, one, two = runs
    listing = runs_tab.refresh(svc, "", "", None, None)
    assert runs_tab.HEADERS[:4] == ["status", "name", "val acc", "test acc"]
    by_id = {row[runs_tab.ID_COLUMN]: row for row in listing.table}
    assert by_id[one][:2] == ["completed", "one layer"] and by_id[two][1] == "two layers"
    assert float(by_id[one][2]) > 0  # the validation accuracy, formatted


def test_a_click_on_a_row_chooses_that_run_among_fresh_choices(runs):
    svc, one, _ = runs
    row = next(r for r in runs_tab.table_rows(svc, "", "") if r[runs_tab.ID_COLUMN] == one)
    update = runs_tab.picked(svc, row)
    assert update["value"] == one and one in [value for _, value in update["choices"]]


def test_an_imported_bundle_is_chosen_together_with_its_choice(runs, tmp_path):
    """The Runs tab locked up when the picker got an id that was not yet among its choices."""
    svc, one, _ = runs
    bundle, message = runs_tab.export(svc, one)
    assert bundle and "exported" in message
    message, picker = runs_tab.import_bundle(svc, bundle)
    new_id = picker["value"]
    assert f"imported as run {new_id}" in message
    assert new_id != one and new_id in [value for _, value in picker["choices"]]


def test_the_run_page_shows_every_setting_the_data_and_the_curves(runs):
    svc, _, two = runs
    page = runs_tab.show(svc, two)
    settings = dict(page.settings)
    assert settings["model.num_layers"] == "2" and settings["train.learning_rate"] == "0.01"
    assert settings["dataset"] == "reviews.csv" and settings["rows"] == "60"
    assert settings["label counts"] == "neg: 30, pos: 30" and len(settings["fingerprint (sha256)"]) == 16
    assert "validation: accuracy" in page.summary and page.confusion is not None
    names = {trace.name for trace in page.curves.data}
    assert "train loss" in names and "validation accuracy" in names


def test_two_runs_compare_side_by_side_with_their_differences_marked(runs):
    svc, one, two = runs
    compared = runs_tab.compare(svc, [one, two])
    differing = [row for row in compared.table.split("<tr") if "lstm-demo-differs" in row]
    assert any("model.num_layers" in row for row in differing)
    assert any("train.learning_rate" in row for row in differing)
    assert not any("model.encoder" in row for row in differing)  # both LSTMs: not marked
    legends = {trace.meta for trace in compared.curves.data}  # "<run name>: <metric>", grouped by run
    assert "one layer: validation accuracy" in legends
    assert "two layers: validation accuracy" in legends
    assert {trace.legendgrouptitle.text for trace in compared.curves.data} == {"one layer", "two layers"}
    alone = runs_tab.compare(svc, [one])
    assert "choose a second run" in alone.table and alone.curves is not None


def test_delete_asks_first_and_deletes_only_when_confirmed(runs, tmp_path):
    svc, one, _ = runs
    bundle, _ = runs_tab.export(svc, one)
    _, picker = runs_tab.import_bundle(svc, bundle)
    victim = picker["value"]
    row, question = runs_tab.ask_delete(victim)
    assert row["visible"] is True and f"delete run {victim}" in question
    assert svc.run(victim).summary.status == "completed"  # asking deleted nothing
    row, message, picker = runs_tab.delete(svc, victim)
    assert row["visible"] is False and "deleted" in message and picker["value"] is None
    assert victim not in [r[runs_tab.ID_COLUMN] for r in runs_tab.table_rows(svc, "", "")]


def test_an_interrupted_run_is_described_in_plain_words():
    error = "interrupted: its process (pid 7663 on vm) stopped"
    assert results.plain_error(error) == "interrupted: the app stopped while it trained"


def test_a_stopped_run_shows_its_last_validation_figures(runs):
    svc, one, _ = runs
    detail = svc.run(one)
    stopped = detail.__class__(
        summary=detail.summary.__class__(
            **{**vars(detail.summary), "status": "cancelled", "val_accuracy": None}
        ),
        config=detail.config,
        metrics={},
        curve=detail.curve,
        dataset=detail.dataset,
    )
    last = results.last_validation(detail.curve)
    assert f"last validation (epoch {last.epoch}): accuracy" in results.metrics_markdown(stopped)


@pytest.mark.parametrize(
    ("metrics", "says"),
    [
        ({}, ""),
        (
            {"val": {"accuracy": 0.8}, "baseline": {"baseline_val_accuracy": 0.75}},
            "validation accuracy **0.750** (the LSTM +0.050)",
        ),
        (
            {"test": {"accuracy": 0.7}, "baseline_test_accuracy": 0.72, "baseline_val_accuracy": 0.9},
            "test accuracy **0.720** (the LSTM -0.020)",
        ),
        (  # a run without a test file: the stored record has None for its test figures
            {
                "val": {"accuracy": 0.8},
                "baseline": {"baseline_test_accuracy": None, "baseline_val_accuracy": 0.7},
            },
            "validation accuracy **0.700** (the LSTM +0.100)",
        ),
    ],
)
def test_the_baseline_is_shown_beside_the_run_with_the_gap(metrics, says):
    line = results.baseline_line(metrics)
    assert (says in line) if says else line == ""


def test_an_auto_run_still_searching_says_so_in_the_runs_table():
    from types import SimpleNamespace

    from lstm_demo.trials import TrialReport, trial_progress

    report = TrialReport(3, {}, "running", None, 0, 0.0, 30.0, 1, 0.8)
    job = SimpleNamespace(finished=False, status="running", progress=trial_progress(report, 120.0))
    service = SimpleNamespace(job=lambda run_id: job)
    assert runs_tab.live_progress(service, "r") == "searching: trial 3, 25% of the budget"
