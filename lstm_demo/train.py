"""Training as a generator of progress reports: no UI, no database, no printing.

`fit(encode, ...)` is the whole training policy: one pass on the training rows that chooses the
epoch on validation and, with `refit`, a second pass on every row for that many epochs whose model
is kept. `train(...)` is one pass: per epoch, steps (`_step`), then an epoch record and the choice
of the best weights (`_Best`). Both yield `Progress` reports (start, step, epoch, then done,
cancelled or failed); a done report carries the `TrainResult`. Whoever iterates decides where
reports go (a progress bar, the run store, the command line) and can cancel between steps through
`should_stop`.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .batching import collate, has_padding, make_batches
from .config import RunConfig, TrainConfig, override
from .devices import autocast, half_dtype, resolve_device, resolve_packing, to_device
from .distributed import SOLO, Group
from .metrics import classification_report
from .model import TextClassifier
from .names import UNK_ID
from .rows import StepRows

Ids = Sequence[Sequence[int]]
FINAL = ("done", "cancelled", "failed")  # the kinds of report a training ends with


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
    refit: dict[str, Any] | None = None  # set by `fit` when the kept model was refit on all rows
    config: RunConfig | None = None  # set by `fit`: the configuration the kept model was built from
    encoder: Any = None  # set by `fit`: what turned the kept model's texts into ids (`Splits.encoder`)
    world_size: int = 1  # processes that trained it together (torchrun ranks)


@dataclass(frozen=True)
class Progress:
    kind: str  # start | step | epoch | done | cancelled | failed
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
    message: str = ""  # on a failed report: why, in words a user can act on
    result: TrainResult | None = None
    phase: str = "train"  # train | refit (the second pass on all rows, without validation)
    epochs_run: int | None = None  # on a cancelled or failed report: whole epochs of the validated pass

    @property
    def fraction(self) -> float:
        total = self.epochs * max(self.steps_per_epoch, 1)
        done = (self.epoch - 1) * self.steps_per_epoch + self.step if self.epoch else 0
        return min(1.0, max(0.0, done / total))


@dataclass(frozen=True)
class Splits:
    """Every split as token ids, as `fit`'s `encode` callback hands them over."""

    cfg: RunConfig  # with `model.vocab_size` set to the tokenizer's
    train: tuple[Ids, Sequence[int]]
    val: tuple[Ids, Sequence[int]]
    test: tuple[Ids, Sequence[int]] | None = None
    encoder: Any = None  # what made the ids; handed back on the result, so the caller can save it
    pretrained: Any = None  # `vectors.Pretrained` rows for the embedding (train.vectors), or None


def adversarial_shift(emb: torch.Tensor, size: float) -> torch.Tensor:
    """(B, T, E) embeddings with their loss gradient -> the shift along it, `size` x each text's norm."""
    grad = emb.grad.detach()
    direction = grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]
    return size * emb.detach().flatten(1).norm(dim=1)[:, None, None] * direction


