"""The service: a CSV in, a completed run with its curve and model out; predictions; failures recorded."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import LABELS, THREAD, write_toy_csv

from lstm_demo.config import AppSettings, LimitError, Limits, override
from lstm_demo.service import Service, ServiceError, TrainEvent

EPOCHS = 3


def _service(home: Path) -> Service:
    return Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home), **THREAD}))


def _train(svc: Service, csv: Path, **kwargs) -> list[TrainEvent]:
    overrides = {"train__epochs": EPOCHS, **kwargs.pop("overrides", {})}
    return list(svc.train(csv, preset_name="fast", overrides=overrides, **kwargs))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A service in a fresh home with one completed run (trained with a test file)."""
    home = tmp_path_factory.mktemp("home")
    csv = write_toy_csv(home / "train.csv", n=80, seed=0)
    test_csv = write_toy_csv(home / "test.csv", n=20, seed=1)
    svc = _service(home)
    events = _train(svc, csv, test_path=test_csv, name="toy")
    yield svc, events, csv
    svc.shutdown()


def test_training_records_a_completed_run_with_its_curve(trained):
    svc, events, _ = trained
    last = events[-1]
    assert last.progress.kind == "done" and last.run is not None
    assert all(e.run is None for e in events[:-1])
    run = svc.run(last.run_id)
    s = run.summary
    assert (s.status, s.preset, s.name, s.epochs_run, s.dataset_name) == (
        "completed",
        "fast",
        "toy",
        EPOCHS,
        "train.csv",
    )
    assert s.val_accuracy is not None and s.test_accuracy is not None and s.error is None
    assert s.val_accuracy >= 0.75  # the two vocabularies barely overlap
    epochs = [p for p in run.curve if p.kind == "epoch"]
    assert [p.epoch for p in epochs] == list(range(1, EPOCHS + 1))
    assert all(p.val_accuracy is not None and p.train_loss is not None for p in epochs)
    assert run.config["labels"] == list(LABELS) and run.config["model"]["vocab_size"] > 2
    assert sorted(p.name for p in Path(s.model_dir).iterdir()) == sorted(
        ["config.json", "tokenizer.json", "model.safetensors", "metrics.json"]
    )
    assert last.run_id in [r.id for r in svc.runs()]


def test_predict_returns_every_class_with_probabilities_summing_to_one(trained):
    svc, events, _ = trained
    texts = ["great wonderful fun film", "awful boring dull plot", "words nobody has seen"]
    predictions = svc.predict(events[-1].run_id, texts)
    assert [p.text for p in predictions] == texts
    for p in predictions:
        assert list(p.probabilities) == list(LABELS)
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.label == max(p.probabilities, key=p.probabilities.get)
    assert (predictions[0].label, predictions[1].label) == ("pos", "neg")


def test_predict_accepts_a_unique_id_prefix_and_one_string(trained):
    svc, events, _ = trained
    run_id = events[-1].run_id
    [by_prefix] = svc.predict(run_id[:6], "superb charming acting")
    [by_id] = svc.predict(run_id, ["superb charming acting"])
    assert by_prefix == by_id


@pytest.mark.parametrize("texts", [[""], ["   \n"], ["fine", ""]])
def test_predict_refuses_empty_text(trained, texts):
    svc, events, _ = trained
    with pytest.raises(ServiceError, match="empty"):
        svc.predict(events[-1].run_id, texts)


def test_predict_refuses_an_unknown_run(trained):
    with pytest.raises(ServiceError, match="zzzzzz"):
        trained[0].predict("zzzzzz", ["hello"])


def test_a_new_service_on_the_same_home_predicts_the_same(trained):
    svc, events, _ = trained
    run_id = events[-1].run_id
    text = ["the plot was dull but the acting great"]
    again = _service(svc.settings.home)
    try:
        assert again.predict(run_id, text) == svc.predict(run_id, text)
        assert again.interrupted == []  # a completed run is not touched at start-up
    finally:
        again.shutdown()


