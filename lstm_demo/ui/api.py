"""The named HTTP endpoints (`/gradio_api/call/<name>`, or `gradio_client`'s `api_name="/<name>"`).

Plain strings, numbers and files in; JSON out. Each function converts its arguments, calls the
service (or the training worker) and returns plain data; a problem the user can fix comes back as
an error whose message says what to do. An empty `run_id` means the newest completed run.

No `from __future__ import annotations` here: Gradio reads these signatures' type hints at runtime
to describe the endpoints.
"""

import csv
import functools
import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..examples import EXAMPLES, example_path
from ..names import METHODS, method_key
from ..service import Service
from ..worker import Job, TrainingWorker
from .common import plain, resolve_run, scratch_dir, user_message

BATCH = 256  # texts per forward pass in batch prediction


def _user_errors(fn: Callable) -> Callable:
    """Turn a problem into a message for the caller (gr.Error) instead of a 500 with a traceback."""

    def refuse(e: Exception) -> gr.Error:
        return gr.Error(user_message(e), print_exception=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:
                raise refuse(e) from None

        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:
            raise refuse(e) from None

    return call


def parse_methods(methods: str | Sequence[str]) -> list[str]:
    """'ig, occlusion' or ['ig', 'occlusion'] -> ['ig', 'occlusion']; unknown names are refused."""
    names = methods.replace(";", ",").split(",") if isinstance(methods, str) else list(methods)
    chosen = [method_key(n) for n in names if n and n.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(chosen)) or ["ig"]


def parse_options(options: str) -> dict[str, Any]:
    """Hyperparameter overrides as JSON, e.g. '{"model__hidden_size": 64, "train__seed": 3}'."""
    if not options or not options.strip():
        return {}
    try:
        value = json.loads(options)
    except json.JSONDecodeError as e:
        raise ValueError(f'options must be a JSON object such as {{"train__epochs": 3}}: {e}') from None
    if not isinstance(value, dict):
        raise ValueError('options must be a JSON object such as {"train__epochs": 3}')
    return value


def job_status(job: Job, worker: TrainingWorker) -> dict[str, Any]:
    """A job as JSON: status, queue position, the latest progress report, and the run when it ended."""
    p = job.progress
    progress = None
    if p is not None:
        progress = {
            "kind": p.kind,
            "phase": p.phase,
            "epoch": p.epoch,
            "epochs": p.epochs,
            "step": p.step,
            "steps_per_epoch": p.steps_per_epoch,
            "fraction": p.fraction,
            "elapsed": p.elapsed,
            "eta_seconds": p.eta_seconds,
            "train_loss": p.train_loss,
            "val_loss": p.val_loss,
            "val_accuracy": p.val_accuracy,
            "val_macro_f1": p.val_macro_f1,
        }
    return {
        "run_id": job.run_id,
        "status": job.status,
        "device": job.device,
        "position": worker.position(job.run_id),
        "progress": progress,
        "error": job.error,
        "run": plain(job.run) if job.run is not None else None,
    }


def write_predictions(path: Path, table: Any, predictions: Sequence[Any], labels: Sequence[str]) -> Path:
    """A CSV of every text with its predicted label and one probability column per class."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        has_truth = bool(table.labels)
        writer.writerow(
            ["text", *(["label"] if has_truth else []), "predicted", *(f"p({label})" for label in labels)]
        )
        for i, p in enumerate(predictions):
            truth = [table.labels[i]] if has_truth else []
            writer.writerow([p.text, *truth, p.label, *(f"{p.probabilities[label]:.6f}" for label in labels)])
    return path


def predict_table(
    service: Service, run_id: str, path: str, text_column: str | None
) -> tuple[Path, Any, list]:
    """Predict every text of an uploaded table; returns the result CSV's path, the table, the predictions."""
    table = service.predict_file(run_id, path, text_column or None)
    predictions = []
    for start in range(0, len(table.texts), BATCH):
        predictions += service.predict(run_id, list(table.texts[start : start + BATCH]))
    labels = list(predictions[0].probabilities) if predictions else []
    out = scratch_dir() / f"predictions-{Path(table.source).stem}.csv"
    return write_predictions(out, table, predictions, labels), table, predictions


def register(service: Service, worker: TrainingWorker) -> None:
    """Add the API endpoints to the Blocks being built."""

    def train(
        file: gr.FileData,
        text_column: str = "",
        label_column: str = "",
        preset: str = "fast",
        epochs: int = 0,
        options: str = "",
        name: str = "",
        wait: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Train a model on a CSV/TSV of texts and labels; streams the job's status while it trains
        (`wait`), else answers once it is queued. `epochs` 0 keeps the preset's; `options` is JSON."""
        overrides = parse_options(options)
        if epochs:
            overrides["train__epochs"] = int(epochs)
        prepared = service.prepare(
            file["path"],
            text_column=text_column or None,
            label_column=label_column or None,
            preset_name=preset or "fast",
            overrides=overrides,
            name=name or None,
        )
        yield from follow(worker.submit(prepared), wait)

    def examples() -> list[dict[str, Any]]:
        """The example datasets `train_example` can train on: name, title, description, preset."""
        return [
            {"name": e.name, "title": e.title, "description": e.description, "preset": e.preset,
             "overrides": dict(e.overrides)}
            for e in EXAMPLES.values()
        ]  # fmt: skip

    def train_example(
        name: str, encoder: str = "", epochs: int = 0, wait: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Train on an example dataset (see `examples`) with its preset; `encoder` lstm, gru or rnn."""
        if name not in EXAMPLES:
            raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
        example = EXAMPLES[name]
        overrides = dict(example.overrides)
        if encoder:
            overrides["model__encoder"] = encoder
        if epochs:
            overrides["train__epochs"] = int(epochs)
        path = example_path(name, service.settings.home / "examples")
        title = example.title + (f" ({encoder})" if encoder else "")
        prepared = service.prepare(
            path, preset_name=example.preset, overrides=overrides, name=f"example: {title}"
        )
        yield from follow(worker.submit(prepared), wait)

    def follow(job: Job, wait: bool) -> Iterator[dict[str, Any]]:
        if not wait:
            yield job_status(job, worker)
            return
        for _ in job.follow(interval=1.0):
            yield job_status(job, worker)
        if job.status == "failed":
            raise ValueError(f"run {job.run_id} failed: {job.error}")

    def train_status(run_id: str) -> dict[str, Any]:
        """The status and progress of a training job (or of any stored run)."""
        run_id = service.resolve(run_id)
        job = worker.get(run_id)
        if job is not None:
            return job_status(job, worker)
        summary = service.run(run_id).summary
        return {"run_id": run_id, "status": summary.status, "error": summary.error, "run": plain(summary)}

    def cancel(run_id: str) -> dict[str, Any]:
        """Cancel a queued run, or ask a running one to stop after its current step."""
        run_id = service.resolve(run_id)
        if not worker.cancel(run_id):
            raise ValueError(f"run {run_id} is not queued or running in this app")
        return job_status(worker.get(run_id), worker)

    def predict(text: str, run_id: str = "") -> dict[str, Any]:
        """The predicted label and every class's probability for one text."""
        prediction = service.predict(run_id or resolve_run(service, ""), [text])[0]
        return prediction.to_dict()

    def predict_batch(file: gr.FileData, run_id: str = "", text_column: str = "") -> gr.FileData:
        """Predict every row of a CSV/TSV; answers a CSV with the predicted label and probabilities."""
        out, _, _ = predict_table(service, resolve_run(service, run_id), file["path"], text_column)
        return gr.FileData(path=str(out), orig_name=out.name)

    def explain(
        text: str, run_id: str = "", methods: str = "ig", target: str = "", steps: int = 50
    ) -> dict[str, Any]:
        """Word attributions by each method (comma-separated: ig, gradient_shap, occlusion, saliency,
        input_x_gradient) for the target class (default: the predicted one), with IG's delta."""
        e = service.explain(
            resolve_run(service, run_id),
            text,
            methods=parse_methods(methods),
            target=target or None,
            steps=int(steps),
        )
        return e.to_dict()

    def gates(text: str, run_id: str = "") -> dict[str, Any]:
        """Every gate, the cell and the hidden state per token, layer and direction."""
        return service.gates(resolve_run(service, run_id), text).to_dict()

    def decision_path(text: str, run_id: str = "") -> dict[str, Any]:
        """The class probabilities after each prefix of the text."""
        return service.decision_path(resolve_run(service, run_id), text).to_dict()

    def runs(status: str = "", search: str = "") -> list[dict[str, Any]]:
        """Stored runs, newest first, optionally filtered by status and a search string."""
        return [plain(r) for r in service.runs(status=status or None, search=search or None)]

    def run(run_id: str) -> dict[str, Any]:
        """One run: summary, configuration, final metrics, curve and dataset."""
        return plain(service.run(run_id))

    def delete(run_id: str) -> dict[str, Any]:
        """Delete a run with its metrics and model files (cancel a queued or running one first)."""
        run_id = service.resolve(run_id)
        job = worker.get(run_id)
        if job is not None and not job.finished:
            raise ValueError(f"run {run_id} is {job.status}: cancel it before deleting it")
        return plain(service.delete(run_id))

    def export(run_id: str) -> gr.FileData:
        """A zip bundle of the run (config, tokenizer, safetensors weights, metrics, model card)."""
        run_id = service.resolve(run_id)
        out = scratch_dir() / f"lstm-demo-{run_id}.zip"
        return gr.FileData(path=str(service.export(run_id, out)), orig_name=out.name)

    def import_bundle(file: gr.FileData) -> dict[str, Any]:
        """Import a bundle made by `export`; it becomes a new completed run."""
        return plain(service.import_bundle(file["path"]))

    for fn, limit, group in (
        (train, None, None),
        (examples, 4, None),
        (train_example, None, None),
        (train_status, 8, None),
        (cancel, 8, None),
        (predict, 4, "predict"),
        (predict_batch, 1, "batch"),
        (explain, 2, "explain"),
        (gates, 2, "explain"),
        (decision_path, 2, "explain"),
        (runs, 4, None),
        (run, 4, None),
        (delete, 1, "files"),
        (export, 1, "files"),
        (import_bundle, 1, "files"),
    ):
        gr.api(_user_errors(fn), api_name=fn.__name__, concurrency_limit=limit, concurrency_id=group)