def _score(report: dict[str, Any], monitor: str) -> float:
    """The monitored validation figure, higher is better."""
    return -report["loss"] if monitor == "loss" else report[monitor]


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
        with autocast(device, mixed_precision):
            logits = model(ids, lengths, has_padding([max(1, len(seqs[i])) for i in batch]))
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
    """Build and drop one optimizer: the first one built in a process imports `torch._dynamo`, which
    a person's first training would otherwise wait for (`benchmarks.overhead` times it)."""
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def fit(
    encode: Callable[[bool], Splits],
    *,
    refit: bool = False,
    device: torch.device | None = None,
    should_stop: Callable[[], bool] | None = None,
    group: Group = SOLO,
) -> Iterator[Progress]:
    """The whole training: yields every pass's reports; the last is done, cancelled or failed.

    `encode(everything)` trains a tokenizer and encodes the splits: on the training rows only
    (False), or on every row, the validation share included (True). With `refit`, a first pass
    chooses the epoch count on validation, then a fresh tokenizer and model train on every row for
    that many epochs and that model is kept: more data for the same schedule. Its validation
    figures stay the first pass's, the only honest ones left. Under torchrun every rank calls it with
    its `group`; only rank 0's result holds validation and test figures.
    """
    data = encode(False)
    device = resolve_device(data.cfg.train.device) if device is None else device
    test = None if refit else data.test  # a refit evaluates its own model on the test rows
    first = train(
        data.cfg, *data.train, *data.val, test=test, should_stop=should_stop, device=device, group=group,
        pretrained=data.pretrained,
    )  # fmt: skip
    end = yield from _until_final(first)
    if end.kind != "done" or not refit:
        yield _kept(end, data)
        return
    chosen = end.result
    data = encode(True)
    cfg = override(data.cfg, train__epochs=chosen.best_epoch, train__patience=0)
    second = train(
        cfg, *data.train, [], [], test=data.test, should_stop=should_stop, phase="refit", device=device,
        group=group, pretrained=data.pretrained,
    )  # fmt: skip
    end = yield from _until_final(second)
    if end.kind != "done":
        yield replace(end, epochs_run=chosen.epochs_run)
        return
    merged = _merge_refit(chosen, end.result, len(data.train[0]))
    val = chosen.val or {}
    yield _kept(
        replace(end, result=merged, val_accuracy=val.get("accuracy"), val_macro_f1=val.get("macro_f1")), data
    )


def _until_final(reports: Iterator[Progress]) -> Iterator[Progress]:
    """Pass a training pass's reports on; return its final one instead of yielding it."""
    for report in reports:
        if report.kind in FINAL:
            return report
        yield report
    raise RuntimeError("training ended without a final report")


def _kept(end: Progress, data: Splits) -> Progress:
    """The final report, its result told which configuration and encoder its model belongs to."""
    if end.result is None:
        return end
    return replace(end, result=replace(end.result, config=data.cfg, encoder=data.encoder))


def _merge_refit(chosen: TrainResult, refit: TrainResult, rows: int) -> TrainResult:
    """The refit model with the first pass's validation figures and both passes' time."""
    seconds = chosen.train_seconds + refit.train_seconds
    tokens = chosen.tokens_per_second * chosen.train_seconds + refit.tokens_per_second * refit.train_seconds
    return replace(
        chosen,
        model=refit.model,
        test=refit.test,
        train_seconds=seconds,
        seconds_per_epoch=seconds / (chosen.epochs_run + refit.epochs_run),
        tokens_per_second=tokens / seconds,
        refit={
            "epochs": refit.epochs_run,
            "rows": rows,
            "seconds": refit.train_seconds,
            "history": refit.history,
        },
    )


