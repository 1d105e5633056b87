"""Training as a generator of progress reports: no UI, no database, no printing.

`train(...)` yields `Progress` reports (start, step, epoch, done or cancelled); the last one
carries the `TrainResult`. Whoever iterates decides where reports go (a progress bar, the
run store, the command line) and can cancel between steps through `should_stop`.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .config import RunConfig
from .metrics import classification_report
from .model import TextClassifier


@dataclass
class TrainResult:
    model: TextClassifier  # best weights restored, eval mode, on `device`
    val: dict[str, Any] | None  # classification_report on the validation split (best epoch); None without one
    test: dict[str, Any] | None  # on the test set, evaluated once at the end
    best_epoch: int
    epochs_run: int
    train_seconds: float
    seconds_per_epoch: float
    tokens_per_second: float
    device: str
    packing: str
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    refit: dict[str, Any] | None = None  # set by the service when the kept model was refit on all rows


@dataclass(frozen=True)
class Progress:
    kind: str  # start | step | epoch | done | cancelled
    epoch: int
    epochs: int
    step: int  # step within the epoch
    steps_per_epoch: int
    elapsed: float
    eta_seconds: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_macro_f1: float | None = None
    tokens_per_second: float | None = None
    best_epoch: int | None = None
    message: str = ""
    result: TrainResult | None = None
    phase: str = "train"  # train | refit (the second pass on all rows, without validation)

    @property
    def fraction(self) -> float:
        total = self.epochs * max(self.steps_per_epoch, 1)
        done = (self.epoch - 1) * self.steps_per_epoch + self.step if self.epoch else 0
        return min(1.0, max(0.0, done / total))


def resolve_device(name: str = "auto") -> torch.device:
    """auto picks CUDA, then Apple MPS, then the CPU; anything else is taken as asked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} was asked for, but Apple MPS is not available")
    return device


def resolve_packing(packing: str, device: torch.device | None = None) -> str:
    """`auto`: padded batches on a CPU, the same with both directions paired in one call on CUDA.

    `python -m benchmarks.packing` (tokens per second, forward + backward, batch 32), CPU, one
    thread: padded 2.01x (LSTM) and 1.83x (BiLSTM) faster than packed, and the BiLSTM padded
    1.33x faster than paired, which does twice the arithmetic. Packed sequences leave the oneDNN
    kernel on the CPU. On an H200 padded was 1.70x and 1.06x faster than packed (measured before
    batches without padding took one fused call, and before `paired` existed). `paired` runs a
    bidirectional layer's two directions in one sequential pass, as cuDNN's own bidirectional
    call does, where `padded` runs them one after the other; it is `auto` on CUDA on that
    reasoning, not yet on a measurement: `benchmarks.gpu_check` compares the three.
    """
    if packing != "auto":
        return packing
    return "paired" if device is not None and device.type == "cuda" else "padded"


def make_batches(lengths: Sequence[int], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Bucket by length: sort (with a little shuffling noise), cut into batches, shuffle batches.

    Texts of similar length share a batch, so padding costs little. Without `rng` the order is
    deterministic and sorted (for evaluation).
    """
    idx = list(range(len(lengths)))
    if rng is None:
        idx.sort(key=lambda i: lengths[i])
        return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(idx)
    # sort within large chunks only, so batches still vary between epochs
    chunk = batch_size * 50
    out: list[list[int]] = []
    for start in range(0, len(idx), chunk):
        part = sorted(idx[start : start + chunk], key=lambda i: lengths[i])
        out.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(out)
    return out


def collate(seqs: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists with 0 ([PAD]); an empty text becomes one [UNK] (id 1)."""
    seqs = [s if len(s) else [1] for s in seqs]
    T = max(len(s) for s in seqs)
    ids = torch.tensor([list(s) + [0] * (T - len(s)) for s in seqs], dtype=torch.long)  # (B, T)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)  # (B,)
    return _to(ids, device), _to(lengths, device)


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device without waiting: from pageable memory a CUDA copy may stall on the stream."""
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def adversarial_shift(emb: torch.Tensor, size: float) -> torch.Tensor:
    """(B, T, E) embeddings with their loss gradient -> the shift along it, `size` x each text's norm."""
    grad = emb.grad.detach()
    direction = grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]
    return size * emb.detach().flatten(1).norm(dim=1)[:, None, None] * direction


def _score(report: dict[str, Any], monitor: str) -> float:
    """The monitored validation figure, higher is better."""
    return -report["loss"] if monitor == "loss" else report[monitor]


def _padded(lengths: Sequence[int]) -> bool:
    """Whether a batch of these lengths holds padding (length-bucketed batches often do not)."""
    return min(lengths) != max(lengths)


