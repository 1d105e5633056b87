"""The Train tab's handlers, without a browser: inspecting uploads, checking labels when they are chosen,
estimating the time per epoch, starting (locked while in flight), following, re-attaching after a reload
(to the person's own training), cancelling."""

from __future__ import annotations

import csv
import html
import re
from types import SimpleNamespace

import gradio as gr
import pytest
from helpers import THREAD, toy_rows, write_toy_csv

from lstm_demo.config import AppSettings
from lstm_demo.service import Service
from lstm_demo.ui import hyperparameters, train_tab
from lstm_demo.vectors import ppmi_svd, write_vectors

SMALL = {"model__hidden_size": 8, "model__embedding_dim": 8}
LONG = {**SMALL, "train__epochs": 50}
NO_VECTORS = ("", False)  # the form's pretrained vectors: none chosen, not frozen


def page(name: str, owner: str | None = "browser:mine", logged_in: bool = False) -> train_tab.Visitor:
    return train_tab.Visitor(name, owner, logged_in)


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    service = Service(
        AppSettings.from_env({"LSTM_DEMO_HOME": str(home), "LSTM_DEMO_DEVICE": "cpu", **THREAD})
    )
    yield service
    service.shutdown()


def _values(**overrides) -> list:
    """The advanced controls' values: the fast preset's, with `overrides`."""
    values = hyperparameters.preset_values(train_tab.PRESETS["fast"])
    keys = [f.key for f in hyperparameters.CONTROL_ORDER]
    for key, value in overrides.items():
        values[keys.index(key)] = value
    return values


def test_an_upload_is_previewed_with_its_columns_guessed_and_labels_counted(svc, tmp_path):
    path = write_toy_csv(tmp_path / "reviews.csv", n=40)
    shown = train_tab.inspect_file(svc, str(path))
    assert shown.text_column["value"] == "text" and shown.label_column["value"] == "label"
    assert shown.preview["headers"] == ["text", "label"] and len(shown.preview["value"]) > 0
    assert "40 rows, 2 classes" in shown.summary and shown.distribution is not None
    assert shown.label_check == ""


def test_a_failed_upload_clears_what_the_previous_file_left(svc, tmp_path):
    bad = tmp_path / "picture.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    shown = train_tab.inspect_file(svc, str(bad))
    assert "PNG" in shown.message
    assert shown.preview is None and shown.distribution is None and shown.summary == ""
    assert shown.text_column == {"__type__": "update", "choices": [], "value": None}


def test_a_numeric_label_column_is_warned_about_when_chosen(svc, tmp_path):
    path = tmp_path / "with-ids.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [("text", "label", "id"), *((t, y, str(i)) for i, (t, y) in enumerate(toy_rows(120)))]
        )
    shown = train_tab.on_columns(svc, str(path), "text", "id")
    assert "lstm-demo-msg-warning" in shown.label_check and "numbers" in shown.label_check
    assert "120 rows, 120 classes" in shown.summary
    same = train_tab.on_columns(svc, str(path), "text", "text")
    assert "must differ" in same.label_check


def test_start_locks_the_button_until_the_run_is_queued_then_follows_it_to_the_end(svc, tmp_path):
    path = write_toy_csv(tmp_path / "toy.csv", n=60)
    test = write_toy_csv(tmp_path / "test.csv", n=20, seed=3)
    values = _values(**SMALL)
    updates = list(
        train_tab.start(
            svc,
            page("page-1"),
            str(path),
            str(test),
            "text",
            "label",
            "fast",
            2,
            "mine",
            *NO_VECTORS,
            *values,
        )
    )
    assert updates[0].start["interactive"] is False  # before anything else
    unlocked = next(i for i, u in enumerate(updates) if u.start.get("interactive"))
    assert unlocked > 0 and updates[unlocked].start["value"] == "Start training"  # a blank button otherwise
    last = updates[-1]
    run_id = last.active
    assert any(u.job_id == run_id for u in updates)
    assert 'data-status="completed"' in [u.progress for u in updates if isinstance(u.progress, str)][-1]
    assert 'data-status="completed"' in last.progress  # the end is drawn whatever the last change was
    assert "test: accuracy" in last.metrics and f"run {run_id} finished" in last.message
    assert "not listed" not in last.metrics and isinstance(last.missed, list)  # the mistakes, if any
    assert all(row[0] != row[1] and row[0] in ("neg", "pos") for row in last.missed)
    assert svc.run(run_id).summary.test_accuracy is not None  # the test file was used