def train(
    cfg: RunConfig,
    train_seqs: Ids,
    train_y: Sequence[int],
    val_seqs: Ids,
    val_y: Sequence[int],
    *,
    test: tuple[Ids, Sequence[int]] | None = None,
    should_stop: Callable[[], bool] | None = None,
    phase: str = "train",
    device: torch.device | None = None,
    group: Group = SOLO,
    pretrained: Any = None,
) -> Iterator[Progress]:
    """One pass: train `cfg.model` on id sequences; yields progress, a done report holds the result.

    Without validation rows it trains exactly `cfg.train.epochs` epochs and keeps the last
    (averaged) weights: the refit pass, whose epoch count an earlier validated run chose. A loss
    that stops being finite ends the pass with a failed report that says where. In a `group` of
    several ranks each trains on its share of every batch, and rank 0 validates and decides.
    """
    tc, labels = cfg.train, list(cfg.labels)
    if cfg.model.num_classes != len(labels):
        raise ValueError("cfg.model.num_classes must equal the number of labels")
    device = resolve_device(tc.device) if device is None else device
    seed_everything(tc.seed)
    loop = _Loop.build(cfg, train_seqs, train_y, device, group, pretrained)
    report = functools.partial(Progress, epochs=tc.epochs, steps_per_epoch=loop.steps_per_epoch, phase=phase)
    validated = len(val_seqs) > 0 and group.is_main  # the others wait for rank 0's decisions
    best = _Best(tc.monitor)
    history: list[dict[str, Any]] = []
    where = f"{device}" + (f" in {group.world_size} processes" if group.distributed else "")
    message = f"training on {where}"
    if phase == "refit":
        message = f"refitting on all {len(train_seqs)} training rows for {tc.epochs} epochs on {where}"
    yield report("start", epoch=0, step=0, elapsed=0.0, message=message)
    epoch, stopped_early = 0, False
    for epoch in range(1, tc.epochs + 1):
        train_loss = yield from _epoch(loop, epoch, report, should_stop)
        if isinstance(train_loss, Progress):  # cancelled, or the loss diverged
            yield train_loss
            return
        if group.any(not _finite(loop.evaluated)):
            yield _failed(
                report, loop, epoch, f"the weights became NaN or infinite in epoch {epoch}: {_hint(tc)}"
            )
            return
        val = evaluate(loop.evaluated, val_seqs, val_y, labels, loop.amp) if validated else {}
        best.update(epoch, val, loop.evaluated)
        history.append(_record(loop, epoch, train_loss, val))
        elapsed = loop.elapsed()
        yield report(
            "epoch", epoch=epoch, step=loop.steps_per_epoch, elapsed=elapsed,
            eta_seconds=elapsed / epoch * (tc.epochs - epoch), train_loss=train_loss,
            val_loss=val.get("loss"), val_accuracy=val.get("accuracy"), val_macro_f1=val.get("macro_f1"),
            tokens_per_second=history[-1]["tokens_per_second"], best_epoch=best.epoch,
        )  # fmt: skip
        if tc.patience and group.decide(int(best.stale >= tc.patience)):
            stopped_early = True
            break
    best.epoch = group.decide(best.epoch)  # every rank's result names rank 0's choice (a refit needs it)
    # frozen vectors are frozen for the training only: explanations take gradients
    model = best.restore(loop).requires_grad_()
    val_report = evaluate(model, val_seqs, val_y, labels, loop.amp) if validated else None
    tested = test is not None and group.is_main
    test_report = evaluate(model, test[0], test[1], labels, loop.amp) if tested else None
    result = TrainResult(
        model=model,
        val=val_report,
        test=test_report,
        best_epoch=best.epoch,
        epochs_run=epoch,
        train_seconds=loop.train_time,
        seconds_per_epoch=loop.train_time / epoch,
        tokens_per_second=loop.tokens_seen / loop.train_time,
        device=str(device),
        packing=loop.model.packing,
        stopped_early=stopped_early,
        history=history,
        world_size=group.world_size,
    )
    yield report(
        "done", epoch=epoch, step=loop.steps_per_epoch, elapsed=loop.elapsed(), eta_seconds=0.0,
        val_accuracy=val_report["accuracy"] if val_report else None,
        val_macro_f1=val_report["macro_f1"] if val_report else None,
        best_epoch=best.epoch, message="stopped early" if stopped_early else "finished", result=result,
    )  # fmt: skip


