"""Data parallel training across processes, as torchrun starts them: the only module that imports
`torch.distributed`.

Under torchrun (`RANK`, `WORLD_SIZE`, `LOCAL_RANK` in the environment) `init` joins the process group
(gloo on the CPU, NCCL on CUDA with one GPU per rank) and returns a `Group` that the training loop
asks for the few things ranks must agree on: the model wrapped in `DistributedDataParallel`, each
rank's share of a batch, sums of figures, and the decisions rank 0 takes (stop, early stopping, the
tokenizer it trained). Without torchrun `init` returns a group of one whose methods change nothing,
so the loop reads the same either way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # this rank's device (cuda:LOCAL_RANK under NCCL)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that validates, decides, and writes the store and the model directory."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: nn.Module, own: Sequence[str] = ()) -> nn.Module:
        """The module DistributedDataParallel averages the gradients of; itself in a group of one.

        `own`: names of parameters whose gradients the caller averages itself, such as an embedding
        table whose step rows stand in for it (`rows.StepRows`): DistributedDataParallel leaves them
        out (they are made equal here, as it makes its own) and holds its gradients back until the
        caller's `average`, which sends both in one all-reduce.
        """
        if not self.distributed:
            return module
        if own:
            nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, list(own))
            for name, p in module.named_parameters():
                if name in own:
                    dist.broadcast(p.data, src=0)
        ids = [self.device.index] if self.device.type == "cuda" else None
        options = {}
        if self.device.type == "cpu":
            # the whole model one bucket, one all-reduce per step: two (DistributedDataParallel's small
            # first bucket, then the rest) paid gloo's latency twice, with no spare core to overlap
            # them with; the gradients views of that bucket, not copied into it and back at each pass
            size = sum(p.numel() * p.element_size() for n, p in module.named_parameters() if n not in own)
            options = {"bucket_cap_mb": size / 2**20 + 1, "gradient_as_bucket_view": True}
        wrapped = nn.parallel.DistributedDataParallel(module, device_ids=ids, **options)
        if own:
            wrapped.held = _Held()
            wrapped.register_comm_hook(wrapped.held, _hold)
        return wrapped

    def local(self, module: nn.Module, keep: bool = True) -> contextlib.AbstractContextManager:
        """With `keep`, a forward and backward pass whose gradient stays on this rank, added to by the
        next pass, whose backward averages the sum across the ranks (one exchange for both)."""
        return module.no_sync() if keep and self.distributed else contextlib.nullcontext()

    def average(self, module: nn.Module, grads: Sequence[torch.Tensor]) -> None:
        """After a step's last backward pass: the gradients a module wrapped with `own` held back and
        `grads` (those of its `own` parameters, or what stands in for them), averaged across the
        ranks in place in one all-reduce: each collective pays the backend's latency once more,
        whatever its size, and gloo's on loopback is a few percent of a small model's step."""
        if not self.distributed:
            return
        held = module.held
        tensors, held.buckets = [*held.buckets, *grads], []
        flat = torch.cat([t.reshape(-1) for t in tensors]).div_(self.world_size)
        dist.all_reduce(flat)
        at = 0
        for t in tensors:
            t.copy_(flat[at : at + t.numel()].view_as(t))
            at += t.numel()

    def share(self, batch: list[int]) -> list[int]:
        """This rank's disjoint part of a batch every rank holds: a stride, so that length-sorted
        batches give every rank texts of about the same lengths (and about the same work)."""
        return batch[self.rank :: self.world_size]

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (a stop asked for, a loss gone NaN)."""
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self._wire)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def decide(self, value: int) -> int:
        """Rank 0's value on every rank (its early stopping, its best epoch)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.long, device=self._wire)
        dist.broadcast(t, src=0)
        return int(t.item())

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of a tensor over the ranks."""
        if not self.distributed:
            return value
        t = value.detach().to(self._wire, torch.float64)
        dist.all_reduce(t)
        return t.to(value.device, value.dtype)

    def text(self, text: str | None) -> str:
        """Rank 0's text on every rank; the others pass None (a tokenizer's JSON: its training is not
        deterministic, so each rank training its own could disagree on the ids)."""
        if not self.distributed:
            assert text is not None
            return text
        data = (text or "").encode() if self.is_main else b""
        size = torch.tensor([len(data)], dtype=torch.long, device=self._wire)
        dist.broadcast(size, src=0)
        buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=self._wire)
        if self.is_main:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buf, src=0)
        return buf.cpu().numpy().tobytes().decode()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def _wire(self) -> torch.device:
        """Where collectives' tensors live: NCCL moves CUDA tensors only, gloo CPU ones."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")


class _Held:
    """The gradient buckets DistributedDataParallel has handed `_hold` since the last `Group.average`."""

    def __init__(self) -> None:
        self.buckets: list[torch.Tensor] = []


def _hold(state: _Held, bucket):  # type: ignore[no-untyped-def]
    """A DistributedDataParallel comm hook (a `dist.GradBucket`; DDP refuses a hook whose annotations
    are strings, as this module's are) that averages nothing yet, as torch's own `noop_hook`: it keeps
    the bucket for `Group.average` and returns it, done, to the backward pass."""
    state.buckets.append(bucket.buffer())
    done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    done.set_result(bucket.buffer())
    return done


def launched() -> bool:
    """Whether torchrun started this process as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> Group:
    """Join torchrun's process group when there is one; `device` is where a single process trains
    (a CUDA device becomes this rank's own GPU, `cuda:LOCAL_RANK`)."""
    if not launched():
        return Group(device=device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"training across processes runs on the CPU or CUDA, not {device.type}")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Group(rank=rank, world_size=world, device=device)


SOLO = Group()  # one process: every method above leaves things as they are
