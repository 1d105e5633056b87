"""The app's named endpoints, through a real server on loopback driven by `gradio_client`.

One server for the module (a temporary LSTM_DEMO_HOME, CPU), one model trained through the `train`
endpoint and shared by the tests after it. Bad uploads must come back as messages, and the server
must go on answering afterwards.
"""

from __future__ import annotations

import csv
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import THREAD, write_toy_csv

from lstm_demo.config import AppSettings
from lstm_demo.service import Service
from lstm_demo.ui import build_app, launch_options

ENDPOINTS = {"train", "examples", "train_example", "train_status", "cancel", "predict", "predict_batch", "explain",
             "gates", "decision_path", "runs", "run", "delete", "export", "import_bundle", "add_vectors",
             "vectors"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("home")
    settings = AppSettings.from_env({"LSTM_DEMO_HOME": str(home), "LSTM_DEMO_DEVICE": "cpu", **THREAD})
    service = Service(settings)
    demo = build_app(service)
    _, url, _ = demo.launch(
        prevent_thread_lock=True, quiet=True, **launch_options(settings, "127.0.0.1", free_port())
    )
    yield {"url": url, "service": service, "data": tmp_path_factory.mktemp("data")}
    demo.close()
    service.shutdown()


@pytest.fixture(scope="module")
def client(server: dict[str, Any]) -> Client:
    return Client(server["url"], verbose=False, download_files=str(server["data"] / "downloads"))


def train(client: Client, path: Path, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    args = {"text_column": "", "label_column": "", "preset": "fast", "epochs": 2, "options": "", "name": "",
            "wait": True, **kwargs}  # fmt: skip
    job = client.submit(handle_file(str(path)), *args.values(), api_name="/train")
    final = job.result(timeout=120)
    return final, job.outputs()


@pytest.fixture(scope="module")
def trained(server: dict[str, Any], client: Client) -> dict[str, Any]:
    final, updates = train(client, write_toy_csv(server["data"] / "toy.csv", n=80), name="toy")
    return {"final": final, "updates": updates, "run_id": final["run_id"]}


def test_the_page_and_the_named_endpoints_answer(server: dict[str, Any], client: Client) -> None:
    page = httpx.get(server["url"], timeout=10)
    assert page.status_code == 200 and "LSTM demo" in page.text
    named = {
        name.strip("/") for name in client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    }
    assert named == ENDPOINTS  # the UI's own events stay private
    config = httpx.get(server["url"] + "config", timeout=10).json()
    elem_ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {
        "train-upload",
        "train-start",
        "predict-text",
        "explain-button",
        "gate-heatmaps",
        "runs-table",
    } <= elem_ids


def test_train_streams_progress_and_records_a_completed_run(trained: dict[str, Any], client: Client) -> None:
    final, updates = trained["final"], trained["updates"]
    assert final["status"] == "completed" and final["error"] is None
    assert final["run"]["val_accuracy"] is not None and final["run"]["preset"] == "fast"
    assert len(updates) >= 2 and updates[0]["status"] in ("queued", "running")  # it streamed
    assert final["progress"]["kind"] == "done" and final["progress"]["fraction"] == 1.0
    runs = {r["id"]: r for r in client.predict("", "", api_name="/runs")}
    assert runs[trained["run_id"]]["status"] == "completed" and runs[trained["run_id"]]["name"] == "toy"
    detail = client.predict(trained["run_id"], api_name="/run")
    assert detail["config"]["labels"] == ["neg", "pos"] and detail["curve"]


def test_predict_explain_gates_and_decision_path(trained: dict[str, Any], client: Client) -> None:
    run_id = trained["run_id"]
    p = client.predict("a great and wonderful film", run_id, api_name="/predict")
    assert p["label"] in ("neg", "pos") and sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert client.predict("a great and wonderful film", "", api_name="/predict") == p  # newest run by default

    e = client.predict(
        "the film was great but the plot dull", run_id, "ig, occlusion", "neg", 16, api_name="/explain"
    )
    assert list(e["attributions"]) == ["ig", "occlusion"] and e["target"] == "neg"
    assert len(e["attributions"]["ig"]["word_scores"]) == len(e["words"]) == 8
    assert e["attributions"]["ig"]["delta"] is not None

    g = client.predict("great film", run_id, api_name="/gates")
    assert g["encoder"] == "lstm" and g["tokens"] == ["great", "film"]
    states = g["layers"][0]["states"]
    assert set(states) == {"input", "forget", "candidate", "output", "cell", "hidden"}
    assert all(0.0 <= v <= 1.0 for row in states["forget"] for v in row)  # a sigmoid gate

    d = client.predict("great film", run_id, api_name="/decision_path")
    assert len(d["probabilities"]) == 2 and d["labels"] == ["neg", "pos"]


@pytest.mark.parametrize(
    ("name", "content", "columns", "says"),
    [
        ("empty.csv", b"", {}, "is empty"),
        ("header-only.csv", b"text,label\n", {}, "no data rows"),
        ("image.csv", b"\x89PNG\r\n\x1a\n" + bytes(64), {}, "PNG image"),
        ("workbook.csv", b"PK\x03\x04" + bytes(64), {}, "zip archive"),
        ("one-class.csv", b"text,label\ngood film,pos\nfine film,pos\n", {}, "only one class"),
        ("one-column.csv", b"text\ngood film\nbad film\n", {}, "single column"),
        ("toy.csv", None, {"text_column": "review"}, "no column 'review'"),
        ("toy.csv", None, {"text_column": "text", "label_column": "text"}, "both 'text'"),
        ("toy.csv", None, {"options": '{"model__hidden_size": 0}'}, "hidden_size must be at least 1"),
        ("toy.csv", None, {"options": "not json"}, "must be a JSON object"),
        ("toy.csv", None, {"preset": "huge"}, "unknown preset"),
    ],
)
def test_bad_uploads_get_a_message_and_the_server_keeps_serving(
    server: dict[str, Any], client: Client, trained: dict[str, Any], name: str, content: bytes | None,
    columns: dict[str, str], says: str,
) -> None:  # fmt: skip
    path = server["data"] / name
    if content is not None:
        path.write_bytes(content)
    before = len(client.predict("", "", api_name="/runs"))
    with pytest.raises(AppError, match=says) as refused:
        train(client, path, **columns)
    assert "Traceback" not in str(refused.value)
    assert len(client.predict("", "", api_name="/runs")) == before  # nothing half-made is left behind
    assert client.predict("great film", trained["run_id"], api_name="/predict")["label"] in ("neg", "pos")


@pytest.mark.parametrize(
    ("text", "run_id", "says"),
    [("", None, "empty"), ("great film", "nosuchrun", "nosuchrun"), ("great film", "", None)],
)
def test_predict_refuses_with_a_message(client: Client, trained: dict[str, Any], text: str, run_id: str | None,
                                        says: str | None) -> None:  # fmt: skip
    if says is None:  # the control: the same call with a good text and run answers
        assert client.predict(text, run_id or trained["run_id"], api_name="/predict")["text"] == text
        return
    with pytest.raises(AppError, match=says):
        client.predict(text, trained["run_id"] if run_id is None else run_id, api_name="/predict")


def test_batch_prediction_returns_a_csv_with_every_row(
    server: dict[str, Any], client: Client, trained: dict[str, Any]
) -> None:
    texts = server["data"] / "to-label.csv"
    with texts.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [["id", "text"], [1, "great film"], [2, "boring, dull plot"], [3, 'a "fun" film']]
        )
    out = client.predict(handle_file(str(texts)), trained["run_id"], "", api_name="/predict_batch")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["text"] for r in rows] == ["great film", "boring, dull plot", 'a "fun" film']
    assert all(r["predicted"] in ("neg", "pos") for r in rows)
    assert all(float(r["p(neg)"]) + float(r["p(pos)"]) == pytest.approx(1.0, abs=1e-4) for r in rows)