@dataclass
class _Loop:
    """What every step of one training pass shares: data, model, optimizer and the clock."""

    tc: TrainConfig
    device: torch.device
    amp: bool  # mixed precision, on CUDA only
    model: TextClassifier
    forward: nn.Module  # the step's forward pass: `_Forward(model)`, in DistributedDataParallel across ranks
    rows: StepRows | None  # the embedding rows each step uses, on the CPU; None: the dense gradient
    group: Group
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: WeightAverage | None  # Polyak averaging: the averaged copy is what is validated and kept
    class_weight: torch.Tensor | None  # (C,) loss weights, inverse to the class frequencies
    seqs: Ids
    lengths: list[int]
    targets: torch.Tensor  # (N,)
    rng: random.Random  # the batches' order
    steps_per_epoch: int
    start: float = field(default_factory=time.perf_counter)
    epoch_start: float = 0.0
    train_time: float = 0.0  # seconds in training steps, validation excluded
    tokens_seen: int = 0

    @classmethod
    def build(
        cls,
        cfg: RunConfig,
        seqs: Ids,
        y: Sequence[int],
        device: torch.device,
        group: Group,
        pretrained: Any = None,
    ) -> _Loop:
        tc = cfg.train
        amp = tc.mixed_precision and device.type == "cuda"
        model = TextClassifier(cfg.model, packing=resolve_packing(tc.packing, device)).to(device)
        if pretrained is not None:
            pretrained.apply(model.embedding)
        rows = StepRows.of(model.embedding.weight)
        # the rows' gradient is averaged apart from DistributedDataParallel's (`_step`)
        forward = group.wrap(_Forward(model, rows), own=["model.embedding.weight"] if rows else [])
        if group.distributed:  # the same initial weights, then each rank its own dropout masks
            torch.manual_seed(tc.seed + group.rank)
        # the fused kernel updates every parameter in one pass instead of a loop over tensors
        fused = device.type in ("cpu", "cuda")
        optimizer = torch.optim.Adam(
            model.parameters(), lr=tc.learning_rate, weight_decay=tc.weight_decay, fused=fused
        )
        # fp16 needs loss scaling; bf16 (Ampere and later) does not
        scaler = torch.amp.GradScaler("cuda", enabled=amp and half_dtype() == torch.float16)
        targets = torch.as_tensor(list(y), dtype=torch.long)
        class_weight = None
        if tc.class_weights:
            counts = torch.bincount(targets, minlength=len(cfg.labels)).float()
            class_weight = (counts.sum() / (len(cfg.labels) * counts.clamp(min=1))).to(device)
        return cls(
            tc=tc,
            device=device,
            amp=amp,
            model=model,
            forward=forward,
            rows=rows,
            group=group,
            optimizer=optimizer,
            scaler=scaler,
            ema=WeightAverage(model, tc.ema_decay) if tc.ema_decay > 0 else None,
            class_weight=class_weight,
            seqs=seqs,
            lengths=[max(1, len(s)) for s in seqs],
            targets=targets,
            rng=random.Random(tc.seed),
            steps_per_epoch=math.ceil(len(seqs) / tc.batch_size),
        )

    @property
    def evaluated(self) -> TextClassifier:
        return self.ema.module if self.ema is not None else self.model

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(), target, weight=self.class_weight, label_smoothing=self.tc.label_smoothing
        )


class _Forward(nn.Module):
    """A step's forward pass as one module call, the form DistributedDataParallel needs to average the
    gradients: (B, T) ids -> (B, T, E) embeddings (shifted by `shift` when given) and (B, C) logits.
    With `rows`, the embeddings are looked up among the step's rows (`StepRows.take`)."""

    def __init__(self, model: TextClassifier, rows: StepRows | None = None) -> None:
        super().__init__()
        self.model = model
        self.rows = rows

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, padded: bool, shift: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.model.embedding(ids) if self.rows is None else self.rows.lookup(ids)  # (B, T, E)
        if torch.is_grad_enabled() and not emb.requires_grad:  # frozen vectors: an adversarial step
            emb.requires_grad_()  # still needs the loss's gradient at the embeddings
        if shift is not None:
            emb = emb + shift
        return emb, self.model.classify(emb, lengths, padded)


