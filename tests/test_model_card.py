"""The model card in every bundle: what a reader of a shared model learns about it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lstm_demo.model_card import model_card
from lstm_demo.store import DatasetInfo, RunDetail, RunSummary

WHEN = datetime(2025, 3, 4, 5, 6, tzinfo=timezone.utc)
CONFIG = {
    "model": {"encoder": "gru", "bidirectional": True, "num_layers": 2, "hidden_size": 64, "pooling": "mean"},
    "tokenizer": {"kind": "bpe"},
    "labels": ["ham", "spam"],
}
DATASET = DatasetInfo(
    id=1, name="sms.csv", fingerprint="f" * 64, rows=500, text_column="text", label_column="label",
    label_counts={"ham": 430, "spam": 70}, created=WHEN,
)  # fmt: skip
PER_CLASS = {"spam": {"precision": 0.9, "recall": 0.75, "f1": 0.818, "support": 8}}


def _detail(name: str | None = "sms filter", dataset: DatasetInfo | None = DATASET) -> RunDetail:
    summary = RunSummary(
        id="abcd1234ef56", name=name, status="completed", preset="default", dataset_name="sms.csv",
        device="cpu", created=WHEN, started=WHEN, finished=WHEN, duration_seconds=1.0, val_accuracy=0.9,
        val_macro_f1=0.8, test_accuracy=None, test_macro_f1=None, best_epoch=3, epochs_run=5, error=None,
        model_dir=None,
    )  # fmt: skip
    return RunDetail(summary=summary, config=CONFIG, metrics={}, curve=(), dataset=dataset)


def test_the_card_names_the_run_its_model_and_its_data() -> None:
    card = model_card(_detail(), {"val": {"accuracy": 0.9, "macro_f1": 0.8}})
    assert card.startswith("# Model card: sms filter\n")
    for needed in (
        "run `abcd1234ef56`, preset `default`, finished 2025-03-04T05:06:00+00:00",
        "bidirectional GRU, 2 layer(s), hidden size 64",
        "mean pooling",
        "(bpe tokenizer)",
        "labels (2): `ham`, `spam`",
        "epochs run: 5, best epoch: 3",
        "`sms.csv`: 500 rows, text column `text`, label column `label`",
        "label counts: ham: 430, spam: 70",
        "| validation | 90.0% | 0.800 |",
        "lstm-demo import",
    ):
        assert needed in card


def test_a_card_without_a_name_or_dataset_says_so() -> None:
    card = model_card(_detail(name=None, dataset=None), {})
    assert card.startswith("# Model card: run abcd1234ef56\n")
    assert "## Training data\n\n- not recorded\n" in card
    assert "| validation |" not in card  # no figures, no rows


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), "0.9", True])
def test_a_missing_or_odd_figure_reads_n_a(value: object) -> None:
    card = model_card(_detail(), {"val": {"accuracy": value, "macro_f1": value}})
    assert "| validation | n/a | n/a |" in card


def test_per_class_figures_and_the_test_split() -> None:
    metrics = {"val": {"accuracy": 0.9, "per_class": PER_CLASS}, "test": {"accuracy": 0.85, "macro_f1": 0.7}}
    card = model_card(_detail(), metrics)
    assert "| test | 85.0% | 0.700 |" in card
    assert "Per class (validation):" in card and "| spam | 0.900 | 0.750 | 0.818 | 8 |" in card
    assert "Per class (test)" not in card


def test_a_refit_run_says_which_figures_come_from_the_first_pass() -> None:
    metrics = {"val": {"accuracy": 0.9}, "refit": {"epochs": 4, "rows": 500, "seconds": 2.0}}
    card = model_card(_detail(), metrics)
    assert "| validation (first pass, before the refit) | 90.0% |" in card
    assert "refit on all 500 training rows for 4 epochs" in card
    partial = model_card(_detail(), {**metrics, "refit": {"epochs": 4}})  # no whole refit record: no refit
    assert "refit" not in partial