def test_a_failure_midway_marks_only_that_run_failed(trained):
    svc, events, csv = trained
    good = events[-1].run_id
    calls = []

    def explode() -> bool:
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk on fire")
        return False

    seen: list[TrainEvent] = []
    with pytest.raises(RuntimeError, match="disk on fire"):
        for event in svc.train(
            csv, preset_name="fast", overrides={"train__epochs": EPOCHS}, should_stop=explode
        ):
            seen.append(event)
    failed = svc.run(seen[0].run_id).summary
    assert failed.status == "failed" and "RuntimeError: disk on fire" in failed.error
    assert failed.model_dir is None and not (svc.settings.runs_dir / failed.id).exists()
    assert svc.run(good).summary.status == "completed"
    assert svc.predict(good, ["great fun"])[0].label == "pos"
    with pytest.raises(ServiceError, match="failed"):
        svc.predict(failed.id, ["great fun"])
    svc.delete(failed.id)


def test_a_run_whose_loss_diverges_ends_failed_with_the_reason(trained, monkeypatch):
    svc, events, csv = trained
    from torch.optim.optimizer import register_optimizer_step_post_hook

    def poison(optimizer, args, kwargs) -> None:  # a blown-up update, as a learning rate far too high gives
        with torch.no_grad():
            optimizer.param_groups[0]["params"][0].fill_(float("nan"))

    handle = register_optimizer_step_post_hook(poison)
    try:
        seen = list(svc.train(csv, preset_name="fast", overrides={"train__epochs": EPOCHS}))
    finally:
        handle.remove()
    run = seen[-1].run
    assert seen[-1].progress.kind == "failed" and run.status == "failed"
    assert (
        run.error.startswith("the loss became NaN at epoch 1, step ")
        and "lower the learning rate" in run.error
    )
    assert run.model_dir is None and not (svc.settings.runs_dir / run.id).exists()
    with pytest.raises(ServiceError, match="failed"):
        svc.predict(run.id, ["great fun"])
    assert svc.predict(events[-1].run_id, ["great fun"])[0].label == "pos"  # the others are untouched
    svc.delete(run.id)


def test_a_training_that_cannot_allocate_its_model_fails_that_run_only(trained, monkeypatch):
    svc, _, csv = trained
    import lstm_demo.train as train_module

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(train_module, "TextClassifier", no_memory)
    with pytest.raises(RuntimeError):
        list(svc.train(csv, preset_name="fast", overrides={"train__epochs": 1}, name="too big"))
    monkeypatch.undo()
    failed = next(r for r in svc.runs() if r.name == "too big")
    assert failed.status == "failed" and failed.error.startswith("the model did not fit in memory")
    after = list(svc.train(csv, preset_name="fast", overrides={"train__epochs": 1}))
    assert after[-1].run.status == "completed"
    for run_id in (failed.id, after[-1].run_id):
        svc.delete(run_id)


def test_a_run_whose_options_are_over_a_limit_fails_alone_before_building_anything(trained, monkeypatch):
    svc, _, csv = trained
    import lstm_demo.train as train_module

    huge = svc.prepare(csv, preset_name="fast", overrides={"train__epochs": 1}, name="huge")
    huge.config = override(huge.config, model__hidden_size=10**7)  # as if a door had let it through
    built = []
    monkeypatch.setattr(train_module, "TextClassifier", lambda *a, **k: built.append(1))
    with pytest.raises(LimitError):
        list(svc.execute(huge))
    monkeypatch.undo()
    failed = svc.run(huge.run_id).summary
    assert failed.status == "failed" and failed.error.startswith(
        "model.hidden_size is 10000000, over the limit"
    )
    assert built == []
    after = list(svc.train(csv, preset_name="fast", overrides={"train__epochs": 1}))
    assert after[-1].run.status == "completed"
    for run_id in (failed.id, after[-1].run_id):
        svc.delete(run_id)