def _step(loop: _Loop, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on this rank's share of one batch; returns the share's loss and the sum of
    every loss it backpropagated."""
    tc, model = loop.tc, loop.model
    share = loop.group.share(batch)
    # each rank's mean loss weighted by its share's size, so the ranks' averaged gradient is the
    # gradient of the whole batch's mean, however unevenly the batch divides
    weight = len(share) * loop.group.world_size / len(batch)
    ids, lens = collate([loop.seqs[i] for i in share], loop.device)  # (B, T), (B,)
    target = to_device(loop.targets[share], loop.device)  # (B,)
    padded = has_padding([loop.lengths[i] for i in share])
    if tc.word_dropout > 0:  # real tokens become [UNK] at random
        drop = (torch.rand(ids.shape, device=loop.device) < tc.word_dropout) & (ids > UNK_ID)
        ids = ids.masked_fill(drop, UNK_ID)
    if loop.rows is not None:  # the whole batch's rows, every rank's share: the same on every rank
        loop.rows.take([loop.seqs[i] for i in batch])
    # with an adversarial pass to come, the ranks average the two passes' summed gradient once, after it
    with loop.group.local(loop.forward, tc.adversarial > 0):
        with autocast(loop.device, loop.amp):
            emb, logits = loop.forward(ids, lens, padded)  # (B, T, E), (B, C)
            if tc.adversarial > 0:
                emb.retain_grad()
        loss = loop.loss(logits, target)
        loop.optimizer.zero_grad(set_to_none=True)
        loop.scaler.scale(loss if weight == 1 else loss * weight).backward()
    total = loss.detach()
    if tc.adversarial > 0:
        r = adversarial_shift(emb, tc.adversarial)
        with autocast(loop.device, loop.amp):
            _, adv_logits = loop.forward(ids, lens, padded, r)
        adv_loss = loop.loss(adv_logits, target)
        loop.scaler.scale(adv_loss if weight == 1 else adv_loss * weight).backward()
        total = total + adv_loss.detach()
    params = list(model.parameters())
    if loop.rows is not None:  # the table's gradient is the rows' until `scatter`
        loop.group.average(loop.forward, [loop.rows.leaf.grad])
        params = [loop.rows.leaf] + [p for p in params if p is not loop.rows.table]
    if tc.grad_clip > 0:
        loop.scaler.unscale_(loop.optimizer)
        torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
    if loop.rows is not None:
        loop.rows.scatter()
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    if loop.rows is not None:
        loop.rows.clear()
    if loop.ema is not None:
        loop.ema.update(model)
    return loss.detach(), total


def _epoch(
    loop: _Loop, epoch: int, report: Callable[..., Progress], should_stop: Callable[[], bool] | None
) -> Iterator[Progress]:
    """One epoch of steps, yielding step reports; returns its mean training loss, or the report
    that ends the training (cancelled, or failed when the loss stopped being finite)."""
    tc = loop.tc
    loop.model.train()
    loop.epoch_start = time.perf_counter()
    # kept on the device and read only when reported: an .item() per step would stall a GPU's queue
    loss_sum, seen = torch.zeros((), device=loop.device), 0
    bad_step = torch.zeros((), dtype=torch.long, device=loop.device)  # the first non-finite step; 0: none
    bad_loss = torch.zeros((), device=loop.device)  # its loss
    world = loop.group.world_size
    # every rank draws the same batches from the shared seed and trains on its share of each; a
    # batch too small to give every rank a text (a length bucket's last) is left out
    batches = [b for b in make_batches(loop.lengths, tc.batch_size, loop.rng) if len(b) >= world]
    for step, batch in enumerate(batches, start=1):
        if _stop(loop, step, should_stop):
            return report("cancelled", epoch=epoch, step=step, elapsed=loop.elapsed(), message="cancelled",
                          epochs_run=epoch - 1)  # fmt: skip
        loss, total = _step(loop, batch)
        first_bad = (bad_step == 0) & ~torch.isfinite(total)
        bad_step, bad_loss = torch.where(first_bad, step, bad_step), torch.where(first_bad, total, bad_loss)
        shared = len(loop.group.share(batch))
        loss_sum += loss * shared
        seen += shared
        loop.tokens_seen += sum(loop.lengths[i] for i in batch)  # every rank's, as every rank knows the batch
        if step % tc.log_every == 0 and step < loop.steps_per_epoch:
            if loop.group.any(bool(int(bad_step))):
                return _diverged(report, loop, epoch, int(bad_step), float(bad_loss))
            done = (epoch - 1) * loop.steps_per_epoch + step
            now = loop.elapsed()
            yield report(
                "step", epoch=epoch, step=step, elapsed=now,
                eta_seconds=now / done * (tc.epochs * loop.steps_per_epoch - done),
                train_loss=loss_sum.item() / seen,
                tokens_per_second=loop.tokens_seen / (loop.train_time + time.perf_counter() - loop.epoch_start),
            )  # fmt: skip
    loop.train_time += time.perf_counter() - loop.epoch_start
    if loop.group.any(bool(int(bad_step))):
        return _diverged(report, loop, epoch, int(bad_step), float(bad_loss))
    seen_all = loop.group.total(torch.tensor(float(seen)))
    return loop.group.total(loss_sum).item() / max(seen_all.item(), 1)


def _stop(loop: _Loop, step: int, should_stop: Callable[[], bool] | None) -> bool:
    """Whether to cancel before this step. Ranks decide together, every `log_every` steps: a
    collective every step would make a GPU wait every step."""
    if should_stop is None:
        return False
    if not loop.group.distributed:
        return should_stop()
    return (step - 1) % loop.tc.log_every == 0 and loop.group.any(should_stop())


def _record(loop: _Loop, epoch: int, train_loss: float, val: dict[str, Any]) -> dict[str, Any]:
    """One epoch's line of the history."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val.get("loss"),
        "val_accuracy": val.get("accuracy"),
        "val_macro_f1": val.get("macro_f1"),
        "tokens_per_second": loop.tokens_seen / loop.train_time,
        "seconds": time.perf_counter() - loop.epoch_start,  # this epoch, validation included
        "tokens_seen": loop.tokens_seen,  # so far, as `train_seconds`: throughput between any two epochs
        "train_seconds": loop.train_time,
    }


