"""The named HTTP endpoints (`/gradio_api/call/<name>`, or `gradio_client`'s `api_name="/<name>"`).

Plain strings, numbers and files in; JSON out. Each function converts its arguments, calls the
service and returns plain data; a problem the user can fix comes back as an error whose message says
what to do, anything else as an error id (the traceback is in the server log). No server path is
answered. An empty `run_id` means the newest completed run.

No `from __future__ import annotations` here: Gradio reads these signatures' type hints at runtime
to describe the endpoints.
"""

import functools
import inspect
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gradio as gr

from ..config import parse_budget
from ..names import METHODS, method_key
from ..service import Job, Service, ServiceError, describe_error
from .common import plain, resolve_run

HIDDEN_KEYS = frozenset({"model_dir"})  # server paths, never answered


def _user_errors(fn: Callable) -> Callable:
    """Turn a problem into a message for the caller (gr.Error) instead of a 500 with a traceback."""

    def refuse(e: Exception) -> gr.Error:
        return gr.Error(describe_error(e), print_exception=False)

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


def _path(file: Any, what: str) -> str:
    """The server path of an uploaded file; a call that sent none is told what to send."""
    if not isinstance(file, dict) or not file.get("path"):
        raise ServiceError(f"no file was sent: send {what}")
    return file["path"]