def test_export_then_import_predicts_the_same(client: Client, trained: dict[str, Any]) -> None:
    bundle = client.predict(trained["run_id"], api_name="/export")
    imported = client.predict(handle_file(bundle), api_name="/import_bundle")
    assert imported["status"] == "completed" and imported["id"] != trained["run_id"]
    a = client.predict("great film", trained["run_id"], api_name="/predict")["probabilities"]
    b = client.predict("great film", imported["id"], api_name="/predict")["probabilities"]
    assert b == pytest.approx(a, abs=1e-6)
    assert client.predict(imported["id"], api_name="/delete")["id"] == imported["id"]
    with pytest.raises(AppError, match=imported["id"]):
        client.predict("great film", imported["id"], api_name="/predict")


@pytest.mark.parametrize(
    ("endpoint", "args", "what"),
    [
        ("/train", (None, "", "", "fast", 2, "", "", True), "a CSV or TSV of texts and labels"),
        ("/predict_batch", (None, "", ""), "a CSV or TSV of texts"),
        ("/import_bundle", (None,), "a bundle"),
        ("/add_vectors", (None, None), "a vectors file"),
    ],
)
def test_a_file_endpoint_called_without_a_file_says_what_to_send(
    client: Client, endpoint: str, args: tuple, what: str
) -> None:
    with pytest.raises(AppError, match=f"no file was sent: send {what}"):
        client.predict(*args, api_name=endpoint)