def test_auto_shows_its_trials_live_and_keeps_them_with_the_results(svc, tmp_path):
    path = write_toy_csv(tmp_path / "auto.csv", n=60)
    values = _values(**SMALL, train__budget=2)
    updates = list(
        train_tab.start(
            svc, page("page-5"), str(path), None, "text", "label", "auto", 2, "", *NO_VECTORS, *values
        )
    )
    live = [u.trials for u in updates[:-1] if isinstance(u.trials, list)]
    assert live  # the table while it searches (a trial shorter than a redraw may show only at the end)
    searching = [
        u.progress for u in updates if isinstance(u.progress, str) and "searching settings" in u.progress
    ]
    assert searching and "of the budget" in searching[0]
    last = updates[-1]
    kept = svc.run(last.active).metrics["search"]["trials"]
    assert len(last.trials) == len(kept) and last.trials[0][0].startswith("0")  # the adapted defaults first
    assert sum("(best)" in row[0] for row in last.trials) <= 1


def test_start_without_a_file_says_so_and_stays_unlocked(svc):
    (only,) = train_tab.start(
        svc, page("page-2"), None, None, None, None, "fast", 2, "", *NO_VECTORS, *_values()
    )
    assert "upload a CSV" in only.upload_message and only.start["interactive"] is True


def test_the_estimate_says_per_epoch_on_which_device_from_how_many_steps(svc, tmp_path):
    assert "upload a CSV" in train_tab.estimate(svc, None, None, None, "fast", 2, *NO_VECTORS, *_values())
    path = str(write_toy_csv(tmp_path / "estimated.csv", n=60))
    said = html.unescape(
        train_tab.estimate(svc, path, "text", "label", "fast", 3, *NO_VECTORS, *_values(**SMALL))
    )
    assert re.search(r"Estimate: (about \d+s|under a second) per epoch on this machine's cpu", said)
    assert "for 3 epochs" in said and "54 training rows" in said and "hidden size 8" in said
    assert all(r.dataset_name != "estimated.csv" for r in svc.runs())  # nothing was recorded
    wrong = train_tab.estimate(svc, path, "text", "text", "fast", 3, *NO_VECTORS, *_values())
    assert "lstm-demo-msg-error" in wrong


def test_the_estimate_times_the_embedding_as_wide_as_the_chosen_vectors(svc, tmp_path):
    texts = [text for text, _ in toy_rows(60)]
    wide = write_vectors(ppmi_svd(texts, dim=20, min_count=1), tmp_path / "wide.txt")
    train_tab.add_vectors(svc, [str(wide)])
    path = str(write_toy_csv(tmp_path / "estimated.csv", n=60))
    plain = {k: v for k, v in SMALL.items() if k != "model__embedding_dim"}  # the preset's, which gives way
    try:
        said = html.unescape(
            train_tab.estimate(svc, path, "text", "label", "fast", 3, "wide.txt", True, *_values(**plain))
        )
    finally:  # the app's vectors folder is the module's: the other tests expect it empty
        (svc.settings.vectors_dir / "wide.txt").unlink()
    assert "embedding size 20, hidden size 8" in said, said
    missing = train_tab.estimate(svc, path, "text", "label", "fast", 3, "gone.txt", False, *_values(**plain))
    assert "lstm-demo-msg-error" in missing and "gone.txt" in html.unescape(missing)


def test_a_reloaded_page_re_attaches_to_the_running_training_and_can_cancel_it(svc, tmp_path):
    (nothing,) = train_tab.reattach(svc, page("reloaded"))  # nothing running: only Start, with its label
    assert nothing.start["value"] == train_tab.START and nothing.message == gr.skip()
    path = write_toy_csv(tmp_path / "long.csv", n=200)
    job = svc.submit(svc.prepare(path, preset_name="fast", overrides=LONG))  # from the HTTP API: no owner
    following = train_tab.reattach(svc, page("reloaded"))
    first = next(following)
    assert f"following run {job.run_id}, the newest training, started elsewhere" in first.message
    assert next(following).job_id == job.run_id
    assert "cancelling run" in train_tab.cancel(svc, job.run_id)
    *_, last = following
    assert "was cancelled" in last.message
    assert "no training of yours" in train_tab.cancel(svc, job.run_id)


@pytest.mark.parametrize(
    ("username", "browser", "owner", "logged_in"),
    [("ann", "b1", "user:ann", True), (None, "b1", "browser:b1", False), (None, None, None, False)],
)
def test_the_owner_is_the_logged_in_user_else_the_browser(username, browser, owner, logged_in):
    request = SimpleNamespace(username=username, session_hash="s1")
    assert train_tab.visitor(request, browser) == ("s1", owner, logged_in)


def test_a_browser_keeps_its_id_and_a_new_one_gets_one():
    assert train_tab.browser_id("kept") == "kept"
    made = train_tab.browser_id(None)
    assert len(made) == 32 and made != train_tab.browser_id(None)


