"""The Predict tab's handlers, without a browser: typing, and batch prediction with the answers in view."""

from __future__ import annotations

import pytest
from helpers import write_toy_csv

from lstm_demo.config import AppSettings
from lstm_demo.service import Service
from lstm_demo.ui import predict_tab


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    csv = write_toy_csv(home / "toy.csv", n=60)
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home), "LSTM_DEMO_DEVICE": "cpu"}))
    overrides = {"train__epochs": 1, "model__hidden_size": 8, "model__embedding_dim": 8}
    run_id = list(svc.train(csv, preset_name="fast", overrides=overrides))[-1].run.id
    yield svc, run_id, csv
    svc.shutdown()


def test_typing_gives_every_class_a_probability_and_blank_text_clears(trained):
    svc, run_id, _ = trained
    probabilities, message = predict_tab.classify(svc, run_id, "great film")
    assert message == "" and set(probabilities) == {"neg", "pos"}
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert predict_tab.classify(svc, run_id, "   ") == (None, "")


def test_the_batch_preview_shows_the_answers_before_the_text(trained):
    svc, run_id, csv = trained
    done = predict_tab.batch(svc, run_id, str(csv), "text")
    preview = done.preview
    assert preview["headers"] == ["predicted", "confidence", "label", "text"]
    first = preview["value"][0]
    assert first[0] in ("neg", "pos") and 0.5 <= first[1] <= 1.0 and first[2] in ("neg", "pos")
    assert (
        "60 texts from toy.csv classified" in done.message
        and "accuracy against its label column" in done.message
    )
    assert done.download and done.download.endswith(".csv")


def test_a_file_without_labels_previews_without_a_label_column(trained, tmp_path):
    svc, run_id, _ = trained
    texts = tmp_path / "texts.csv"
    texts.write_text("text\ngreat film\ndull plot\n", encoding="utf-8")
    done = predict_tab.batch(svc, run_id, str(texts), None)
    assert done.preview["headers"] == ["predicted", "confidence", "text"]
    assert [row[2] for row in done.preview["value"]] == ["great film", "dull plot"]


def test_a_failed_upload_clears_the_last_file_s_results(trained, tmp_path):
    svc, _, _ = trained
    bad = tmp_path / "picture.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    column, message, preview, download = predict_tab.batch_columns(svc, str(bad))
    assert column["choices"] == [] and column["value"] is None
    assert "PNG" in message and preview is None and download is None