def test_vectors_uploaded_through_the_api_start_a_run_trained_through_it(
    server: dict[str, Any], client: Client
) -> None:
    from helpers import toy_rows

    from lstm_demo.vectors import ppmi_svd, write_vectors

    texts = [text for text, _ in toy_rows(80)]
    made = write_vectors(ppmi_svd(texts, dim=8, min_count=1), server["data"] / "my vectors.txt")
    answer = client.predict(handle_file(str(made)), None, api_name="/add_vectors")
    assert answer == {"name": "my_vectors.txt", "dim": 8, "words": 24, "added": True}
    assert "my_vectors.txt" in client.predict(api_name="/vectors")
    with pytest.raises(AppError, match="expected 2"):  # a bad file is refused with its line, and not kept
        bad = server["data"] / "bad.txt"
        bad.write_text("the 0.1 0.2\ngood 1.0\n", encoding="utf-8")
        client.predict(handle_file(str(bad)), None, api_name="/add_vectors")
    assert "bad.txt" not in client.predict(api_name="/vectors")

    options = '{"train__vectors": "my_vectors.txt", "train__freeze_vectors": true}'
    final, _ = train(client, write_toy_csv(server["data"] / "with-vectors.csv", n=60), options=options)
    config = client.predict(final["run_id"], api_name="/run")["config"]
    assert config["train"]["vectors"] == "my_vectors.txt" and config["model"]["embedding_dim"] == 8
    assert config["train"]["freeze_vectors"] is True


def test_prediction_answers_while_a_training_runs_and_the_training_can_be_cancelled(
    server: dict[str, Any], client: Client, trained: dict[str, Any]
) -> None:
    # 4,000 rows: minutes of training, still running when the test asks and cancels
    big = write_toy_csv(server["data"] / "big.csv", n=4000, seed=1)
    queued = client.predict(handle_file(str(big)), "", "", "fast", 100, "", "long", False, api_name="/train")
    run_id = queued["run_id"]
    assert queued["status"] in ("queued", "running")
    job = server["service"].job(run_id)
    job.wait(0, timeout=30)  # the first report: it is training now
    for _ in range(3):
        assert client.predict("great film", trained["run_id"], api_name="/predict")["label"] in ("neg", "pos")
        assert client.predict(run_id, api_name="/train_status")["status"] == "running"
    client.predict(run_id, api_name="/cancel")
    for _ in job.follow(interval=0.05):
        pass
    assert client.predict(run_id, api_name="/train_status")["status"] == "cancelled"
    stored = {r["id"]: r["status"] for r in client.predict("cancelled", "", api_name="/runs")}
    assert stored[run_id] == "cancelled"


def test_an_example_trains_without_an_upload(client: Client) -> None:
    names = [e["name"] for e in client.predict(api_name="/examples")]
    assert "movie_reviews" in names and "long_range" in names
    final = client.predict("movie_reviews", "", 1, True, api_name="/train_example")
    assert final["status"] == "completed" and final["run"]["name"].startswith("example: ")
    labels = client.predict("not bad at all", final["run_id"], api_name="/predict")["probabilities"]
    assert sorted(labels) == ["negative", "neutral", "positive"]
    with pytest.raises(AppError, match="unknown example"):
        client.predict("nope", api_name="/train_example")