def test_a_finished_training_serves_its_model_from_memory_and_resolves_its_device_once(trained, monkeypatch):
    svc, _, csv = trained
    import lstm_demo.execution as execution_module
    import lstm_demo.service as service_module
    import lstm_demo.train as train_module

    prepared = svc.prepare(csv, preset_name="fast", overrides={"train__epochs": 1, "train__refit": True})
    calls = []
    for module in (execution_module, train_module):
        real = module.resolve_device
        monkeypatch.setattr(
            module, "resolve_device", lambda name="auto", real=real: calls.append(name) or real(name)
        )
    events = list(svc.execute(prepared))
    assert len(calls) == 1  # two passes (a refit), one device

    def unreadable(*args, **kwargs):
        raise AssertionError("the model was read back from disk")

    monkeypatch.setattr(service_module.artifacts, "load_model_dir", unreadable)
    assert svc.predict(events[-1].run_id, ["great wonderful fun"])[0].label == "pos"
    svc.delete(events[-1].run_id)


@pytest.fixture
def bounded(trained, monkeypatch):
    """The trained service under small limits on explanations."""
    svc, events, _ = trained
    limits = Limits(ig_steps=8, text_chars=100, faithfulness_texts=3)
    monkeypatch.setattr(svc, "settings", replace(svc.settings, limits=limits))
    return svc, events[-1].run_id


@pytest.mark.parametrize("steps", [9, 10**9, float("nan"), float("inf"), "8", True])
def test_explanations_refuse_integration_steps_over_the_limit(bounded, steps):
    svc, run_id = bounded
    with pytest.raises(LimitError, match="steps is .* over the limit of 8 .*LSTM_DEMO_MAX_IG_STEPS"):
        svc.explain(run_id, "great fun", steps=steps)
    with pytest.raises(LimitError, match="LSTM_DEMO_MAX_IG_STEPS"):
        svc.faithfulness(run_id, texts=["great fun"], n=3, steps=steps, methods=["ig"])


def test_explanations_just_inside_the_limits_are_answered(bounded):
    svc, run_id = bounded
    text = ("great fun " * 10)[:100]
    assert svc.explain(run_id, text, steps=8, methods=["ig", "gradshap"]).predicted == "pos"  # an alias too
    assert svc.gates(run_id, text).tokens and svc.decision_path(run_id, text).probabilities
    assert svc.faithfulness(run_id, texts=["great fun", "awful dull", "fun"], n=3, steps=8, methods=["ig"])


@pytest.mark.parametrize("door", ["explain", "gates", "decision_path", "faithfulness"])
def test_a_text_over_the_limit_is_refused_by_its_length_and_never_echoed(bounded, door):
    svc, run_id = bounded
    text = "great " + "x" * 95  # 101 characters
    call = {
        "explain": lambda: svc.explain(run_id, text, steps=8),
        "gates": lambda: svc.gates(run_id, text),
        "decision_path": lambda: svc.decision_path(run_id, text),
        "faithfulness": lambda: svc.faithfulness(run_id, texts=[text], n=3, steps=8, methods=["ig"]),
    }[door]
    with pytest.raises(LimitError, match="is 101, over the limit of 100") as refused:
        call()
    assert "xxxxx" not in str(refused.value)


def test_faithfulness_refuses_more_texts_than_the_limit(bounded):
    svc, run_id = bounded
    with pytest.raises(LimitError, match="n .* is 4, over the limit of 3 .*LSTM_DEMO_MAX_FAITHFULNESS_TEXTS"):
        svc.faithfulness(run_id, texts=["great fun"], n=4)


def test_should_stop_cancels_the_run(trained):
    svc, _, csv = trained
    events = list(
        svc.train(csv, preset_name="fast", overrides={"train__epochs": EPOCHS}, should_stop=lambda: True)
    )
    assert events[-1].progress.kind == "cancelled" and events[-1].run.status == "cancelled"
    svc.delete(events[-1].run_id)