def public(value: Any) -> Any:
    """`plain(value)` without the keys that hold server paths."""
    value = plain(value)
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if k not in HIDDEN_KEYS}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def parse_methods(methods: str | Sequence[str]) -> list[str]:
    """'ig, occlusion' or ['ig', 'occlusion'] -> ['ig', 'occlusion']; unknown names are refused."""
    if not isinstance(methods, str | list | tuple):
        raise ServiceError("methods must be a comma-separated list such as 'ig, occlusion'")
    names = methods.replace(";", ",").split(",") if isinstance(methods, str) else list(methods)
    chosen = [method_key(str(n)) for n in names if n and str(n).strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ServiceError(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(chosen)) or ["ig"]


def parse_options(options: str) -> dict[str, Any]:
    """Hyperparameter overrides as JSON, e.g. '{"model__hidden_size": 64, "train__seed": 3}'."""
    if not options or not str(options).strip():
        return {}
    try:
        value = json.loads(options)
    except (json.JSONDecodeError, TypeError) as e:
        raise ServiceError(f'options must be a JSON object such as {{"train__epochs": 3}}: {e}') from None
    if not isinstance(value, dict):
        raise ServiceError('options must be a JSON object such as {"train__epochs": 3}')
    return value


def budget_option(options: dict[str, Any]) -> dict[str, Any]:
    """The options with `budget` ("10m", "90s" or seconds: how long `auto` searches) as `train__budget`."""
    if "budget" not in options:
        return options
    rest = {k: v for k, v in options.items() if k != "budget"}
    return {**rest, "train__budget": parse_budget(options["budget"])}


def whole(value: Any, name: str, *, low: int = 0) -> int:
    """A whole number from the caller (JSON may send 3.0, never NaN, inf, a string or a bool)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value != int(value) or value < low:
        raise ServiceError(f"{name} must be a whole number of at least {low}, got {value!r}")
    return int(value)


def epochs_override(epochs: Any) -> dict[str, int]:
    """`epochs` as an override; 0 keeps the preset's."""
    n = whole(epochs, "epochs")
    return {"train__epochs": n} if n else {}


def job_status(service: Service, job: Job) -> dict[str, Any]:
    """A job as JSON: status, queue position, the latest progress report, and the run when it ended."""
    p = job.progress
    progress = None
    if p is not None:
        keys = ("kind", "phase", "epoch", "epochs", "step", "steps_per_epoch", "fraction", "elapsed",
                "eta_seconds", "train_loss", "val_loss", "val_accuracy", "val_macro_f1")  # fmt: skip
        progress = {k: getattr(p, k) for k in keys}
    return {
        "run_id": job.run_id,
        "status": job.status,
        "device": job.device,
        "position": service.position(job.run_id),
        "progress": progress,
        "error": job.error,
        "run": public(job.run) if job.run is not None else None,
    }


def follow(service: Service, job: Job, wait: bool) -> Iterator[dict[str, Any]]:
    """The job's status once (`wait` false) or after every change until it ends."""
    if not wait:
        yield job_status(service, job)
        return
    for _ in service.follow(job.run_id, interval=1.0):
        yield job_status(service, job)
    if job.status == "failed":
        raise ServiceError(f"run {job.run_id} failed: {job.error}")


class Endpoints:
    """The endpoints over one service: plain values in and out, callable without a server."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def train(
        self,
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
        overrides = {**budget_option(parse_options(options)), **epochs_override(epochs)}
        prepared = self.service.prepare(
            _path(file, "a CSV or TSV of texts and labels"),
            text_column=text_column or None,
            label_column=label_column or None,
            preset_name=preset or "fast",
            overrides=overrides,
            name=name or None,
        )
        yield from follow(self.service, self.service.submit(prepared), wait)

    def examples(self) -> list[dict[str, Any]]:
        """The example datasets `train_example` can train on: name, title, description, preset."""
        return [
            {"name": e.name, "title": e.title, "description": e.description, "preset": e.preset,
             "overrides": dict(e.overrides)}
            for e in self.service.examples()
        ]  # fmt: skip

    def train_example(
        self, name: str, encoder: str = "", epochs: int = 0, wait: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Train on an example dataset (see `examples`) with its preset; `encoder` lstm, gru or rnn."""
        prepared = self.service.prepare_example(name, encoder or None, epochs_override(epochs))
        yield from follow(self.service, self.service.submit(prepared), wait)

    def train_status(self, run_id: str) -> dict[str, Any]:
        """The status and progress of a training job (or of any stored run)."""
        job = self.service.job(run_id)
        if job is not None:
            return job_status(self.service, job)
        summary = self.service.run(run_id).summary
        return {
            "run_id": summary.id,
            "status": summary.status,
            "error": summary.error,
            "run": public(summary),
        }

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a queued run, or ask a running one to stop after its current step."""
        if not self.service.cancel(run_id):
            raise ServiceError(f"run {run_id} is not queued or running in this app")
        return job_status(self.service, self.service.job(run_id))

    def predict(self, text: str, run_id: str = "") -> dict[str, Any]:
        """The predicted label and every class's probability for one text."""
        prediction = self.service.predict(resolve_run(self.service, run_id), [text])[0]
        return prediction.to_dict()

    def predict_batch(self, file: gr.FileData, run_id: str = "", text_column: str = "") -> gr.FileData:
        """Predict every row of a CSV/TSV; answers a CSV with the predicted label and probabilities."""
        result = self.service.predict_table(
            resolve_run(self.service, run_id), _path(file, "a CSV or TSV of texts"), text_column or None
        )
        return gr.FileData(path=str(result.path), orig_name=result.path.name)

    def explain(
        self, text: str, run_id: str = "", methods: str = "ig", target: str = "", steps: int = 50
    ) -> dict[str, Any]:
        """Word attributions by each method (comma-separated: ig, gradient_shap, occlusion, saliency,
        input_x_gradient) for the target class (default: the predicted one), with IG's delta."""
        steps, chosen, text = whole(steps, "steps", low=1), parse_methods(methods), self._text(text)
        self.service.limits.check("ig_steps", steps, "steps")  # every argument checked before any work
        e = self.service.explain(
            resolve_run(self.service, run_id), text, methods=chosen, target=target or None, steps=steps
        )
        return e.to_dict()

    def gates(self, text: str, run_id: str = "") -> dict[str, Any]:
        """Every gate, the cell and the hidden state per token, layer and direction."""
        return self.service.gates(resolve_run(self.service, run_id), self._text(text)).to_dict()

    def decision_path(self, text: str, run_id: str = "") -> dict[str, Any]:
        """The class probabilities after each prefix of the text."""
        return self.service.decision_path(resolve_run(self.service, run_id), self._text(text)).to_dict()

    def _text(self, text: Any) -> str:
        if not isinstance(text, str):
            raise ServiceError(f"the text must be a string, not a {type(text).__name__}")
        self.service.limits.check("text_chars", len(text), "the text (characters)")
        return text

    def runs(self, status: str = "", search: str = "") -> list[dict[str, Any]]:
        """Stored runs, newest first, optionally filtered by status and a search string."""
        return [public(r) for r in self.service.runs(status=status or None, search=search or None)]

    def run(self, run_id: str) -> dict[str, Any]:
        """One run: summary, configuration, final metrics, curve and dataset."""
        return public(self.service.run(run_id))

    def delete(self, run_id: str) -> dict[str, Any]:
        """Delete a run with its metrics and model files (cancel a queued or running one first)."""
        return public(self.service.delete(run_id))

    def export(self, run_id: str) -> gr.FileData:
        """A zip bundle of the run (config, tokenizer, safetensors weights, metrics, model card)."""
        run_id = self.service.resolve(run_id)
        out = self.service.scratch_dir() / f"lstm-demo-{run_id}.zip"
        return gr.FileData(path=str(self.service.export(run_id, out)), orig_name=out.name)

    def import_bundle(self, file: gr.FileData) -> dict[str, Any]:
        """Import a bundle made by `export`; it becomes a new completed run."""
        return public(self.service.import_bundle(_path(file, "a bundle made by export (.zip)")))

    def add_vectors(self, file: gr.FileData, vocab: gr.FileData | None = None) -> dict[str, Any]:
        """Put pretrained word vectors (word2vec/GloVe text, or a .npy with its `vocab` file) in the app's
        vectors folder, every row checked; a run names it by the answer's `name` in its options
        (`{"train__vectors": name}`, with `"train__freeze_vectors": true` to keep them as read)."""
        shelved = self.service.add_vectors(
            _path(file, "a vectors file (word2vec/GloVe text, or .npy)"),
            name=file.get("orig_name"),
            vocab=_path(vocab, "the .npy's vocabulary") if vocab else None,
        )
        return {"name": shelved.name, "dim": shelved.dim, "words": shelved.words, "added": shelved.added}

    def vectors(self) -> list[str]:
        """The vectors files in the app's vectors folder, the names a run's `train__vectors` may give."""
        return self.service.vectors_files()


def register(service: Service) -> None:
    """Add the API endpoints to the Blocks being built."""
    e = Endpoints(service)
    for fn, limit, group in (
        (e.train, None, None),
        (e.examples, 4, None),
        (e.train_example, None, None),
        (e.train_status, 8, None),
        (e.cancel, 8, None),
        (e.predict, 4, "predict"),
        (e.predict_batch, 1, "batch"),
        (e.explain, 2, "explain"),
        (e.gates, 2, "explain"),
        (e.decision_path, 2, "explain"),
        (e.runs, 4, None),
        (e.run, 4, None),
        (e.delete, 1, "files"),
        (e.export, 1, "files"),
        (e.import_bundle, 1, "files"),
        (e.add_vectors, 1, "vectors"),  # every row is read: one file at a time, as the Train tab's upload
        (e.vectors, 4, None),
    ):
        gr.api(_user_errors(fn), api_name=fn.__name__, concurrency_limit=limit, concurrency_id=group)
