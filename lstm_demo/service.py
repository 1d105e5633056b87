"""The one API that the UI, the command line and the HTTP endpoints call.

It joins the parts that must not know each other: tables (`data`), tokenizers, the training
generator, the run store and the model directories. Every public method returns plain
dataclasses or dicts.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import artifacts, gates
from .config import AppSettings, LimitError, Limits, RunConfig, override, preset
from .data import Table, check_labels, read_table, read_texts
from .distributed import SOLO, Group
from .names import METHODS, method_key
from .store import MetricPoint, RunDetail, RunSummary, Store, StoreError
from .tokenization import TextEncoder
from .train import FINAL, Progress, Splits, TrainResult, fit, predict_logits, resolve_device, warm_up

if TYPE_CHECKING:
    from . import explain


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
class TrainEvent:
    run_id: str
    progress: Progress
    run: RunSummary | None = None  # set on the last event (done, cancelled or failed)


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

    @property
    def refits(self) -> bool:
        """Whether the kept model is refit on every training row: asked for, with a held-out share
        taken from the training table (a separate validation file stays out)."""
        return self.config.train.refit and self.val_table is None and bool(self.val_idx)


class Service:
    def __init__(self, settings: AppSettings | None = None, *, cache_size: int = 8):
        self.settings = settings or AppSettings.from_env()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.db_url)
        # runs left `running` by a process that died are marked `interrupted`, nothing else changes
        self.interrupted = self.store.mark_interrupted()
        self._cache: OrderedDict[str, artifacts.LoadedModel] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    def warm_up(self) -> None:
        """Pay PyTorch's one-off start-up costs now rather than in the first training (see `train.warm_up`)."""
        warm_up()

    def _limits(self) -> dict[str, int]:
        """The settings' bounds on a table that someone hands us (upload size, rows)."""
        return {"max_bytes": self.settings.limits.upload_bytes, "max_rows": self.settings.limits.rows}

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
        owner: str | None = None,
    ) -> PreparedRun:
        """Read and validate the data, then record a `queued` run. Raises DataError/ValueError."""
        limits = self._limits()
        table = read_table(train_path, text_column, label_column, **limits)
        cfg = preset(preset_name, **(overrides or {}))
        if cfg.train.device == "auto" and self.settings.device != "auto":
            cfg = override(cfg, train__device=self.settings.device)
        resolve_device(cfg.train.device)  # fail now, not in the worker, when the device is missing
        labels = table.classes
        val_table = None
        if val_path is not None:
            val_table = read_table(val_path, table.text_column, table.label_column, min_classes=1, **limits)
            check_labels(val_table, labels)
            train_idx, val_idx = list(range(len(table.texts))), []
        else:
            train_idx, val_idx = table.split(cfg.train.val_fraction, cfg.train.seed)
        test_table = None
        if test_path is not None:
            test_table = read_table(test_path, table.text_column, table.label_column, min_classes=1, **limits)
            check_labels(test_table, labels)
        cfg = override(
            cfg,
            labels=labels,
            text_column=table.text_column,
            label_column=table.label_column or "label",
            model__num_classes=len(labels),
        )
        dataset = self.store.add_dataset(
            name=table.source,
            fingerprint=table.fingerprint,
            rows=len(table.texts),
            text_column=table.text_column,
            label_column=table.label_column or "",
            label_counts=table.label_counts(),
        )
        run = self.store.create_run(config=cfg.to_dict(), preset=cfg.preset, dataset_id=dataset.id, name=name)
        return PreparedRun(run.id, cfg, table, train_idx, val_idx, val_table, test_table, list(table.notes))

    def execute(
        self, prepared: PreparedRun, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[TrainEvent]:
        """Train a prepared run in this process, recording its progress (`execute_run`); a completed
        run's model stays in memory for its first predictions."""
        yield from execute_run(self.store, self.settings, prepared, should_stop, keep=self._remember)

    def train(self, train_path: str | os.PathLike[str], **kwargs: Any) -> Iterator[TrainEvent]:
        """`prepare` + `execute` in one call (the command line's path)."""
        should_stop = kwargs.pop("should_stop", None)
        yield from self.execute(self.prepare(train_path, **kwargs), should_stop)

    def _remember(self, run_id: str, loaded: artifacts.LoadedModel) -> None:
        with self._lock:
            self._cache[run_id] = loaded
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

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
            raise ServiceError(f"run {run_id}: {e} (try `lstm-demo doctor`)") from None
        self._remember(run_id, loaded)
        return loaded

    def predict(self, run_id: str, texts: Sequence[str]) -> list[Prediction]:
        """Label and probabilities for every class; an empty text is refused with a clear message."""
        if isinstance(texts, str):
            texts = [texts]
        for i, text in enumerate(texts):
            if not text or not text.strip():
                where = "the text" if len(texts) == 1 else f"text {i + 1}"
                raise ServiceError(f"{where} is empty: type a sentence to classify")
        loaded = self.load(run_id)
        seqs = loaded.encoder.encode_batch(list(texts))
        probs = torch.softmax(predict_logits(loaded.model, seqs), dim=-1)  # (N, C)
        labels = loaded.labels
        return [
            Prediction(
                text, labels[int(p.argmax())], {label: float(v) for label, v in zip(labels, p, strict=True)}
            )
            for text, p in zip(texts, probs, strict=True)
        ]

    def predict_file(
        self, run_id: str, path: str | os.PathLike[str], text_column: str | None = None
    ) -> Table:
        """Read a table of texts for batch prediction (labels optional)."""
        limits = self._limits()
        return read_texts(path, text_column, **limits)

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
        text = _text(text, self.settings.limits)
        loaded = self.load(run_id)
        enc = loaded.encoder.encode(text)
        if not enc.ids:
            raise ServiceError(_NO_TOKENS)
        return gates.trace(loaded.model, enc.ids, enc.tokens)

    def decision_path(self, run_id: str, text: str) -> gates.DecisionPath:
        """Class probabilities after each prefix of the text."""
        text = _text(text, self.settings.limits)
        loaded = self.load(run_id)
        enc = loaded.encoder.encode(text)
        if not enc.ids:
            raise ServiceError(_NO_TOKENS)
        return gates.decision_path(loaded.model, enc.ids, loaded.labels, enc.tokens)

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

    def curves(self, run_ids: Sequence[str]) -> dict[str, tuple[MetricPoint, ...]]:
        return self.store.curves([self.resolve(r) for r in run_ids])

    def cancel_queued(self, run_id: str) -> RunSummary:
        """Record a run cancelled before its training started."""
        return self.store.finish_run(
            self.resolve(run_id), status="cancelled", error="cancelled before it started"
        )

    def delete(self, run_id: str) -> RunSummary:
        """Delete the run's row, its metrics and its model directory."""
        run_id = self.resolve(run_id)
        with self._lock:
            self._cache.pop(run_id, None)
        summary = self.store.delete_run(run_id)
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


_NO_TOKENS = "the text has no words the model's tokenizer knows: type a longer sentence"
Keep = Callable[[str, artifacts.LoadedModel], None]  # told each completed run's model, to hold in memory


def execute_run(
    store: Store,
    settings: AppSettings,
    prepared: PreparedRun,
    should_stop: Callable[[], bool] | None = None,
    *,
    device: torch.device | None = None,
    group: Group = SOLO,
    keep: Keep | None = None,
) -> Iterator[TrainEvent]:
    """Train a prepared run, recording its progress; yields events, the last holds the run.

    The training policy (refitting on every row included) is `train.fit`'s: this hands it the
    tokenizing of the run's rows and stores what it yields. The app's worker runs it in a thread or
    `job` in a process of its own (which names the `device` it resolved for its `group`); under
    torchrun only rank 0 calls it, the others run `train_rank`.
    """
    run_id = prepared.run_id
    finished = False  # once the run has its final status, closing the generator changes nothing
    try:
        # the options again, as this run will use them: one over a limit fails this run, never the app
        settings.limits.check_config(prepared.config)
        if prepared.config.train.nproc > 1 and not group.distributed:
            raise ServiceError("a training across processes starts through torchrun (job.launch), not here")
        device = device or resolve_device(prepared.config.train.device)  # once per training
        store.start_run(run_id, device=str(device), pid=os.getpid())
        end = yield from _follow(store, run_id, train_rank(prepared, device, should_stop, group))
        run = _finish(store, settings.runs_dir, end, prepared, keep)
        finished = True
        yield TrainEvent(run_id, end, run)
    except GeneratorExit:
        if not finished:
            store.finish_run(run_id, status="cancelled")
        raise
    except BaseException as e:
        if not finished:
            store.finish_run(run_id, status="failed", error=_describe(e))
        raise


def train_rank(
    prepared: PreparedRun, device: torch.device, should_stop: Callable[[], bool] | None, group: Group = SOLO
) -> Iterator[Progress]:
    """The training's reports on this rank, recording nothing (what every rank but 0 runs alone)."""
    encode = functools.partial(_encode, prepared, group=group)
    return fit(encode, refit=prepared.refits, device=device, should_stop=should_stop, group=group)


def _follow(store: Store, run_id: str, reports: Iterator[Progress]) -> Iterator[TrainEvent]:
    """Pass the reports on, storing the validated pass's curve; returns the final report."""
    for progress in reports:
        if progress.kind in FINAL:
            return progress
        if progress.kind in ("step", "epoch") and progress.phase == "train":
            store.add_metric(run_id, _metric_point(progress))
        yield TrainEvent(run_id, progress)
    raise RuntimeError("training ended without a final report")


def _finish(
    store: Store, runs_dir: Path, end: Progress, prepared: PreparedRun, keep: Keep | None
) -> RunSummary:
    """Record how the training ended; a completed run's model is saved (and handed to `keep`)."""
    run_id, result = prepared.run_id, end.result
    if result is None:  # cancelled, or failed with a reason (a loss that diverged)
        status = "failed" if end.kind == "failed" else "cancelled"
        return store.finish_run(
            run_id,
            status=status,
            epochs_run=end.epochs_run,
            error=end.message if status == "failed" else None,
        )
    cfg = result.config
    metrics = _metrics(result, prepared)
    model_dir = artifacts.save_model_dir(runs_dir / run_id, cfg, result.encoder, result.model, metrics)
    store.update_config(run_id, cfg.to_dict())
    run = store.finish_run(
        run_id,
        status="completed",
        metrics={
            "val": result.val,
            "test": result.test,
            "refit": artifacts.refit_summary(metrics),
            "world_size": result.world_size,
        },
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        model_dir=str(model_dir),
    )
    if keep is not None:  # so no first prediction reads the model back (its metrics as JSON give them)
        as_read = json.loads(json.dumps(metrics))
        keep(run_id, artifacts.LoadedModel(cfg, result.model, result.encoder, as_read))
    return run


def _encode(prepared: PreparedRun, everything: bool, group: Group = SOLO) -> Splits:
    """Train the tokenizer on the training rows (with `everything`, the validation share too), then
    encode every split with it. Across ranks, rank 0's tokenizer is everyone's."""
    cfg, table = prepared.config, prepared.table
    rows = prepared.train_idx + prepared.val_idx if everything else prepared.train_idx
    encoder = None
    if group.is_main:
        encoder = TextEncoder.train([table.texts[i] for i in rows], cfg.preprocess, cfg.tokenizer)
    if group.distributed:
        shared = group.text(encoder.to_json() if encoder is not None else None)
        encoder = encoder or TextEncoder.from_json(shared, cfg.preprocess, cfg.tokenizer)
    index = {label: i for i, label in enumerate(cfg.labels)}

    def split(tbl: Table, idx: Sequence[int] | None = None) -> tuple[list[list[int]], list[int]]:
        idx = range(len(tbl.texts)) if idx is None else idx
        return encoder.encode_batch([tbl.texts[i] for i in idx]), [index[tbl.labels[i]] for i in idx]

    val = split(prepared.val_table) if prepared.val_table is not None else split(table, prepared.val_idx)
    test = split(prepared.test_table) if prepared.test_table is not None else None
    cfg = override(cfg, model__vocab_size=encoder.vocab_size)
    return Splits(cfg, split(table, rows), val, test, encoder)


def _metrics(result: TrainResult, prepared: PreparedRun) -> dict[str, Any]:
    """What `metrics.json` holds: the figures, the curve and where the rows came from."""
    return {
        "val": result.val,
        "test": result.test,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_seconds": result.train_seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
        "tokens_per_second": result.tokens_per_second,
        "device": result.device,
        "packing": result.packing,
        "world_size": result.world_size,
        "history": result.history,
        "refit": result.refit,
        "data": {
            "source": prepared.table.source,
            "rows": len(prepared.table.texts),
            "train_rows": len(prepared.train_idx),
            "val_rows": len(prepared.val_idx)
            if prepared.val_table is None
            else len(prepared.val_table.texts),
            "test_rows": len(prepared.test_table.texts) if prepared.test_table is not None else 0,
            "dropped_empty": prepared.table.dropped_empty,
            "notes": prepared.notes,
        },
    }


def _text(text: str, limits: Limits) -> str:
    """A text to explain: not blank, and no longer than the limit (refused by its length, never echoed)."""
    if not text or not text.strip():
        raise ServiceError("the text is empty: type a sentence to explain")
    limits.check("text_chars", len(text), "the text's length in characters")
    return text


def _metric_point(p: Progress) -> MetricPoint:
    return MetricPoint(
        epoch=p.epoch,
        step=p.step,
        kind=p.kind,
        train_loss=p.train_loss,
        val_loss=p.val_loss,
        val_accuracy=p.val_accuracy,
        val_macro_f1=p.val_macro_f1,
        tokens_per_second=p.tokens_per_second,
        extra={"elapsed": p.elapsed},
    )


def _describe(e: BaseException) -> str:
    if isinstance(e, KeyboardInterrupt):
        return "interrupted by the user"
    if isinstance(e, LimitError):  # already worded for the user
        return str(e)
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return "the GPU ran out of memory: lower the batch size or the hidden size"
    if isinstance(e, MemoryError) or "can't allocate memory" in str(e):  # the CPU allocator's words
        return "the model did not fit in memory: lower the hidden size, the embedding size or the vocabulary"
    return f"{type(e).__name__}: {e}"