def test_refit_trains_the_kept_model_on_every_training_row(tmp_path):
    """Validation chooses the epochs; tokenizer and model are then trained on all rows and kept."""
    svc = _service(tmp_path / "home")
    try:
        csv = write_toy_csv(tmp_path / "t.csv", n=80)
        tags = [f"tag{i}" for i in range(40)]  # one word per row: some rows land in validation
        with csv.open("a", encoding="utf-8") as f:
            f.writelines(
                f"{tag} great fun,pos\n" if i % 2 else f"{tag} awful dull,neg\n" for i, tag in enumerate(tags)
            )
        events = _train(svc, csv, test_path=write_toy_csv(tmp_path / "test.csv", n=20, seed=1),
                        overrides={"train__refit": True, "train__patience": 1})  # fmt: skip
        last = events[-1]
        result = last.progress.result
        assert last.run.status == "completed" and result.refit is not None
        phases = [e.progress.phase for e in events if e.progress.kind == "epoch"]
        assert phases == ["train"] * result.epochs_run + ["refit"] * result.best_epoch
        assert result.refit == {**result.refit, "rows": 120, "epochs": result.best_epoch}
        detail = svc.run(last.run_id)
        assert detail.metrics["refit"]["rows"] == 120 and "history" not in detail.metrics["refit"]
        assert [p.epoch for p in detail.curve if p.kind == "epoch"] == list(range(1, result.epochs_run + 1))
        assert detail.summary.val_accuracy == result.val["accuracy"]  # the first, validated pass's
        assert detail.summary.test_accuracy == result.test["accuracy"]  # the kept model's
        loaded = svc.load(last.run_id)
        assert set(tags) <= set(loaded.encoder.tokenizer.get_vocab())  # every row's words
        assert loaded.config.model.vocab_size == loaded.encoder.vocab_size
        assert svc.predict(last.run_id, ["great wonderful fun film"])[0].label == "pos"
        bundle = svc.export(last.run_id, tmp_path / "refit.zip")  # the refit travels with the run
        with zipfile.ZipFile(bundle) as zf:
            card = next(zf.read(n).decode() for n in zf.namelist() if n.endswith(".md"))
        assert f"refit on all 120 training rows for {result.best_epoch} epochs" in card
        elsewhere = _service(tmp_path / "elsewhere")
        try:
            imported = elsewhere.run(elsewhere.import_bundle(bundle).id)
            assert imported.metrics["refit"] == detail.metrics["refit"]
        finally:
            elsewhere.shutdown()
        # a separate validation file is the user's hold-out: it stays out, nothing is refit
        kept = _train(svc, csv, val_path=write_toy_csv(tmp_path / "val.csv", n=20, seed=2),
                      overrides={"train__refit": True})  # fmt: skip
        assert kept[-1].progress.result.refit is None
        assert {e.progress.phase for e in kept} == {"train"}
        plain = _train(svc, csv)  # no refit: the validation rows' words stay unknown
        assert not set(tags) <= set(svc.load(plain[-1].run_id).encoder.tokenizer.get_vocab())
    finally:
        svc.shutdown()


def test_cancelling_during_the_refit_cancels_the_run(tmp_path):
    svc = _service(tmp_path / "home")
    try:
        seen: list[TrainEvent] = []
        events = svc.train(write_toy_csv(tmp_path / "t.csv", n=80), preset_name="fast",
                           overrides={"train__epochs": 2, "train__refit": True},
                           should_stop=lambda: any(e.progress.phase == "refit" for e in seen))  # fmt: skip
        for event in events:
            seen.append(event)
        assert seen[-1].progress.kind == "cancelled" and seen[-1].progress.phase == "refit"
        run = svc.run(seen[-1].run_id).summary
        assert (run.status, run.model_dir, run.epochs_run) == ("cancelled", None, 2)
    finally:
        svc.shutdown()


def test_bad_input_is_refused_before_a_run_is_recorded(tmp_path):
    svc = _service(tmp_path / "home")
    try:
        (tmp_path / "empty.csv").write_text("")
        with pytest.raises(ValueError, match="empty.csv is empty"):
            _train(svc, tmp_path / "empty.csv")
        with pytest.raises(ValueError, match="unknown preset"):
            svc.prepare(write_toy_csv(tmp_path / "t.csv"), preset_name="huge")
        assert svc.runs() == []
    finally:
        svc.shutdown()


