"""How a prepared run is trained and recorded: the run store follows the training's reports.

`execute_run` is what `Service.execute` runs in the app's process, and what `job` runs in a process
of its own: it marks the run started, hands `train.fit` the tokenizing of the run's rows, stores the
validated pass's curve as it comes and, at the end, the run's status, its figures and its model
directory. The service prepares runs and queues them; this module never sees a request.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from . import artifacts, vectors, yardstick
from .config import AppSettings, LimitError, Limits, override
from .data import Table
from .devices import resolve_device
from .distributed import SOLO, Group
from .store import MetricPoint, RunSummary, Store
from .tokenization import TextEncoder
from .train import FINAL, Progress, Splits, TrainResult, fit

if TYPE_CHECKING:
    from .service import PreparedRun

Keep = Callable[[str, artifacts.LoadedModel], None]  # told each completed run's model, to hold in memory


@dataclass(frozen=True)
class TrainEvent:
    run_id: str
    progress: Progress
    run: RunSummary | None = None  # set on the last event (done, cancelled or failed)


class Interrupted(Exception):
    """Thrown into `execute_run` when nobody is left to follow the training (the app that started it
    is gone): the run ends `interrupted`, this the reason, rather than `cancelled` by no one."""


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
            from .service import ServiceError  # the door's error; the door imports this module

            raise ServiceError("a training across processes starts through torchrun (job.launch), not here")
        device = device or resolve_device(prepared.config.train.device)  # once per training
        store.start_run(run_id, device=str(device), pid=os.getpid())
        if prepared.config.preset == "auto":  # the search first; its choice then trains as any run
            from . import search

            for trial in search.before_training(prepared, settings.limits, should_stop):
                yield TrainEvent(run_id, trial)
        end = yield from _follow(store, run_id, train_rank(prepared, device, should_stop, group))
        run = _finish(store, settings, end, prepared, keep)
        finished = True
        yield TrainEvent(run_id, end, run)
    except GeneratorExit:
        if not finished:
            store.finish_run(run_id, status="cancelled")
        raise
    except Interrupted as e:
        if not finished:
            store.finish_run(run_id, status="interrupted", error=str(e))
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
    store: Store, settings: AppSettings, end: Progress, prepared: PreparedRun, keep: Keep | None
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
    beside = _beside(prepared, settings.limits)
    metrics.update(beside)
    model_dir = artifacts.save_model_dir(
        settings.runs_dir / run_id, cfg, result.encoder, result.model, metrics
    )
    run = store.finish_run(
        run_id,
        status="completed",
        metrics={
            "val": result.val,
            "test": result.test,
            "refit": artifacts.refit_summary(metrics),
            "world_size": result.world_size,
            **beside,
        },
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        model_dir=str(model_dir),
        config=cfg.to_stored_dict(),
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
    pretrained = vectors.for_run(cfg, encoder, prepared.notes)
    return Splits(cfg, split(table, rows), val, test, encoder, pretrained)


def _metrics(result: TrainResult, prepared: PreparedRun) -> dict[str, Any]:
    """What `metrics.json` holds: the figures, the curve and where the rows came from (the notes on
    how they were read are `_beside`'s, stored once)."""
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
        },
    }


def _beside(prepared: PreparedRun, limits: Limits) -> dict[str, Any]:
    """What a completed run keeps beside its own figures: the baseline (fitted now, after the LSTM,
    never failing it), an `auto` run's trials, and the notes on how its data was read and its
    settings adapted."""
    out = {yardstick.KEY: yardstick.measure(prepared, limits), "notes": list(prepared.notes)}
    if prepared.search is not None:
        out["search"] = prepared.search
    return out


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
