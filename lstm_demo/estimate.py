"""How long one epoch would take on this device, measured before a training starts.

The model a run of these settings would build (preset, overrides and the adaptation to the data
included) trains for a handful of real optimizer steps on batches of the uploaded rows, through
`train.train` itself, so every option that costs time (adversarial steps, the weight average,
bidirectional layers, the vocabulary's size) is in what is timed. The median step after a warm-up,
times the steps of one epoch, is the estimate. It is bounded: the configuration is checked against
the limits before anything is built, the tokenizer learns from a sample of rows, and the measuring
stops after `STEPS` steps or the limit `estimate_seconds` (`LSTM_DEMO_MAX_ESTIMATE_SECONDS`), whichever
comes first.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import adapt, data
from .config import Limits, RunConfig, override, preset
from .tokenization import TextEncoder
from .train import FINAL, resolve_device, train

WARM_UP = 2  # first steps left out: one-off kernel choices and allocations, which an epoch pays once
STEPS = 8  # steps timed after the warm-up
SAMPLE_CHUNKS = 50  # rows sampled, in batches: the training sorts lengths within this many batches


@dataclass(frozen=True)
class Estimate:
    """Seconds per epoch of training steps, as measured; validation after each epoch is not in it."""

    seconds_per_epoch: float
    seconds_per_step: float  # the median of the steps timed
    steps_per_epoch: int
    steps_timed: int  # steps the median is of (warm-up left out unless the time ran short)
    epochs: int  # the run's epochs, so a caller can say "up to" (early stopping may end it sooner)
    device: str
    train_rows: int
    config: RunConfig  # the settings measured, after adaptation to the data

    @property
    def seconds_total(self) -> float:
        return self.seconds_per_epoch * self.epochs

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds_per_epoch": self.seconds_per_epoch,
            "seconds_per_step": self.seconds_per_step,
            "steps_per_epoch": self.steps_per_epoch,
            "steps_timed": self.steps_timed,
            "epochs": self.epochs,
            "seconds_total": self.seconds_total,
            "device": self.device,
            "train_rows": self.train_rows,
        }


def epoch_time(
    parsed: data.Parsed,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    preset_name: str = "default",
    overrides: dict[str, Any] | None = None,
    limits: Limits | None = None,
    device: str = "auto",
    steps: int = STEPS,
) -> Estimate:
    """Time a few training steps of the run these settings would make; `device` is the app's."""
    limits = limits or Limits()
    cfg = preset(preset_name, **(overrides or {}))
    limits.check_config(cfg)  # sizes first: nothing is built for a request over a limit
    if cfg.train.device == "auto" and device != "auto":
        cfg = override(cfg, train__device=device)
    where = resolve_device(cfg.train.device)
    table = data.select(parsed, text_column, label_column)
    labels = table.classes
    limits.check("classes", len(labels), f"the number of classes in {table.source}")
    train_idx, _ = table.split(cfg.train.val_fraction, cfg.train.seed)
    texts = [table.texts[i] for i in train_idx]
    targets = [table.labels[i] for i in train_idx]
    cfg, _ = adapt.for_run(cfg, texts, targets, limits)
    cfg = override(cfg, labels=labels, model__num_classes=len(labels))
    sample = _sample(len(texts), cfg.train.batch_size * SAMPLE_CHUNKS, cfg.train.seed)
    encoder = TextEncoder.train([texts[i] for i in sample], cfg.preprocess, cfg.tokenizer)
    # a sample knows fewer words than the whole table: then the vocabulary's cap, its largest size
    vocab = encoder.vocab_size if len(sample) == len(texts) else cfg.tokenizer.vocab_size
    cfg = override(cfg, model__vocab_size=vocab)
    limits.check_config(cfg)
    index = {label: i for i, label in enumerate(labels)}
    seqs = encoder.encode_batch([texts[i] for i in sample])
    ys = [index[targets[i]] for i in sample]
    # the time cap is the limit itself: the measuring stops there with whatever steps it has
    durations = _time_steps(cfg, seqs, ys, where, WARM_UP + steps, limits.estimate_seconds)
    timed = durations[WARM_UP:] or durations  # too slow to warm up in time: the first steps, pessimistic
    if not timed:  # the training ended at once (a loss that was not finite): nothing to extrapolate from
        raise ValueError("no training step could be timed with these settings: try Start, which says why")
    # the median: a step that meets a new text length pays for a new kernel once, which the steps of
    # a later epoch no longer do
    per_step = statistics.median(timed)
    steps_per_epoch = math.ceil(len(texts) / cfg.train.batch_size)
    return Estimate(
        seconds_per_epoch=per_step * steps_per_epoch,
        seconds_per_step=per_step,
        steps_per_epoch=steps_per_epoch,
        steps_timed=len(timed),
        epochs=cfg.train.epochs,
        device=str(where),
        train_rows=len(texts),
        config=cfg,
    )


def _sample(n: int, size: int, seed: int) -> list[int]:
    """Up to `size` row indices, drawn at random (all rows when there are no more)."""
    if n <= size:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), size))


def _time_steps(
    cfg: RunConfig, seqs: Sequence[Sequence[int]], ys: Sequence[int], device: torch.device, steps: int,
    seconds: float,
) -> list[float]:  # fmt: skip
    """Seconds of each of up to `steps` optimizer steps, read between the training's own checks for
    cancellation (made before every step); the training is stopped there once enough are timed."""
    marks: list[float] = []

    def stop() -> bool:
        if device.type == "cuda":  # kernels run behind the host: wait for them, or the clock lies
            torch.cuda.synchronize(device)
        marks.append(time.perf_counter())
        timed = len(marks) - 1
        return timed >= steps or (timed >= 1 and marks[-1] - marks[0] >= seconds)

    repeat = math.ceil(steps / max(1, math.ceil(len(seqs) / cfg.train.batch_size))) + 1
    # a table of fewer batches than steps trains its epochs again; nothing validates, nothing stops early
    cfg = override(cfg, train__epochs=repeat, train__patience=0)
    for report in train(cfg, seqs, ys, [], [], should_stop=stop, device=device):
        if report.kind in FINAL:
            break
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]