def test_a_run_whose_files_vanished_gives_a_clear_error(tmp_path):
    svc = _service(tmp_path / "home")
    try:
        events = _train(svc, write_toy_csv(tmp_path / "t.csv", n=40), overrides={"train__epochs": 1})
        shutil.rmtree(events[-1].run.model_dir)
        again = _service(tmp_path / "home")  # the training service keeps its model in memory
        try:
            with pytest.raises(ServiceError, match="has no config.json.*lstm-demo doctor"):
                again.predict(events[-1].run_id, "great")
        finally:
            again.close()
    finally:
        svc.shutdown()


def test_delete_removes_the_directory_and_the_row(tmp_path):
    svc = _service(tmp_path / "home")
    try:
        events = _train(svc, write_toy_csv(tmp_path / "t.csv", n=40), overrides={"train__epochs": 1})
        run_id = events[-1].run_id
        model_dir = Path(events[-1].run.model_dir)
        assert model_dir.is_dir() and svc.predict(run_id, "great")  # loads (and caches) the model
        assert svc.delete(run_id).id == run_id
        assert not model_dir.exists() and svc.runs() == []
        with pytest.raises(ServiceError):
            svc.run(run_id)
        with pytest.raises(ServiceError):
            svc.predict(run_id, "great")  # not answered from the cache
    finally:
        svc.shutdown()


# ------------------------------------------------------------------ inspecting an upload


@pytest.fixture
def svc(tmp_path):
    s = _service(tmp_path / "home")
    yield s
    s.shutdown()


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_inspect_guesses_columns_counts_labels_and_names_an_unnamed_index(svc, tmp_path):
    rows = [",text,label"] + [
        f"{i},{'great fun' if i % 2 else 'dull plot'} number {i},{LABELS[i % 2]}" for i in range(20)
    ]
    seen = svc.inspect(_write(tmp_path / "indexed.csv", rows))
    assert seen.columns == ("(unnamed 1)", "text", "label") and seen.source == "indexed.csv"
    assert (seen.text_column, seen.label_column) == ("text", "label")
    assert seen.label_counts == {"neg": 10, "pos": 10} and seen.rows == 20 and seen.warnings == ()
    assert len(seen.preview) == 8 and seen.preview[0][0] == "0"
    # the index column can still be chosen by its shown name
    assert svc.inspect(tmp_path / "indexed.csv", "text", "(unnamed 1)").label_counts["0"] == 1


@pytest.mark.parametrize(
    ("labels", "warns"),
    [
        ([str(i * 7) for i in range(40)], "different numbers"),  # a score or an id, not a class
        (["a", "b"] * 19 + ["c", "d"], "2 classes have a single example"),
        ([f"label {i}" for i in range(60)], "60 different labels in 60 rows"),
        (["a"] * 40, "only one label ('a')"),
        (["a", "b"] * 20, None),
    ],
)
def test_inspect_warns_about_a_label_column_when_it_is_chosen(svc, tmp_path, labels, warns):
    path = _write(tmp_path / "t.csv", ["text,score"] + [f"text number {i},{y}" for i, y in enumerate(labels)])
    seen = svc.inspect(path, "text", "score")
    if warns is None:
        assert seen.warnings == ()
    else:
        assert any(warns in w for w in seen.warnings), seen.warnings