@functools.cache
def _half_dtype() -> torch.dtype:
    """bf16 where the GPU has it (Ampere and later), else fp16; asked once, not every step."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=_half_dtype())
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def predict_logits(
    model: TextClassifier, seqs: Sequence[Sequence[int]], batch_size: int = 256, mixed_precision: bool = False
) -> torch.Tensor:
    """Logits (N, C) in the input order, float32 on the CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.empty(len(seqs), model.cfg.num_classes)
    for batch in make_batches([len(s) for s in seqs], batch_size, None):
        ids, lengths = collate([seqs[i] for i in batch], device)
        with _autocast(device, mixed_precision):
            logits = model(ids, lengths, _padded([max(1, len(seqs[i])) for i in batch]))
        out[batch] = logits.float().cpu()
    model.train(was_training)
    return out


def evaluate(
    model: TextClassifier,
    seqs: Sequence[Sequence[int]],
    y: Sequence[int],
    labels: Sequence[str],
    mixed_precision: bool = False,
) -> dict[str, Any]:
    logits = predict_logits(model, seqs, mixed_precision=mixed_precision)
    loss = F.cross_entropy(logits, torch.as_tensor(list(y), dtype=torch.long)).item()
    report = classification_report(list(y), logits.argmax(1).tolist(), labels)
    report["loss"] = loss
    return report


class WeightAverage:
    """An exponential moving average of a model's weights, one fused update per step.

    The same arithmetic as `torch.optim.swa_utils.AveragedModel` with its EMA function (the first
    update copies, later ones lerp), without its per-step host-to-device copy of a step counter,
    which on CUDA waits for the GPU every step.
    """

    def __init__(self, model: TextClassifier, decay: float):
        self.module = copy.deepcopy(model)
        self.decay = decay
        self._averaged = [p.detach() for p in self.module.parameters()]
        self._started = False

    @torch.no_grad()
    def update(self, model: TextClassifier) -> None:
        current = [p.detach() for p in model.parameters()]
        if not self._started:
            torch._foreach_copy_(self._averaged, current)
            self._started = True
        else:
            torch._foreach_lerp_(self._averaged, current, 1.0 - self.decay)


