"""`lstm-demo` end to end: train a CSV, predict, list runs; bad input gives one line, not a traceback.

The happy path runs the real command in a subprocess; the table of bad inputs calls `cli.main`
in-process (each subprocess pays ~3 s of imports), with one subprocess case to prove the real
process prints nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LABELS, toy_rows, write_toy_csv

from lstm_demo import cli

TRAIN_KEYS = {
    "run_id",
    "val_accuracy",
    "test_accuracy",
    "test_macro_f1",
    "epochs_run",
    "train_seconds",
    "seconds_per_epoch",
    "device",
    "world_size",
    "model_dir",
    "baseline_val_accuracy",
    "baseline_val_macro_f1",
    "baseline_test_accuracy",
    "baseline_test_macro_f1",
}


def lstm_demo(home: Path, *args: str) -> subprocess.CompletedProcess:
    # one intra-op thread: on CI's shared cores OpenMP threads spin against each other
    env = {"OMP_NUM_THREADS": "1", **os.environ, "LSTM_DEMO_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lstm_demo.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


def last_json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def trained(home) -> dict:
    train_csv = write_toy_csv(home / "train.csv", n=80, seed=0)
    test_csv = write_toy_csv(home / "test.csv", n=20, seed=1)
    proc = lstm_demo(
        home, "train", str(train_csv), "--test", str(test_csv), "--preset", "fast", "--epochs", "2", "--json"
    )
    out = last_json(proc)
    out["stderr"] = proc.stderr
    return out


def test_train_prints_one_json_summary_last(trained):
    assert TRAIN_KEYS <= set(trained)
    assert trained["epochs_run"] == 2
    assert 0.0 <= trained["val_accuracy"] <= 1.0 and 0.0 <= trained["test_accuracy"] <= 1.0
    assert 0.0 <= trained["test_macro_f1"] <= 1.0
    assert trained["train_seconds"] > 0 and trained["seconds_per_epoch"] > 0
    assert trained["device"] in ("cpu", "cuda", "cuda:0", "mps")
    model_dir = Path(trained["model_dir"])
    assert model_dir.name == trained["run_id"] and (model_dir / "model.safetensors").is_file()
    assert "epoch 2/2" in trained["stderr"]  # progress goes to stderr, never into the JSON stream
    # the TF-IDF + LR yardstick on the same split: the toy vocabularies barely overlap
    assert trained["baseline_val_accuracy"] >= 0.75 and trained["baseline_test_accuracy"] >= 0.75
    assert trained["baseline_unavailable"] is None


def test_predict_json_gives_the_label_and_every_probability(home, trained):
    out = last_json(lstm_demo(home, "predict", trained["run_id"][:6], "great wonderful fun", "--json"))
    assert out["run_id"] == trained["run_id"]
    assert set(out["probabilities"]) == set(LABELS)
    assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert out["label"] == max(out["probabilities"], key=out["probabilities"].get)


def test_runs_json_lists_the_run(home, trained):
    runs = last_json(lstm_demo(home, "runs", "--json"))
    [run] = [r for r in runs if r["id"] == trained["run_id"]]
    assert run["status"] == "completed" and run["preset"] == "fast"
    assert run["val_accuracy"] == pytest.approx(trained["val_accuracy"])


def test_a_bad_request_in_a_real_process_prints_one_line(home):
    proc = lstm_demo(home, "predict", "nosuchrun", "hello")
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "nosuchrun" in proc.stderr and proc.stdout == ""


# ------------------------------------------------------------------------ bad input, in-process


@pytest.fixture
def run_cli(home, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_DEMO_HOME", str(home))

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def empty_csv(home) -> Path:
    path = home / "empty.csv"
    path.write_text("")
    return path


BAD = [
    pytest.param(("train", "{home}/missing.csv"), "missing.csv: file not found", id="missing-file"),
    pytest.param(("train", "{home}/empty.csv"), "empty.csv is empty", id="empty-file"),
    pytest.param(("train", "{home}/train.csv", "--text-col", "review"), "review", id="unknown-column"),
    pytest.param(("predict", "nosuchrun", "hello"), "nosuchrun", id="unknown-run"),
    pytest.param(("predict", "{run_id}", "   "), "empty", id="empty-text"),
    pytest.param(("train", "{home}/train.csv", "--epochs", "0"), "epochs", id="zero-epochs"),
    pytest.param(("train", "{home}/train.csv", "--set", "refit"), "SECTION__NAME=VALUE", id="set-no-value"),
    pytest.param(("train", "{home}/train.csv", "--set", "train__nope=1"), "train.nope", id="set-unknown"),
    pytest.param(("train", "{home}/train.csv", "--set", "train__monitor=f1"), "monitor", id="set-bad-value"),
    pytest.param(
        ("train", "{home}/train.csv", "--set", "train__refit=maybe"), "true or false", id="set-bad-type"
    ),
    # every size is checked against the limits before the table is read
    pytest.param(
        ("train", "{home}/train.csv", "--set", "model__hidden_size=1025"),
        "over the limit of 1,024",
        id="hidden-over-limit",
    ),  # fmt: skip
    pytest.param(
        ("train", "{home}/train.csv", "--set", "model__hidden_size=1e12"), "whole number", id="huge"
    ),
    pytest.param(("train", "{home}/train.csv", "--set", "model__hidden_size=NaN"), "whole number", id="nan"),
    pytest.param(
        ("train", "{home}/train.csv", "--set", "model__hidden_size=-5"), "at least 1", id="negative"
    ),
    pytest.param(
        ("train", "{home}/train.csv", "--set", "model__hidden_size=big"), "whole number", id="string"
    ),
    pytest.param(("train", "{home}/train.csv", "--set", "train__lr=Infinity"), "lr", id="inf"),
    pytest.param(("train", "{home}/train.csv", "--epochs", "501"), "over the limit of 500", id="epochs-over"),
    pytest.param(("predict", "{run_id}", "x" * 20_001), "over the limit of 20,000", id="text-too-long"),
    pytest.param(
        ("explain", "{run_id}", "great", "--steps", "501"), "over the limit of 500", id="steps-over"
    ),
    pytest.param(
        ("faithfulness", "{run_id}", "{home}/test.csv", "--n", "2001"),
        "over the limit of 2,000",
        id="faithfulness-over",
    ),  # fmt: skip
    pytest.param(("delete", "{running}"), "is running: cancel it before deleting it", id="delete-running"),
    pytest.param(("train", "{home}/train.csv", "--budget", "soon"), "search budget", id="budget-words"),
    pytest.param(
        ("train", "{home}/train.csv", "--budget", "25h"), "over the limit of 86,400", id="budget-over"
    ),
    pytest.param(
        ("train", "{home}/train.csv", "--freeze-vectors"), "need a vectors file", id="freeze-no-vectors"
    ),
    pytest.param(
        ("train", "{home}/train.csv", "--vectors", "{home}/none.txt"),
        "no vectors file none.txt",
        id="vectors-missing",
    ),
]


def test_set_reaches_any_setting_and_refit_is_reported(run_cli, home):
    code, out, err = run_cli("train", f"{home}/train.csv", "--preset", "fast", "--epochs", "2", "--json",
                             "--set", "train__refit=true", "--set", "train__monitor=loss")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert 1 <= summary["refit_epochs"] <= 2
    assert "refitting on all 80 training rows" in err and "refit epoch 1/" in err
    config = json.loads((Path(summary["model_dir"]) / "config.json").read_text())
    assert (config["train"]["refit"], config["train"]["monitor"]) == (True, "loss")


def test_vectors_start_the_embedding_and_the_summary_says_their_coverage(run_cli, home):
    from lstm_demo.vectors import fingerprint, ppmi_svd, write_vectors

    texts = [text for text, _ in toy_rows(80)]
    vectors = write_vectors(ppmi_svd(texts, dim=8, min_count=1), home / "toy-vectors.txt")
    csv = write_toy_csv(home / "vectors-train.csv", n=80)
    code, out, err = run_cli("train", str(csv), "--preset", "fast", "--epochs", "1", "--json",
                             "--vectors", str(vectors), "--freeze-vectors")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["vectors"].startswith(
        "pretrained vectors (toy-vectors.txt, 8 dimensions, frozen) cover 24 of 24"
    )
    config = json.loads((Path(summary["model_dir"]) / "config.json").read_text())
    assert config["model"]["embedding_dim"] == 8  # the vectors' size, in place of the preset's 48
    assert config["train"]["vectors_sha256"] == fingerprint(vectors)


@pytest.fixture(scope="module")
def running(home) -> str:
    """A run another process (the app) is training: its row says so, with a live pid."""
    from lstm_demo.config import AppSettings
    from lstm_demo.service import Service

    service = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home)}))
    try:
        prepared = service.prepare(write_toy_csv(home / "queued.csv", n=20), preset_name="fast")
        service.store.start_run(prepared.run_id, device="cpu", pid=os.getpid())  # alive: this process
        return prepared.run_id
    finally:
        service.store.close()


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input_exits_non_zero_with_one_line(run_cli, home, trained, empty_csv, running, args, message):
    code, out, err = run_cli(*(a.format(home=home, run_id=trained["run_id"], running=running) for a in args))
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("lstm-demo: error: "), err
    assert message in err and "Traceback" not in err


def test_debug_shows_the_traceback(run_cli):
    code, _, err = run_cli("--debug", "predict", "nosuchrun", "hello")
    assert code != 0
    assert "Traceback (most recent call last)" in err and "nosuchrun" in err


@pytest.mark.parametrize(("epochs", "ok"), [(2, True), (3, False)])
def test_limits_come_from_the_environment(run_cli, home, monkeypatch, epochs, ok):
    monkeypatch.setenv("LSTM_DEMO_MAX_EPOCHS", "2")
    code, _, err = run_cli(
        "train", f"{home}/train.csv", "--preset", "fast", "--epochs", str(epochs), "--quiet"
    )
    assert (code == 0) is ok, err
    assert ok or "over the limit of 2 (set LSTM_DEMO_MAX_EPOCHS" in err


@pytest.mark.parametrize("value", ["inf", "-1", "0", "lots"])
def test_a_limit_can_be_raised_but_never_removed(run_cli, home, monkeypatch, value):
    monkeypatch.setenv("LSTM_DEMO_MAX_EPOCHS", value)
    code, _, err = run_cli("runs")
    assert code != 0 and "LSTM_DEMO_MAX_EPOCHS must be a" in err


def test_auto_searches_within_the_budget_and_reports_its_trials(run_cli, home):
    code, out, err = run_cli("train", f"{home}/train.csv", "--preset", "auto", "--budget", "2s", "--epochs", "2",
                             "--set", "model__hidden_size=16", "--set", "model__embedding_dim=16", "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["search_trials"] >= 1 and summary["search_budget_seconds"] == 2
    assert "trial 0 " in err  # each trial's line on stderr while it searches
    assert TRAIN_KEYS <= set(summary)


def test_show_says_how_the_run_compares_with_its_baseline(run_cli, trained):
    code, out, err = run_cli("show", trained["run_id"])
    assert code == 0, err
    assert "On the test split the LSTM " in out and "TF-IDF + logistic regression" in out