def test_a_failed_inspect_raises_so_the_old_preview_is_cleared(svc, tmp_path):
    (tmp_path / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(ValueError, match="PNG image"):
        svc.inspect(tmp_path / "image.csv")
    with pytest.raises(ServiceError, match="must differ"):
        svc.inspect(write_toy_csv(tmp_path / "t.csv"), "text", "text")


def test_the_file_is_parsed_once_from_upload_to_queued_run(svc, tmp_path, monkeypatch):
    from lstm_demo import data, service

    parses, devices, writes = [], [], []
    monkeypatch.setattr(data, "parse", _counting(data.parse, parses))
    monkeypatch.setattr(service, "resolve_device", _counting(service.resolve_device, devices))
    monkeypatch.setattr(svc.store, "finish_run", _counting(svc.store.finish_run, writes))
    path = write_toy_csv(tmp_path / "t.csv", n=40)
    svc.inspect(path)  # the upload
    svc.inspect(path, "text", "label")  # a column chosen
    prepared = svc.prepare(path, text_column="text", label_column="label", preset_name="fast")
    assert len(parses) == 1 and len(devices) == 1 and writes == []
    assert prepared.device == "cpu" and svc.run(prepared.run_id).config["labels"] == list(LABELS)
    path.write_text(path.read_text() + "one more awful row,neg\n")  # a new version is read again
    assert svc.inspect(path).rows == 41 and len(parses) == 2


def _counting(fn, calls):
    def wrapper(*args, **kwargs):
        calls.append(args)
        return fn(*args, **kwargs)

    return wrapper


# ------------------------------------------------------------------ limits at the door


def _limited(tmp_path, **env):
    return Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home"), **env}))


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"model__hidden_size": 1024}, None),
        ({"model__hidden_size": 1025}, "over the limit"),
        ({"model__hidden_size": -1}, "hidden"),
        ({"model__hidden_size": 10**12}, "over the limit"),
        ({"model__hidden_size": "big"}, "hidden"),
        ({"model__embedding_dim": 1025}, "over the limit"),
        ({"train__epochs": 501}, "over the limit"),
        ({"train__batch_size": 4097}, "over the limit"),
        ({"train__lr": float("nan")}, "lr"),
        ({"train__lr": float("inf")}, "lr"),
        ({"preprocess__max_length": 1025}, "over the limit"),
        ({"tokenizer__vocab_size": 200_001}, "over the limit"),
        ({"model__num_layers": 9}, "over the limit"),
        ({"no__such": 1}, "unknown configuration section 'no'"),
    ],
)
def test_prepare_checks_every_size_before_reading_the_table(tmp_path, monkeypatch, overrides, refused):
    from lstm_demo import data

    svc = _limited(tmp_path)
    parses = []
    monkeypatch.setattr(data, "parse", _counting(data.parse, parses))
    try:
        path = write_toy_csv(tmp_path / "t.csv", n=40)
        if refused is None:
            svc.prepare(path, preset_name="fast", overrides=overrides)
            return
        with pytest.raises(ValueError, match=refused):
            svc.prepare(path, preset_name="fast", overrides=overrides)
        assert parses == [] and svc.runs() == []
    finally:
        svc.shutdown()


def test_prepare_refuses_more_classes_than_the_limit(tmp_path):
    svc = _limited(tmp_path, LSTM_DEMO_MAX_CLASSES="2")
    try:
        three = _write(tmp_path / "t.csv", ["text,label"] + [f"text {i},{'abc'[i % 3]}" for i in range(30)])
        with pytest.raises(
            ValueError, match="number of classes .* 3, over the limit of 2.*LSTM_DEMO_MAX_CLASSES"
        ):
            svc.prepare(three, preset_name="fast")
        assert svc.prepare(write_toy_csv(tmp_path / "two.csv", n=20), preset_name="fast")
    finally:
        svc.shutdown()


def test_prepare_refuses_a_table_wider_than_the_limit(tmp_path):
    svc = _limited(tmp_path, LSTM_DEMO_MAX_COLUMNS="3")
    try:
        path = _write(tmp_path / "wide.csv", ["a,b,text,label", "1,2,fine film,pos", "3,4,dull film,neg"])
        with pytest.raises(ValueError, match="4 columns, over the limit of 3"):
            svc.inspect(path)
    finally:
        svc.shutdown()