class _Best:
    """The epoch with the best validation figure so far and its weights (a CPU copy)."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.score = -math.inf
        self.epoch = 0
        self.stale = 0  # epochs since the best one
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val: dict[str, Any], model: TextClassifier) -> None:
        if not val:  # nothing to choose by: the last epoch is kept
            self.epoch = epoch
        elif _score(val, self.monitor) > self.score:
            self.score, self.epoch, self.stale = _score(val, self.monitor), epoch, 0
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.stale += 1

    def restore(self, loop: _Loop) -> TextClassifier:
        """The training model holding the kept weights (averaged, when averaging), in eval mode."""
        state = self.state
        if state is None:  # no validation: the last weights
            state = {k: v.detach().clone() for k, v in loop.evaluated.state_dict().items()}
        loop.model.load_state_dict(state)
        return loop.model.eval()


def _finite(model: TextClassifier) -> bool:
    return bool(torch.stack([p.isfinite().all() for p in model.parameters()]).all())


def _hint(tc: TrainConfig) -> str:
    return "lower the learning rate" + (" or the adversarial size" if tc.adversarial > 0 else "")


def _failed(report: Callable[..., Progress], loop: _Loop, epoch: int, why: str) -> Progress:
    return report("failed", epoch=epoch, step=0, elapsed=loop.elapsed(), message=why, epochs_run=epoch - 1)


def _diverged(report: Callable[..., Progress], loop: _Loop, epoch: int, step: int, loss: float) -> Progress:
    what = "NaN" if math.isnan(loss) else "infinite"
    where = f"epoch {epoch}, step {step}"
    if not step:  # another rank's loss: this one's stayed finite
        what, where = "NaN or infinite", f"epoch {epoch} in another process"
    why = f"the loss became {what} at {where}: {_hint(loop.tc)}"
    return replace(_failed(report, loop, epoch, why), step=step)