def test_a_reload_or_a_second_tab_follows_its_own_training_not_the_newest(svc, tmp_path):
    """Two people train; each one's reloaded page (or second tab) follows their own, though one is newer;
    with a login, someone without a training of their own follows nobody's."""
    path = write_toy_csv(tmp_path / "two.csv", n=200)
    mine = svc.submit(svc.prepare(path, preset_name="fast", overrides=LONG), "browser:mine")
    theirs = svc.submit(svc.prepare(path, preset_name="fast", overrides=LONG), "user:ann")
    try:
        assert svc.active_job() is theirs  # the newest
        for who, job in ((page("second tab"), mine), (page("ann's", "user:ann", True), theirs)):
            following = train_tab.reattach(svc, who)
            assert f"following your run {job.run_id}" in next(following).message
            assert next(following).job_id == job.run_id
            following.close()
        (nothing,) = train_tab.reattach(svc, page("bob's", "user:bob", True))
        assert nothing.job_id == gr.skip() and nothing.message == gr.skip()
        stranger = train_tab.reattach(svc, page("another browser", "browser:other"))
        assert f"following run {theirs.run_id}, the newest training" in next(stranger).message
        stranger.close()
    finally:
        for job in (theirs, mine):
            svc.cancel(job.run_id)
        for job in (mine, theirs):
            list(svc.follow(job.run_id, interval=0.05))


def test_a_second_start_from_the_same_page_while_the_first_is_in_flight_makes_no_second_run(svc, tmp_path):
    """A double click reaches the server twice; only the first makes a run."""
    path = str(write_toy_csv(tmp_path / "twice.csv", n=200, seed=9))
    values = _values(**SMALL)
    form = (path, None, "text", "label", "fast", 50, "", *NO_VECTORS, *values)
    first = train_tab.start(svc, page("page-3"), *form)
    assert next(first).start["interactive"] is False  # the first is starting
    (second,) = train_tab.start(svc, page("page-3"), *form)
    assert train_tab.BUSY in second.message
    queued = next(first)
    assert queued.start["interactive"] is True
    (third,) = train_tab.start(svc, page("page-3"), *form)  # and while it trains
    assert train_tab.BUSY in third.message
    other = train_tab.start(svc, page("page-4"), *form)  # another page is not held up
    assert next(other).start["interactive"] is False
    other.close()
    job_id = next(u.job_id for u in first if u.job_id is not gr.skip() and isinstance(u.job_id, str))
    assert train_tab.cancel(svc, job_id).startswith("<div")
    assert [r.name for r in svc.runs() if r.dataset_name == "twice.csv"] == [None]
    first.close()


def test_uploaded_vectors_are_checked_listed_chosen_and_their_coverage_shown_after_training(svc, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("the 0.1 0.2\ngood 1.0\n", encoding="utf-8")
    said, choice = train_tab.add_vectors(svc, [str(bad)])
    assert "lstm-demo-msg-error" in said and "line 2 has 1 numbers, expected 2" in said
    assert choice is gr.skip() or choice == gr.skip()  # the choice stays as it was
    assert svc.vectors_files() == []
    said, _ = train_tab.add_vectors(svc, [str(bad), str(bad)])
    assert html.escape(train_tab.VECTORS_UPLOAD) in said

    texts = [text for text, _ in toy_rows(60)]
    good = write_vectors(ppmi_svd(texts, dim=8, min_count=1), tmp_path / "toy vectors!.txt")
    said, choice = train_tab.add_vectors(svc, [str(good)])
    assert "toy_vectors.txt: 24 words of 8 dimensions, added to the vectors folder" in html.unescape(said)
    assert choice["value"] == "toy_vectors.txt" and ("none", "") in choice["choices"]
    listed = train_tab.vectors_choices(svc)["choices"]  # what a page opening the section lists
    assert "toy_vectors.txt" in listed

    path = write_toy_csv(tmp_path / "with-vectors.csv", n=60)
    form = (str(path), None, "text", "label", "fast", 1, "", "toy_vectors.txt", True, *_values(**SMALL))
    last = list(train_tab.start(svc, page("page-6"), *form))[-1]
    assert f"run {last.active} finished" in last.message
    shown = re.sub(r"\\(.)", r"\1", last.metrics)  # as the Markdown reads
    assert "- pretrained vectors (toy_vectors.txt, 8 dimensions, frozen) cover 24 of 24 vocabulary" in shown


def test_a_npy_upload_takes_its_vocab_from_the_same_upload(svc, tmp_path):
    texts = [text for text, _ in toy_rows(60)]
    npy = write_vectors(ppmi_svd(texts, dim=8, min_count=1), tmp_path / "wiki.npy")
    vocab = tmp_path / "apart" / "wiki.vocab"  # Gradio keeps each uploaded file in a folder of its own
    vocab.parent.mkdir()
    npy.with_suffix(".vocab").rename(vocab)
    said, _ = train_tab.add_vectors(svc, [str(npy)])
    assert "no vectors file wiki.vocab: upload it with wiki.npy" in html.unescape(said)
    said, choice = train_tab.add_vectors(svc, [str(vocab), str(npy)])
    assert "wiki.npy: 24 words of 8 dimensions" in said and choice["value"] == "wiki.npy"