@pytest.mark.parametrize(
    ("texts", "refused"),
    [
        (["x" * 20_000], None),
        (["x" * 20_001], "the text \\(characters\\) is 20001, over the limit"),
        (["fine", "y" * 20_001], "text 2 \\(characters\\)"),
        (["fine", None], "text 2 is a NoneType"),
        (["fine", 3], "text 2 is a int"),
        ([" "], "empty"),
    ],
)
def test_predict_checks_each_text_without_echoing_it(trained, texts, refused):
    svc, events, _ = trained
    run_id = events[-1].run_id
    if refused is None:
        assert len(svc.predict(run_id, texts)) == len(texts)
        return
    with pytest.raises(ValueError, match=refused) as error:
        svc.predict(run_id, texts)
    assert "xxxx" not in str(error.value) and "yyyy" not in str(error.value)


def test_batch_prediction_rows_csv_and_row_limit(trained, tmp_path):
    svc, events, _ = trained
    run_id = events[-1].run_id
    path = write_toy_csv(tmp_path / "batch.csv", n=10, seed=3)
    result = svc.predict_table(run_id, path)
    assert result.columns == ("text", "label", "predicted", "confidence") and len(result.rows) == 10
    assert result.path.is_file() and result.path.parent.parent == svc.scratch_dir().parent
    header = result.path.read_text(encoding="utf-8").splitlines()[0]
    assert header == "text,label,predicted,p(neg),p(pos)"
    assert all(0.5 <= row[3] <= 1.0 and row[2] in LABELS for row in result.rows)
    few = _limited(tmp_path, LSTM_DEMO_MAX_BATCH_ROWS="9")
    try:  # refused before any model is looked up or run
        with pytest.raises(LimitError, match="number of texts is 10, over the limit of 9"):
            few.predict_table(run_id, path)
    finally:
        few.shutdown()


def test_mistakes_are_held_out_texts_the_model_gets_wrong(tmp_path):
    svc = _service(tmp_path / "home")
    try:
        # labels that are half noise: the model cannot get every held-out text right
        rows = [
            (text, LABELS[(i // 3) % 2]) for i, (text, _) in enumerate(__import__("helpers").toy_rows(60))
        ]
        path = tmp_path / "noisy.csv"
        path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
        prepared = svc.prepare(path, preset_name="fast", overrides={"train__epochs": 1})
        job = svc.submit(prepared)
        list(svc.follow(job.run_id, interval=0.05))
        wrong = svc.mistakes(job.run_id, n=5)
        texts, truth = prepared.held_out(1000)
        assert 0 < len(wrong) <= 5 and all(m.text in texts and m.truth != m.predicted for m in wrong)
        assert [m.confidence for m in wrong] == sorted((m.confidence for m in wrong), reverse=True)
    finally:
        svc.shutdown()


def test_delete_refuses_a_queued_or_running_run(tmp_path):
    svc = _service(tmp_path / "home")
    try:
        prepared = svc.prepare(write_toy_csv(tmp_path / "t.csv", n=40), preset_name="fast")
        with pytest.raises(ServiceError, match="is queued: cancel it before deleting it"):
            svc.delete(prepared.run_id)
        assert [r.id for r in svc.runs()] == [prepared.run_id]
    finally:
        svc.shutdown()


# ------------------------------------------------------------------ what callers see


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ServiceError("run abc is running"), "run abc is running"),
        (ValueError("/home/someone/.lstm-demo/runs/abc/config.json is missing"), "config.json is missing"),
        (KeyError("labels"), "something went wrong \\(error id [0-9a-f]{8}\\): see the server log"),
        (RuntimeError("CUDA error at /opt/torch/x.cpp"), "something went wrong \\(error id"),
    ],
)
def test_callers_see_user_errors_and_an_error_id_for_anything_else(error, shown, caplog):
    from lstm_demo.service import describe_error

    message = describe_error(error)
    assert __import__("re").match(shown, message), message
    assert "/home" not in message and "/opt" not in message
    if "error id" in message:
        assert message.split("error id ")[1][:8] in caplog.text  # the log has the id and the traceback
