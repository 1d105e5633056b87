"""Doctor: the runs table and the runs directory compared and, on request, made to agree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import LABELS, toy_rows

from lstm_demo.artifacts import WEIGHTS, save_model_dir
from lstm_demo.config import AppSettings, ModelConfig, RunConfig
from lstm_demo.model import TextClassifier
from lstm_demo.service import Service
from lstm_demo.tokenization import TextEncoder

PROBES = ["great fun film", "dull and boring"]


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[tuple[Service, str]]:
    """An installation holding one completed run with a small untrained model, for doctor to examine."""
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home")}))
    cfg = RunConfig(preset="fast", labels=LABELS)
    encoder = TextEncoder.train([text for text, _ in toy_rows(40)], cfg.preprocess, cfg.tokenizer)
    model = ModelConfig(
        embedding_dim=8, hidden_size=8, vocab_size=encoder.vocab_size, num_classes=len(LABELS)
    )
    cfg = RunConfig(preset="fast", labels=LABELS, model=model)
    run = svc.store.create_run(config=cfg.to_dict(), preset="fast", dataset_id=None)
    model_dir = save_model_dir(
        svc.settings.runs_dir / run.id, cfg, encoder, TextClassifier(model), {"val": {}}
    )
    svc.store.start_run(run.id, device="cpu")
    svc.store.finish_run(run.id, status="completed", model_dir=str(model_dir))
    yield svc, run.id
    svc.close()


def test_doctor_on_a_consistent_installation(installed: tuple[Service, str]) -> None:
    report = installed[0].doctor()
    assert report["ok"] and not report["repaired"] and report["integrity"] == "ok"
    assert report["rows_without_files"] == report["files_without_rows"] == []


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_doctor_marks_a_run_without_model_files_failed(installed: tuple[Service, str], damage: str) -> None:
    svc, run_id = installed
    model_dir = svc.settings.runs_dir / run_id
    if damage == "delete":
        for f in model_dir.iterdir():
            f.unlink()
        model_dir.rmdir()
    else:
        (model_dir / WEIGHTS).write_bytes(b"not weights")

    dry = svc.doctor(repair=False)
    assert not dry["ok"] and dry["rows_without_files"] == [run_id] and not dry["repaired"]
    assert any(run_id in line and "dry run" in line for line in dry["lines"])
    assert svc.run(run_id).summary.status == "completed"

    report = svc.doctor()
    assert report["rows_without_files"] == [run_id] and report["repaired"]
    summary = svc.run(run_id).summary
    assert summary.status == "failed" and summary.error.startswith("model files missing")
    assert svc.doctor()["ok"]


def test_doctor_removes_files_no_run_owns_but_not_those_of_active_runs(
    installed: tuple[Service, str],
) -> None:
    svc, run_id = installed
    runs_dir = svc.settings.runs_dir
    (runs_dir / "stray").mkdir()
    (runs_dir / "stray" / WEIGHTS).write_bytes(b"x")
    (runs_dir / ".0123abcd.k2j3").mkdir()  # what a crash during an atomic save leaves
    queued = svc.store.create_run(config={}, preset="fast", dataset_id=None)
    writing = runs_dir / f".{queued.id}.x7y8"  # a run being saved right now
    writing.mkdir()

    dry = svc.doctor(repair=False)
    strays = [str(runs_dir / ".0123abcd.k2j3"), str(runs_dir / "stray")]
    assert not dry["ok"] and dry["files_without_rows"] == strays
    assert dry["incomplete_dirs"] == [str(runs_dir / ".0123abcd.k2j3")]
    assert dry["rows_without_files"] == []
    assert all(Path(p).exists() for p in strays)

    report = svc.doctor()
    assert report["files_without_rows"] == strays and report["repaired"]
    assert sorted(os.listdir(runs_dir)) == sorted([run_id, writing.name])
    assert svc.run(queued.id).summary.status == "queued"
    assert svc.predict(run_id, PROBES)  # the healthy run is untouched


def test_doctor_command_line_exit_codes(
    installed: tuple[Service, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lstm_demo import cli

    svc, _ = installed
    monkeypatch.setenv("LSTM_DEMO_HOME", str(svc.settings.home))
    (svc.settings.runs_dir / "stray").mkdir()
    assert cli.main(["doctor", "--dry-run"]) == 1
    assert "stray" in capsys.readouterr().out
    assert cli.main(["doctor"]) == 0
    assert cli.main(["doctor", "--dry-run"]) == 0