def warm_up() -> None:
    """Build and drop one optimizer: the first one built in a process imports `torch._dynamo`.

    That import took 0.82 s here (`python -m benchmarks.overhead`), which a person's first training
    would otherwise wait for.
    """
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def train(
    cfg: RunConfig,
    train_seqs: Sequence[Sequence[int]],
    train_y: Sequence[int],
    val_seqs: Sequence[Sequence[int]],
    val_y: Sequence[int],
    *,
    test: tuple[Sequence[Sequence[int]], Sequence[int]] | None = None,
    should_stop: Callable[[], bool] | None = None,
    phase: str = "train",
) -> Iterator[Progress]:
    """Train `cfg.model` on id sequences; yields progress, the final report holds the result.

    Without validation rows it trains exactly `cfg.train.epochs` epochs and keeps the last
    (averaged) weights: the refit pass, whose epoch count an earlier validated run chose.
    """
    tc, labels = cfg.train, list(cfg.labels)
    report = functools.partial(Progress, phase=phase)
    validated = len(val_seqs) > 0
    if cfg.model.num_classes != len(labels):
        raise ValueError("cfg.model.num_classes must equal the number of labels")
    device = resolve_device(tc.device)
    packing = resolve_packing(tc.packing, device)
    amp = tc.mixed_precision and device.type == "cuda"
    seed_everything(tc.seed)
    model = TextClassifier(cfg.model, packing=packing).to(device)
    # the fused kernel updates all parameters in one pass: 3x faster than the loop on a CPU, where
    # the dense embedding matrix dominates the optimizer's time
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(
        model.parameters(), lr=tc.learning_rate, weight_decay=tc.weight_decay, fused=fused
    )
    # Polyak averaging of the weights: the averaged copy is what is validated and kept
    ema = WeightAverage(model, tc.ema_decay) if tc.ema_decay > 0 else None
    evaluated = ema.module if ema is not None else model
    # fp16 needs loss scaling; bf16 (Ampere and later) does not
    scaler = torch.amp.GradScaler("cuda", enabled=amp and _half_dtype() == torch.float16)
    weight = None
    if tc.class_weights:
        counts = torch.bincount(torch.as_tensor(list(train_y)), minlength=len(labels)).float()
        weight = (counts.sum() / (len(labels) * counts.clamp(min=1))).to(device)
    lengths = [max(1, len(s)) for s in train_seqs]
    rng = random.Random(tc.seed)
    steps_per_epoch = math.ceil(len(train_seqs) / tc.batch_size)
    y_all = torch.as_tensor(list(train_y), dtype=torch.long)
    best_score, best_epoch, best_state = -math.inf, 0, None
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    train_time = 0.0
    tokens_seen = 0
    stale = 0
    message = f"training on {device}"
    if phase == "refit":
        message = f"refitting on all {len(train_seqs)} training rows for {tc.epochs} epochs on {device}"
    yield report("start", 0, tc.epochs, 0, steps_per_epoch, 0.0, message=message)
    epoch = 0
    stopped_early = False
    for epoch in range(1, tc.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        # the running loss stays on the device: a .item() per step would stall the GPU queue
        loss_sum, loss_n = torch.zeros((), device=device), 0
        for step, batch in enumerate(make_batches(lengths, tc.batch_size, rng), start=1):
            if should_stop is not None and should_stop():
                yield report(
                    "cancelled",
                    epoch,
                    tc.epochs,
                    step,
                    steps_per_epoch,
                    time.perf_counter() - start,
                    message="cancelled",
                )
                return
            ids, lens = collate([train_seqs[i] for i in batch], device)
            target = _to(y_all[batch], device)
            batch_lengths = [lengths[i] for i in batch]
            if tc.word_dropout > 0:  # real tokens (id > 1) become [UNK] (id 1) at random
                drop = (torch.rand(ids.shape, device=device) < tc.word_dropout) & (ids > 1)
                ids = ids.masked_fill(drop, 1)
            padded = _padded(batch_lengths)
            with _autocast(device, amp):
                emb = model.embedding(ids)  # (B, T, E)
                if tc.adversarial > 0:
                    emb.retain_grad()
                logits = model.classify(emb, lens, padded)
            loss = F.cross_entropy(logits.float(), target, weight=weight, label_smoothing=tc.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.adversarial > 0:
                r = adversarial_shift(emb, tc.adversarial)
                with _autocast(device, amp):
                    adv_logits = model.classify(model.embedding(ids) + r, lens, padded)
                adv_loss = F.cross_entropy(
                    adv_logits.float(), target, weight=weight, label_smoothing=tc.label_smoothing
                )
                scaler.scale(adv_loss).backward()
            if tc.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            loss_sum += loss.detach() * len(batch)
            loss_n += len(batch)
            tokens_seen += sum(batch_lengths)
            if step % tc.log_every == 0 and step < steps_per_epoch:
                now = time.perf_counter()
                done = (epoch - 1) * steps_per_epoch + step
                rate = (now - start) / done
                yield report(
                    "step",
                    epoch,
                    tc.epochs,
                    step,
                    steps_per_epoch,
                    now - start,
                    eta_seconds=rate * (tc.epochs * steps_per_epoch - done),
                    train_loss=loss_sum.item() / loss_n,
                    tokens_per_second=tokens_seen / (train_time + now - epoch_start),
                )
        train_time += time.perf_counter() - epoch_start
        val = evaluate(evaluated, val_seqs, val_y, labels, amp) if validated else {}
        if not validated:
            best_epoch = epoch  # nothing to choose by: the last epoch is kept
        elif _score(val, tc.monitor) > best_score:
            best_score, best_epoch, stale = _score(val, tc.monitor), epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in evaluated.state_dict().items()})
        else:
            stale += 1
        entry = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / max(loss_n, 1),
            "val_loss": val.get("loss"),
            "val_accuracy": val.get("accuracy"),
            "val_macro_f1": val.get("macro_f1"),
            "tokens_per_second": tokens_seen / train_time,
            "seconds": time.perf_counter() - epoch_start,  # this epoch, validation included
            "tokens_seen": tokens_seen,  # so far, as `train_seconds`: throughput between any two epochs
            "train_seconds": train_time,
        }
        history.append(entry)
        elapsed = time.perf_counter() - start
        yield report(
            "epoch",
            epoch,
            tc.epochs,
            steps_per_epoch,
            steps_per_epoch,
            elapsed,
            eta_seconds=elapsed / epoch * (tc.epochs - epoch),
            train_loss=entry["train_loss"],
            val_loss=entry["val_loss"],
            val_accuracy=entry["val_accuracy"],
            val_macro_f1=entry["val_macro_f1"],
            tokens_per_second=entry["tokens_per_second"],
            best_epoch=best_epoch,
        )
        if tc.patience and stale >= tc.patience:
            stopped_early = True
            break
    if best_state is None:  # no validation: keep the last weights (averaged, when averaging)
        best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    val = evaluate(model, val_seqs, val_y, labels, amp) if validated else None
    test_report = evaluate(model, test[0], test[1], labels, amp) if test is not None else None
    result = TrainResult(
        model=model,
        val=val,
        test=test_report,
        best_epoch=best_epoch,
        epochs_run=epoch,
        train_seconds=train_time,
        seconds_per_epoch=train_time / epoch,
        tokens_per_second=tokens_seen / train_time,
        device=str(device),
        packing=packing,
        stopped_early=stopped_early,
        history=history,
    )
    yield report(
        "done",
        epoch,
        tc.epochs,
        steps_per_epoch,
        steps_per_epoch,
        time.perf_counter() - start,
        eta_seconds=0.0,
        val_accuracy=val["accuracy"] if val else None,
        val_macro_f1=val["macro_f1"] if val else None,
        best_epoch=best_epoch,
        message="stopped early" if stopped_early else "finished",
        result=result,
    )