def test_two_people_training_at_once_each_get_their_own_model(server: dict[str, Any]) -> None:
    """Two sessions upload different tables at the same moment; the worker queues one behind the
    other and each run learns its own table's labels."""
    first = write_toy_csv(server["data"] / "mine.csv", n=40, seed=2)
    second = server["data"] / "theirs.csv"
    second.write_text(first.read_text().replace(",neg", ",sad").replace(",pos", ",happy"))
    results: dict[str, dict[str, Any]] = {}

    def person(name: str, path: Path) -> None:
        own = Client(server["url"], verbose=False)
        results[name] = train(own, path, epochs=1, name=name)[0]

    threads = [threading.Thread(target=person, args=args) for args in (("me", first), ("them", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results["me"]["status"] == results["them"]["status"] == "completed"
    labels = {name: server["service"].run(r["run_id"]).config["labels"] for name, r in results.items()}
    assert labels == {"me": ["neg", "pos"], "them": ["happy", "sad"]}


# ------------------------------------------------------------------ limits and what callers see


SMALL = '{"model__hidden_size": 16}'  # within the lowered limits
TRAIN_REFUSED = [
    pytest.param({"options": '{"model__hidden_size": 17}'}, "over the limit of 16", id="hidden-just-over"),
    pytest.param({"options": '{"model__hidden_size": NaN}'}, "whole number", id="hidden-nan"),
    pytest.param({"options": '{"model__hidden_size": -1}'}, "at least 1", id="hidden-negative"),
    pytest.param({"options": '{"model__hidden_size": 1e300}'}, "whole number", id="hidden-huge"),
    pytest.param({"options": '{"model__hidden_size": "big"}'}, "whole number", id="hidden-string"),
    pytest.param({"options": '{"train__lr": Infinity}'}, "lr", id="lr-inf"),
    pytest.param({"options": "[16]"}, "JSON object", id="options-not-an-object"),
    pytest.param({"epochs": 4, "options": SMALL}, "over the limit of 3", id="epochs-just-over"),
    pytest.param({"epochs": -1, "options": SMALL}, "whole number of at least 0", id="epochs-negative"),
    pytest.param({"epochs": 2.5, "options": SMALL}, "whole number", id="epochs-fraction"),
    pytest.param({"preset": "auto", "options": '{"budget": "soon"}'}, "search budget", id="budget-words"),
    pytest.param(
        {"preset": "auto", "options": '{"budget": "25h"}'}, "over the limit of 86,400", id="budget-over"
    ),
]


def test_the_budget_option_is_the_auto_searchs_seconds() -> None:
    from lstm_demo.ui.api import budget_option

    assert budget_option({"budget": "10m", "train__seed": 3}) == {"train__seed": 3, "train__budget": 600.0}
    assert budget_option({"budget": 90}) == {"train__budget": 90.0}
    assert budget_option({"train__seed": 3}) == {"train__seed": 3}


@pytest.fixture
def small_limits(server: dict[str, Any]) -> Iterator[None]:
    """The server's limits lowered for one test, so 'just inside' is cheap to train."""
    service = server["service"]
    before = service.limits
    service.limits = replace(before, hidden_size=16, epochs=3, batch_rows=2, text_chars=50, ig_steps=20)
    yield
    service.limits = before


@pytest.mark.parametrize(("args", "says"), TRAIN_REFUSED)
def test_train_options_are_checked_before_anything_is_read(
    server: dict[str, Any], client: Client, small_limits: None, args: dict[str, Any], says: str
) -> None:
    before = len(client.predict("", "", api_name="/runs"))
    with pytest.raises(AppError, match=says):
        train(client, write_toy_csv(server["data"] / "limits.csv", n=20), **args)
    assert len(client.predict("", "", api_name="/runs")) == before


def test_train_options_just_inside_the_limits_are_taken(
    server: dict[str, Any], client: Client, small_limits: None
) -> None:
    final, _ = train(client, write_toy_csv(server["data"] / "inside.csv", n=20), epochs=1,
                     options=SMALL)  # fmt: skip
    assert final["status"] == "completed"
    assert server["service"].run(final["run_id"]).config["model"]["hidden_size"] == 16


@pytest.mark.parametrize(
    ("endpoint", "args", "says"),
    [
        ("/predict", ("x" * 50,), None),
        ("/predict", ("x" * 51,), "over the limit of 50"),
        ("/explain", ("great film", "{run}", "ig", "", 20), None),
        ("/explain", ("great film", "{run}", "ig", "", 21), "over the limit of 20"),
        ("/explain", ("great film", "{run}", "ig", "", 0), "at least 1"),
        ("/explain", ("great film", "{run}", "ig", "", "many"), "whole number"),
        ("/explain", ("great film", "{run}", "nosuch", "", 5), "unknown method"),
        ("/gates", ("y" * 51, "{run}"), "over the limit of 50"),
        ("/decision_path", ("z" * 51, "{run}"), "over the limit of 50"),
    ],
)
def test_texts_and_steps_are_checked_without_echoing_the_text(
    client: Client, trained: dict[str, Any], small_limits: None, endpoint: str, args: tuple, says: str | None
) -> None:
    args = tuple(a.format(run=trained["run_id"]) if isinstance(a, str) else a for a in args)
    if endpoint == "/predict":
        args = (*args, trained["run_id"])
    if says is None:
        assert client.predict(*args, api_name=endpoint)
        return
    with pytest.raises(AppError, match=says) as refused:
        client.predict(*args, api_name=endpoint)
    assert "xxxxx" not in str(refused.value) and "yyyyy" not in str(refused.value)


def test_batch_prediction_is_bounded_in_rows(
    server: dict[str, Any], client: Client, trained: dict[str, Any], small_limits: None
) -> None:
    path = write_toy_csv(server["data"] / "three.csv", n=3)
    with pytest.raises(AppError, match="number of texts is 3, over the limit of 2"):
        client.predict(handle_file(str(path)), trained["run_id"], "", api_name="/predict_batch")


def test_answers_hold_no_server_paths(
    client: Client, trained: dict[str, Any], server: dict[str, Any]
) -> None:
    home = str(server["service"].settings.home)
    answers = [client.predict(trained["run_id"], api_name="/run"), client.predict("", "", api_name="/runs"),
               client.predict(trained["run_id"], api_name="/train_status")]  # fmt: skip
    assert all("model_dir" not in str(a) and home not in str(a) for a in answers)


def test_an_unexpected_error_answers_an_error_id_not_its_text(
    client: Client, trained: dict[str, Any], server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("/srv/secret/path internal detail")

    monkeypatch.setattr(server["service"], "predict", broken)
    with pytest.raises(AppError, match=r"something went wrong \(error id [0-9a-f]{8}\)") as refused:
        client.predict("great film", trained["run_id"], api_name="/predict")
    assert "secret" not in str(refused.value) and "KeyError" not in str(refused.value)


def test_gradio_keeps_uploads_in_a_private_folder_unless_one_is_named(tmp_path, monkeypatch) -> None:
    import os
    import tempfile

    from lstm_demo.ui.app import private_gradio_cache

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "gradio").symlink_to(tmp_path)  # planted at Gradio's shared default
    with private_gradio_cache() as folder:
        assert os.environ["GRADIO_TEMP_DIR"] == str(folder) and folder.parent == tmp_path
        assert (folder.stat().st_mode & 0o777) == 0o700 and not folder.is_symlink()
    assert not folder.exists() and "GRADIO_TEMP_DIR" not in os.environ
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "mine"))
    with private_gradio_cache() as folder:
        assert folder is None and os.environ["GRADIO_TEMP_DIR"] == str(tmp_path / "mine")


def test_the_endpoints_are_plain_functions_callable_without_a_server(tmp_path: Path) -> None:
    from lstm_demo.service import ServiceError
    from lstm_demo.ui.api import Endpoints, parse_methods

    service = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path), "LSTM_DEMO_DEVICE": "cpu"}))
    try:
        endpoints = Endpoints(service)
        assert "movie_reviews" in [e["name"] for e in endpoints.examples()]
        assert parse_methods("gradshap; ig, ig") == ["gradient_shap", "ig"]
        with pytest.raises(ServiceError, match="epochs must be a whole number"):
            next(endpoints.train({"path": str(write_toy_csv(tmp_path / "t.csv"))}, epochs=float("nan")))
        with pytest.raises(ServiceError, match="unknown method nope"):
            endpoints.explain("great film", "anyrun", "ig, nope")
        assert endpoints.runs() == []
    finally:
        service.shutdown()
