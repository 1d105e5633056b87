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

from .names import PAD_ID, UNK_ID


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

    def wrap(self, module: nn.Module, table: nn.Parameter | None = None) -> nn.Module:
        """The module DistributedDataParallel averages the gradients of; itself in a group of one.

        `table`: an embedding's weight among its parameters. On the CPU (gloo) only the rows some
        rank's batch used travel (`SparseRows`): the others' gradient is zero on every rank.
        """
        if not self.distributed:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        options = {}
        if self.device.type == "cpu":
            # the whole model one bucket, one all-reduce per step: two (DistributedDataParallel's small
            # first bucket, then the rest) paid gloo's latency twice, with no spare core to overlap
            # them with; the gradients views of that bucket, not copied into it and back at each pass
            size = sum(p.numel() * p.element_size() for p in module.parameters()) / 2**20 + 1
            options = {"bucket_cap_mb": size, "gradient_as_bucket_view": True}
        wrapped = nn.parallel.DistributedDataParallel(module, device_ids=ids, **options)
        if table is not None and table.requires_grad and self.device.type == "cpu":
            wrapped.sparse_rows = SparseRows(table)
            wrapped.register_comm_hook(wrapped.sparse_rows, _sparse_rows_hook)
        return wrapped

    def local(self, module: nn.Module, keep: bool = True) -> contextlib.AbstractContextManager:
        """With `keep`, a forward and backward pass whose gradient stays on this rank, added to by the
        next pass, whose backward averages the sum across the ranks (one exchange for both)."""
        return module.no_sync() if keep and self.distributed else contextlib.nullcontext()

    def used(self, module: nn.Module, seqs: Sequence[Sequence[int]], batch: Sequence[int]) -> None:
        """Before a step's backward passes: the texts `seqs[i]` of the whole batch, every rank's share
        (each rank holds the batch), for `SparseRows`. The same on every rank, so no rank need ask
        another; nothing to do without `SparseRows` (one process, or CUDA)."""
        rows = getattr(module, "sparse_rows", None)
        if rows is not None:
            rows.union([seqs[i] for i in batch])

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


class SparseRows:
    """The rows of an embedding table that the step's batch uses (`union`), for `_sparse_rows_hook`:
    the batch's ids, [UNK] (which word dropout puts anywhere) and [PAD]. Every rank holds the batch and
    finds the same rows; an all-reduce of a mask of each rank's own rows cost 2.7-3.0 ms of a 45 ms step.

    A step touches a few hundred of the table's rows, and every other row's gradient is zero on every
    rank, yet DistributedDataParallel averages the whole table: at SST-2's 13,124 words x 128 that is
    6.7 MB per backward pass, which held 2 CPU ranks to 66% of one process's tokens/s against 83% with
    a 1,000-word vocabulary. The average of the used rows alone is the same, to the bit.
    """

    def __init__(self, table: nn.Parameter) -> None:
        self.table = table
        self.rows: torch.Tensor | None = None  # sorted row numbers; None: every row (no step seen yet)

    def union(self, seqs: Sequence[Sequence[int]]) -> None:
        mask = torch.zeros(self.table.shape[0], dtype=torch.bool)
        mask[[PAD_ID, UNK_ID]] = True
        mask[torch.tensor([i for s in seqs for i in s], dtype=torch.long)] = True
        self.rows = mask.nonzero().reshape(-1)


def _sparse_rows_hook(state: SparseRows, bucket):  # type: ignore[no-untyped-def]
    """DistributedDataParallel's average of a gradient bucket (a `dist.GradBucket`; DDP refuses a hook
    whose annotations are strings, as this module's are), sending only the used rows of the table when
    the bucket holds it (its parameters lie in the flat buffer in order). Returns a future of it."""
    buffer, world = bucket.buffer(), dist.get_world_size()
    params = bucket.parameters()
    at = next((i for i, p in enumerate(params) if p.data_ptr() == state.table.data_ptr()), None)
    if at is None or state.rows is None:  # DistributedDataParallel's own average
        return (
            dist.all_reduce(buffer.div_(world), async_op=True).get_future().then(lambda done: done.value()[0])
        )
    rows = state.rows
    start = sum(p.numel() for p in params[:at])
    end = start + state.table.numel()
    table = buffer[start:end].view(state.table.shape)
    packed = torch.cat([buffer[:start], table.index_select(0, rows).reshape(-1), buffer[end:]]).div_(world)

    def unpack(done: torch.futures.Future[list[torch.Tensor]]) -> torch.Tensor:
        averaged = done.value()[0]
        n = rows.numel() * table.shape[1]
        buffer[:start].copy_(averaged[:start])
        table.index_copy_(0, rows, averaged[start : start + n].view(-1, table.shape[1]))
        buffer[end:].copy_(averaged[start + n :])
        return buffer

    return dist.all_reduce(packed, async_op=True).get_future().then(unpack)


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
