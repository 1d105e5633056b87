"""The one API that the UI, the command line and the HTTP endpoints call.

It joins the parts that must not know each other: tables (`data`), the worker and the training
it runs (`execution`, or `job` in a process of its own), the run store and the model directories.
Every public method returns plain dataclasses or dicts; callers never import `worker`, `data` or
`store`.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import adapt, artifacts, data, gates, job, vectors, yardstick
from .config import AppSettings, LimitError, Limits, RunConfig, override, preset
from .data import DataError as DataError  # re-exported: the UI tells upload problems apart
from .data import Table, check_labels
from .devices import resolve_device
from .examples import EXAMPLES, Example, example_path
from .execution import TrainEvent as TrainEvent  # re-exported: what `execute` yields
from .execution import execute_run
from .files import Scratch, Uploads
from .names import ACTIVE_STATUSES, METHODS, method_key
from .store import MetricPoint, RunDetail, RunSummary, Store, StoreError
from .train import predict_logits, warm_up
from .trials import TrialReport as TrialReport  # re-exported: the UI shows an `auto` run's trials
from .trials import trial_of as trial_of
from .worker import Job, TrainingWorker

if TYPE_CHECKING:
    from . import explain

log = logging.getLogger(__name__)
baseline_verdict = yardstick.verdict  # the run summary's sentence on the baseline, for the UI

PREVIEW_ROWS = 8  # rows of an uploaded table shown before training
PREDICT_BATCH = 256  # texts per forward pass in batch prediction
HELD_OUT_TEXTS = 1000  # held-out texts kept per submitted run to find its mistakes
HELD_OUT_RUNS = 50  # runs whose held-out texts are kept


class ServiceError(ValueError):
    """A request that cannot be served, worded for the user (unknown run, run without a model...)."""


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    probabilities: dict[str, float]  # every class, in label order

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "probabilities": self.probabilities}


@dataclass(frozen=True)
class Inspection:
    """An uploaded table as the Train tab shows it, from one parse of the file."""

    source: str  # the file's name (never its server path)
    columns: tuple[str, ...]  # a blank header cell shows as "(unnamed N)"
    preview: tuple[tuple[str, ...], ...]  # the first rows, one cell per column
    text_column: str | None  # as chosen, else guessed
    label_column: str | None
    label_counts: dict[str, int]  # {} until both columns are known
    rows: int  # rows with a text and a label (all data rows until the columns are known)
    notes: tuple[str, ...]  # how the file was read and what was guessed
    warnings: tuple[str, ...]  # what looks wrong with the label column, said before Start


@dataclass(frozen=True)
class BatchPredictions:
    """Every row of a table with its prediction; the full CSV (one probability per class) is at `path`."""

    columns: tuple[str, ...]  # text, [label,] predicted, confidence
    rows: tuple[tuple[Any, ...], ...]
    path: Path  # in the service's private scratch directory, for download


@dataclass(frozen=True)
class Mistake:
    text: str
    truth: str
    predicted: str
    confidence: float  # the probability given to the wrong label


@dataclass
class PreparedRun:
    """A validated training request with its run row already `queued` in the store."""

    run_id: str
    config: RunConfig
    table: Table
    train_idx: list[int]
    val_idx: list[int]
    val_table: Table | None = None
    test_table: Table | None = None
    notes: list[str] = field(default_factory=list)
    device: str = "cpu"  # resolved once, when the run is prepared: the worker's lane and the training's
    search: dict[str, Any] | None = None  # an `auto` run's trials, once searched (`search.before_training`)

    @property
    def refits(self) -> bool:
        """Whether the kept model is refit on every training row: asked for, with a held-out share
        taken from the training table (a separate validation file stays out)."""
        return self.config.train.refit and self.val_table is None and bool(self.val_idx)

    def held_out(self, n: int) -> tuple[list[str], list[str]]:
        """Up to `n` texts and labels the kept model never trained on, to find its mistakes."""
        table = self.test_table or self.val_table
        if table is not None:
            return list(table.texts[:n]), list(table.labels[:n])
        if self.refits:  # the kept model was trained on the validation rows too
            return [], []
        idx = self.val_idx[:n]
        return [self.table.texts[i] for i in idx], [self.table.labels[i] for i in idx]


class Service:
    def __init__(self, settings: AppSettings | None = None, *, cache_size: int = 8):
        self.settings = settings or AppSettings.from_env()
        self.limits = self.settings.limits
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.db_url)
        # runs left `running` by a process that died are marked `interrupted`, nothing else changes
        self.interrupted = self.store.mark_interrupted()
        self._cache: OrderedDict[str, artifacts.LoadedModel] = OrderedDict()
        self._cache_size = cache_size
        self._baselines = yardstick.Column(lambda run_id: self.store.get_run(run_id).metrics)
        self._lock = threading.Lock()
        self._held_out: OrderedDict[str, tuple[list[str], list[str]]] = OrderedDict()
        self._uploads = Uploads(self.limits)
        self._scratch = Scratch()
        self._worker = TrainingWorker(
            self._train_submitted,
            cancel_queued=self._cancel_queued,
            device_of=lambda prepared: prepared.device,
            describe=describe_error,
            queue=job.shared_queue(self.store, self.settings),  # every replica's runs, in the store
        )

    def shutdown(self, *, timeout: float | None = 10.0) -> None:
        """Cancel queued runs, ask running ones to stop (recorded as cancelled), then close the store
        and remove the scratch directory."""
        self._worker.shutdown(cancel=True, timeout=timeout)
        self.store.close()
        self._scratch.close()

    close = shutdown  # the name `contextlib.closing` and older callers use

    def warm_up(self) -> None:
        """Pay PyTorch's one-off start-up costs now rather than in the first training (see `train.warm_up`)."""
        warm_up()

    # ------------------------------------------------------------------ tables

    def inspect(
        self, path: str | os.PathLike[str], text_col: str | None = None, label_col: str | None = None
    ) -> Inspection:
        """Preview, guessed columns, label distribution and label warnings of an uploaded table.

        Raises a ValueError (DataError, ServiceError, files.Busy) when the file cannot be read, so the
        caller clears the old preview.
        """
        parsed = self._uploads.parse(path)
        shown = data.preview(parsed, PREVIEW_ROWS)
        text, label = text_col or shown.text_column, label_col or shown.label_column
        if text is None or label is None:
            missing = "text" if text is None else "label"
            return Inspection(
                parsed.name, parsed.columns, shown.rows, text, label, {}, len(parsed.rows),
                (*shown.notes, f"choose the {missing} column"), (),
            )  # fmt: skip
        if text == label:
            raise ServiceError("the text and label columns must differ: choose two different columns")
        table = data.select(parsed, text, label, require_labels=False, min_classes=0)
        counts = table.label_counts()
        warnings = data.label_warnings(counts, int(self.limits.classes))
        return Inspection(
            parsed.name, parsed.columns, shown.rows, table.text_column, table.label_column, counts,
            len(table.texts), table.notes, tuple(warnings),
        )  # fmt: skip

    # ------------------------------------------------------------------ training

    def prepare(
        self,
        train_path: str | os.PathLike[str],
        *,
        test_path: str | os.PathLike[str] | None = None,
        val_path: str | os.PathLike[str] | None = None,
        text_column: str | None = None,
        label_column: str | None = None,
        preset_name: str = "default",
        overrides: dict[str, Any] | None = None,
        name: str | None = None,
        local: bool = False,
    ) -> PreparedRun:
        """Check the request against the limits, read and validate the data, then record a `queued`
        run. Raises DataError/LimitError/ServiceError before anything is recorded. `local`: the
        machine's own user asks (the command line), whose `train__vectors` may name any file."""
        cfg = _config(preset_name, overrides or {})
        self.limits.check_config(cfg)  # sizes first: nothing is read for a request that is too big
        cfg = vectors.configure(cfg, self.limits, shelf=self.settings.vectors_dir, anywhere=local)
        if cfg.train.device == "auto" and self.settings.device != "auto":
            cfg = override(cfg, train__device=self.settings.device)
        try:  # once per run, and a missing device fails now rather than in the worker
            device = str(resolve_device(cfg.train.device))
        except (ValueError, RuntimeError) as e:
            raise ServiceError(str(e)) from None
        device = "cuda:0" if device == "cuda" else device  # `auto` and `cuda:0` share one lane
        _check_processes(cfg.train.nproc, device)
        if cfg.preset == "auto" and cfg.train.nproc > 1:  # the search trains its trials in one process
            raise ServiceError(
                "auto searches in one process: set train.nproc to 1 (or train its choice after)"
            )
        table = data.select(self._uploads.parse(train_path), text_column, label_column)
        labels = table.classes
        self.limits.check("classes", len(labels), f"the number of classes in {table.source}")
        val_table = None
        if val_path is not None:
            val_table = self._labelled(val_path, table, labels)
            train_idx, val_idx = list(range(len(table.texts))), []
        else:
            train_idx, val_idx = table.split(cfg.train.val_fraction, cfg.train.seed)
        test_table = self._labelled(test_path, table, labels) if test_path is not None else None
        # defaults that read the training rows (never the test file); a note per change
        cfg, adapted = adapt.for_run(
            cfg, [table.texts[i] for i in train_idx], [table.labels[i] for i in train_idx], self.limits
        )
        cfg = override(
            cfg,
            labels=labels,
            text_column=table.text_column,
            label_column=table.label_column or "label",
            model__num_classes=len(labels),
        )
        self.limits.check_config(cfg)  # again with the classes: the output layer's size is known now
        dataset = self.store.add_dataset(
            name=table.source,
            fingerprint=table.fingerprint,
            rows=len(table.texts),
            text_column=table.text_column,
            label_column=table.label_column or "",
            label_counts=table.label_counts(),
        )
        run = self.store.create_run(
            config=cfg.to_stored_dict(), preset=cfg.preset, dataset_id=dataset.id, name=name
        )
        return PreparedRun(
            run.id, cfg, table, train_idx, val_idx, val_table, test_table, [*table.notes, *adapted], device
        )

    def examples(self) -> list[Example]:
        """The example datasets, in the order the Examples tab shows them."""
        return list(EXAMPLES.values())

    def example_path(self, name: str) -> Path:
        """The example's CSV (a generated one is written into the app's home on first use)."""
        if name not in EXAMPLES:
            raise ServiceError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
        return example_path(name, self.settings.home / "examples")

    def prepare_example(
        self, name: str, encoder: str | None = None, overrides: dict[str, Any] | None = None
    ) -> PreparedRun:
        """`prepare` for an example dataset with its own preset and settings (`encoder`: lstm, gru, rnn)."""
        path = self.example_path(name)
        example = EXAMPLES[name]
        extra = {**({"model__encoder": encoder} if encoder else {}), **(overrides or {})}
        title = example.title + (f" ({encoder})" if encoder else "")
        return self.prepare(
            path,
            preset_name=example.preset,
            overrides={**example.overrides, **extra},
            name=f"example: {title}",
        )

    def _labelled(self, path: str | os.PathLike[str], like: Table, labels: Sequence[str]) -> Table:
        """A validation or test table in the training table's columns, with no label it lacks."""
        table = data.select(self._uploads.parse(path), like.text_column, like.label_column, min_classes=1)
        check_labels(table, labels)
        return table

    def execute(
        self, prepared: PreparedRun, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[TrainEvent]:
        """Train a prepared run in this process, recording its progress (`execute_run`); a completed
        run's model stays in memory for its first predictions."""
        yield from execute_run(self.store, self.settings, prepared, should_stop, keep=self._remember)

    def _train_submitted(
        self, prepared: PreparedRun, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[TrainEvent]:
        """What the worker runs: the training in a child process (`job`), or with
        `LSTM_DEMO_TRAINING=thread` in this one; a training across processes always in children."""
        if self.settings.training == "thread" and prepared.config.train.nproc == 1:
            return self.execute(prepared, should_stop)
        return job.execute(self.store, self.settings, prepared, should_stop)

    def train(self, train_path: str | os.PathLike[str], **kwargs: Any) -> Iterator[TrainEvent]:
        """`prepare` + `execute` in one call (the command line's path); a training across processes
        runs in torchrun's children (`job`)."""
        should_stop = kwargs.pop("should_stop", None)
        prepared = self.prepare(train_path, **kwargs)
        if prepared.config.train.nproc > 1:
            yield from job.execute(self.store, self.settings, prepared, should_stop)
        else:
            yield from self.execute(prepared, should_stop)

    def _remember(self, run_id: str, loaded: artifacts.LoadedModel) -> None:
        with self._lock:
            self._cache[run_id] = loaded
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    # ------------------------------------------------------------------ the training queue

    def submit(self, prepared: PreparedRun, owner_session: str | None = None) -> Job:
        """Queue a prepared run on its device's lane; returns its job at once (see `follow`)."""
        with self._lock:
            self._held_out[prepared.run_id] = prepared.held_out(HELD_OUT_TEXTS)
            while len(self._held_out) > HELD_OUT_RUNS:
                self._held_out.popitem(last=False)
        return self._worker.submit(prepared, owner_session)

    def job(self, run_id: str) -> Job | None:
        """The job of a run submitted to this app, or None (a run from elsewhere is in `run`)."""
        return self._worker.get(self.resolve(run_id))

    def follow(self, run_id: str, interval: float = 0.5, heartbeat: float | None = None) -> Iterator[Job]:
        """The job after each change (at most once per `interval` seconds, or after `heartbeat` quiet
        seconds) until it ends."""
        job = self.job(run_id)
        if job is None:
            raise ServiceError(f"run {run_id} is not queued or running in this app")
        yield from job.follow(interval, heartbeat)

    def reports_so_far(self, job: Job) -> Sequence[Any]:
        """A job's step and epoch reports so far, for its live curves: its own, or, while another
        replica trains it (nothing but its status reaches this one), the points that replica stores."""
        history = job.history()
        if history or job.last is not None or job.status != "running":
            return history
        return self.store.curves([job.run_id]).get(job.run_id, ())

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued run at once, or ask a running one to stop after its current step (with a
        shared queue, through the store, wherever a replica trains it); False when it is not queued or
        running."""
        return self._worker.cancel(self.resolve(run_id))

    def position(self, run_id: str) -> int | None:
        """0 while running, 1 for the next in line on its device, ...; None when not active."""
        return self._worker.position(run_id)

    def active_job(self, owner_session: str | None = None) -> Job | None:
        """The newest queued or running job (of that browser session, when one is named): a page that
        was reloaded attaches to it again."""
        return self._worker.active(owner_session)

    def _cancel_queued(self, run_id: str) -> RunSummary:
        """Record a run cancelled before its training started."""
        return self.store.finish_run(run_id, status="cancelled", error="cancelled before it started")

    # ------------------------------------------------------------------ using models

    def load(self, run_id: str) -> artifacts.LoadedModel:
        """The run's model, tokenizer and config; cached, since the app asks again on every keystroke."""
        run_id = self.resolve(run_id)
        with self._lock:
            if run_id in self._cache:
                self._cache.move_to_end(run_id)
                return self._cache[run_id]
        summary = self.store.get_run(run_id).summary
        if summary.status != "completed" or not summary.model_dir:
            raise ServiceError(f"run {run_id} is {summary.status}: only completed runs have a model")
        device = resolve_device(self.settings.device)
        try:
            loaded = artifacts.load_model_dir(Path(summary.model_dir), device)
        except ValueError as e:
            detail = str(e).replace(summary.model_dir, "its model directory")
            raise ServiceError(f"run {run_id}: {detail} (try `lstm-demo doctor`)") from None
        self._remember(run_id, loaded)
        return loaded

    def predict(self, run_id: str, texts: Sequence[str]) -> list[Prediction]:
        """Label and probabilities for every class; empty, too long or too many texts are refused."""
        if isinstance(texts, str):
            texts = [texts]
        self._check_texts(texts)
        loaded = self.load(run_id)
        labels = loaded.labels
        out: list[Prediction] = []
        for start in range(0, len(texts), PREDICT_BATCH):
            chunk = list(texts[start : start + PREDICT_BATCH])
            probs = torch.softmax(predict_logits(loaded.model, loaded.encoder.encode_batch(chunk)), dim=-1)
            out += [
                Prediction(
                    text,
                    labels[int(p.argmax())],
                    {label: float(v) for label, v in zip(labels, p, strict=True)},
                )
                for text, p in zip(chunk, probs, strict=True)  # p: (C,)
            ]
        return out

    def _check_texts(self, texts: Sequence[Any]) -> None:
        """Texts to predict against the limits, without echoing a text back."""
        self.limits.check("batch_rows", len(texts), "the number of texts")
        for i, text in enumerate(texts):
            where = "the text" if len(texts) == 1 else f"text {i + 1}"
            if not isinstance(text, str):
                raise ServiceError(f"{where} is a {type(text).__name__}, not a string")
            if not text.strip():
                raise ServiceError(f"{where} is empty: type a sentence to classify")
            self.limits.check("text_chars", len(text), f"{where} (characters)")

    def predict_file(
        self, run_id: str, path: str | os.PathLike[str], text_column: str | None = None
    ) -> Table:
        """Read a table of texts for batch prediction (labels optional)."""
        return data.select(self._uploads.parse(path), text_column, None, require_labels=False, min_classes=0)

    def predict_table(
        self, run_id: str, path: str | os.PathLike[str], text_column: str | None = None
    ) -> BatchPredictions:
        """Predict every row of an uploaded table; also writes the result CSV into the scratch directory."""
        table = self.predict_file(run_id, path, text_column)
        predictions = self.predict(run_id, table.texts)
        labels = self.load(run_id).labels
        truth = table.labels or None
        out = self.scratch_dir() / f"predictions-{Path(table.source).stem or 'table'}.csv"
        _write_predictions(out, predictions, labels, truth)
        columns = ("text", *(("label",) if truth else ()), "predicted", "confidence")
        rows = tuple(
            (p.text, *((truth[i],) if truth else ()), p.label, round(p.probabilities[p.label], 4))
            for i, p in enumerate(predictions)
        )
        return BatchPredictions(columns, rows, out)

    def mistakes(self, run_id: str, n: int = 12) -> list[Mistake]:
        """Up to `n` held-out texts the run's model gets wrong, the most confident first ([] for runs
        not trained by this app, whose held-out texts it does not have)."""
        run_id = self.resolve(run_id)
        with self._lock:
            texts, truth = self._held_out.get(run_id, ([], []))
        if not texts:
            return []
        wrong = [
            Mistake(p.text, t, p.label, p.probabilities[p.label])
            for p, t in zip(self.predict(run_id, texts), truth, strict=True)
            if p.label != t
        ]
        return sorted(wrong, key=lambda m: -m.confidence)[:n]

    def scratch_dir(self) -> Path:
        """A new folder in this instance's private scratch directory, for a file handed out (a
        prediction CSV, a bundle); removed after an hour, and at shutdown."""
        return self._scratch.folder()

    # ------------------------------------------------------------------ opening the model up

    def explain(
        self,
        run_id: str,
        text: str,
        *,
        methods: Sequence[str] = ("ig",),
        target: str | None = None,
        steps: int = 50,
    ) -> explain.Explanation:
        """Attributions of every asked method for one text (Captum, in `explain`)."""
        from . import explain  # captum loads only when something is explained

        self.settings.limits.check("ig_steps", steps, "steps")
        text = _text(text, self.settings.limits)
        loaded = self.load(run_id)
        methods = [method_key(m) for m in methods]
        return explain.explain(loaded.model, loaded.encoder, loaded.labels, text, methods, target, steps)

    def gates(self, run_id: str, text: str) -> gates.GateTrace:
        """Gate, cell and hidden traces per token, recomputed from the run's own recurrent weights."""
        loaded, enc = self._encoded(run_id, text)
        trace = gates.trace(loaded.model, enc.ids, enc.tokens)
        return replace(trace, words=list(enc.words), word_index=list(enc.word_index))

    def decision_path(self, run_id: str, text: str) -> gates.DecisionPath:
        """Class probabilities after each prefix of the text."""
        loaded, enc = self._encoded(run_id, text)
        path = gates.decision_path(loaded.model, enc.ids, loaded.labels, enc.tokens)
        return replace(path, words=list(enc.words), word_index=list(enc.word_index))

    def _encoded(self, run_id: str, text: str) -> tuple[artifacts.LoadedModel, Any]:
        """The run's model and one checked text's tokens; a text with no known token is refused."""
        text = _text(text, self.settings.limits)
        loaded = self.load(run_id)
        enc = loaded.encoder.encode(text)
        if not enc.ids:
            raise ServiceError(_NO_TOKENS)
        return loaded, enc

    def faithfulness(
        self,
        run_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        texts: Sequence[str] | None = None,
        n: int = 200,
        steps: int = 50,
        methods: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """ERASER comprehensiveness/sufficiency of every method (and a random ordering).

        Over the texts of a table (`path`) or the given `texts` (one sentence in the app).
        """
        from . import explain

        limits = self.settings.limits
        limits.check("faithfulness_texts", n, "n (texts)")
        limits.check("ig_steps", steps, "steps")
        loaded = self.load(run_id)
        if texts is None:
            if path is None:
                raise ServiceError("faithfulness needs a table of texts or a list of texts")
            texts = self.predict_file(run_id, path, loaded.config.text_column).texts
        texts = [_text(t, limits) for t in texts]
        return explain.faithfulness(
            loaded.model,
            loaded.encoder,
            loaded.labels,
            list(texts),
            tuple(method_key(m) for m in methods) if methods else tuple(METHODS),
            n=n,
            steps=steps,
        )

    def select_units(
        self, trace: gates.GateTrace, mode: str = "variance", k: int = 10, **kwargs: Any
    ) -> list[int]:
        """Which units of a trace to show, most telling first (see `gates.select_units`)."""
        return gates.select_units(trace, mode, k, **kwargs)

    # ------------------------------------------------------------------ runs

    def resolve(self, run_id: str) -> str:
        try:
            return self.store.resolve_id(run_id)
        except StoreError as e:
            raise ServiceError(str(e)) from None

    def runs(self, **filters: Any) -> list[RunSummary]:
        return self.store.list_runs(**filters)

    def run(self, run_id: str) -> RunDetail:
        return self.store.get_run(self.resolve(run_id))

    def baseline_accuracy(self, run: RunSummary) -> float | None:
        """The TF-IDF + LR baseline's accuracy (test, else validation) beside a listed run; None without one."""
        return self._baselines.accuracy(run.id, run.status not in ACTIVE_STATUSES)

    def curves(self, run_ids: Sequence[str]) -> dict[str, tuple[MetricPoint, ...]]:
        return self.store.curves([self.resolve(r) for r in run_ids])

    def delete(self, run_id: str) -> RunSummary:
        """Delete the run's row, its metrics and its model directory; a queued or running run is refused."""
        run_id = self.resolve(run_id)
        status = self.store.get_run(run_id).summary.status
        job = self._worker.get(run_id)
        if status in ACTIVE_STATUSES or (job is not None and not job.finished):
            raise ServiceError(f"run {run_id} is {status}: cancel it before deleting it")
        with self._lock:
            self._cache.pop(run_id, None)
            self._held_out.pop(run_id, None)
        summary = self.store.delete_run(run_id)
        self._baselines.forget(run_id)
        if summary.model_dir:
            shutil.rmtree(summary.model_dir, ignore_errors=True)
        return summary

    # ------------------------------------------------------------------ moving models

    def export(self, run_id: str, out: str | os.PathLike[str]) -> Path:
        """One zip bundle: config, tokenizer, safetensors weights, metrics, curve and a model card."""
        from . import bundle

        return bundle.export_run(self.store, self.resolve(run_id), Path(out))

    def import_bundle(self, path: str | os.PathLike[str]) -> RunSummary:
        """Validate a bundle completely, then add it as a new completed run; nothing is left behind on refusal."""
        from . import bundle_import

        return bundle_import.import_run(
            self.store, self.settings.runs_dir, Path(path), limits=self.settings.limits
        )

    def doctor(self, repair: bool = True) -> dict[str, Any]:
        """Report (and repair) rows without model files and model files without rows."""
        from . import doctor

        report = doctor.doctor(self.store, self.settings.runs_dir, repair=repair)
        with self._lock:  # a run marked failed must not keep serving from the cache
            self._cache.clear()
        return report

    # ------------------------------------------------------------------ pretrained vectors

    def vectors_files(self) -> list[str]:
        """The vectors files a run from the app may name (`train__vectors`): the app's vectors folder."""
        return vectors.shelf_names(self.settings.vectors_dir)

    def add_vectors(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        vocab: str | os.PathLike[str] | None = None,
    ) -> vectors.Shelved:
        """An uploaded vectors file checked against the limits (every row read), then put in the app's
        vectors folder under a safe form of `name` (the file's own name by default). `vocab`: the words
        of an uploaded .npy, which arrives apart from it."""
        path = Path(path)
        if vocab is None:
            return vectors.shelve(path, self.settings.vectors_dir, self.limits, name=name)
        if path.suffix != ".npy":
            raise ServiceError(f"a vocabulary goes with a .npy file, not with {path.name}")
        staged = self._scratch.folder()  # side by side, as NAME.npy and NAME.vocab, without copying
        npy = staged / vectors.safe_name(name or path.name, ".npy")
        try:
            npy.symlink_to(path.resolve())
            npy.with_suffix(vectors.VOCAB_SUFFIX).symlink_to(Path(vocab).resolve())
            return vectors.shelve(npy, self.settings.vectors_dir, self.limits)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    # ------------------------------------------------------------------ estimates

    def estimate(
        self, train_path: str | os.PathLike[str], *, preset_name: str = "default", **options: Any
    ) -> Any:
        """Seconds per epoch on this app's device, from a few timed steps on the uploaded rows
        (`estimate.epoch_time`; `options`: text_column, label_column, overrides). Vectors named in the
        overrides are checked as Start checks them, and set the embedding's width (their values change
        no step's time)."""
        from . import estimate

        overrides = dict(options.pop("overrides", None) or {})
        if overrides.get("train__vectors"):
            cfg = _config(preset_name, overrides)
            self.limits.check_config(cfg)  # sizes first, as `prepare` does
            cfg = vectors.configure(cfg, self.limits, shelf=self.settings.vectors_dir)
            overrides["model__embedding_dim"] = cfg.model.embedding_dim
        parsed = self._uploads.parse(train_path)
        return estimate.epoch_time(
            parsed,
            preset_name=preset_name,
            overrides=overrides,
            limits=self.limits,
            device=self.settings.device,
            **options,
        )


_NO_TOKENS = "the text has no words the model's tokenizer knows: type a longer sentence"


def _check_processes(nproc: int, device: str) -> None:
    """On CUDA each process trains on a GPU of its own (NCCL refuses two on one)."""
    gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    if device.startswith("cuda") and nproc > gpus:
        raise ServiceError(f"train.nproc is {nproc}, but this machine has {gpus} GPU(s): one process per GPU")
    if device == "mps" and nproc > 1:
        raise ServiceError("training across processes runs on the CPU or on CUDA GPUs, not on Apple MPS")


def _text(text: str, limits: Limits) -> str:
    """A text to explain: not blank, and no longer than the limit (refused by its length, never echoed)."""
    if not text or not text.strip():
        raise ServiceError("the text is empty: type a sentence to explain")
    limits.check("text_chars", len(text), "the text's length in characters")
    return text


def _config(preset_name: str, overrides: dict[str, Any]) -> RunConfig:
    """The preset with the overrides; a bad name or value becomes a ServiceError that says which."""
    if not isinstance(overrides, dict):
        raise ServiceError('options must be a JSON object such as {"train__epochs": 3}')
    try:
        return preset(preset_name, **overrides)
    except LimitError:
        raise
    except (ValueError, TypeError, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)  # KeyError's str() quotes it
        raise ServiceError(str(message) or f"invalid option ({type(e).__name__})") from None


def describe_error(error: BaseException) -> str:
    """What a caller of the app (browser, HTTP) is told. A ValueError (ServiceError, DataError and
    LimitError are ones) was worded for the user and passes, with server paths cut to their last
    part; anything else is logged with its traceback under a short id, and only the id is shown."""
    if isinstance(error, ValueError):
        return _PATH.sub(r"\1", str(error)) or type(error).__name__
    error_id = uuid.uuid4().hex[:8]
    log.error("unexpected error (error id %s)", error_id, exc_info=error)
    return f"something went wrong (error id {error_id}): see the server log"


_PATH = re.compile(r"(?<![\w.~])(?:/[^/\s'\"]+)+/([^/\s'\"]+)")  # an absolute path -> its last part


def _write_predictions(
    path: Path, predictions: Sequence[Prediction], labels: Sequence[str], truth: Sequence[str] | None
) -> None:
    """A CSV of every text with its predicted label and one probability column per class."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", *(["label"] if truth else []), "predicted", *(f"p({c})" for c in labels)])
        for i, p in enumerate(predictions):
            writer.writerow(
                [
                    p.text,
                    *([truth[i]] if truth else []),
                    p.label,
                    *(f"{p.probabilities[c]:.6f}" for c in labels),
                ]
            )
