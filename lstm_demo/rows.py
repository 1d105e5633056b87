"""The embedding rows a training step uses, as a small tensor of their own (CPU training).

A step's texts use a few hundred of an embedding table's rows, yet autograd gives the table a dense
gradient: every backward pass fills a zero table the table's size, the adversarial pass adds a
second one into it, clipping reads it whole, and the next step frees it and allocates it again.
On a CPU that is a fixed share of a small LSTM's step: it does not shrink with the batch, so it
weighs most on the half batches of data parallel ranks (`benchmarks/README.md`).

`StepRows` gathers the rows a batch uses into a leaf of their own (`take`), which the step's
forward passes look their embeddings up in (`lookup`), so backward passes fill and add only those
rows. Their gradient, averaged across ranks and clipped like any other, is then written into a
dense gradient kept between steps (`scatter`), the one `nn.Embedding` would have given, which the
optimizer reads; only the rows written are cleared after its step (`clear`). Under torchrun the
rows are the whole batch's, every rank's share included, so every rank holds the same rows and one
all-reduce of the small tensor averages them (`distributed.Group.average`).

Not on a GPU: there the dense gradient costs little, and `torch.unique` would wait for the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .names import PAD_ID, UNK_ID


class StepRows:
    def __init__(self, table: nn.Parameter) -> None:
        self.table = table  # (V, E)
        self.grad = torch.zeros_like(table)  # the table's gradient: zero but at the last step's rows
        self.ids: torch.Tensor  # (U,) the step's rows of the table, sorted
        self.leaf: torch.Tensor  # (U, E) their embeddings, a leaf of their own
        self.pad: int  # [PAD]'s place among `ids`
        self.take(())

    @classmethod
    def of(cls, table: nn.Parameter) -> StepRows | None:
        """For a trained table on the CPU; None where the table is frozen or on another device."""
        return cls(table) if table.requires_grad and table.device.type == "cpu" else None

    def take(self, texts: Sequence[Sequence[int]]) -> None:
        """Before a step: the rows of the batch's texts, [PAD] (padding) and [UNK] (word dropout's)."""
        self.ids = torch.unique(torch.tensor([PAD_ID, UNK_ID, *(i for text in texts for i in text)]))
        self.leaf = self.table.detach().index_select(0, self.ids).requires_grad_()
        self.pad = int(torch.searchsorted(self.ids, PAD_ID))

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids among the step's rows -> (B, T, E) embeddings, as `nn.Embedding` gives them,
        [PAD]'s gradient zero as its `padding_idx` has it."""
        return F.embedding(torch.searchsorted(self.ids, ids), self.leaf, padding_idx=self.pad)

    def scatter(self) -> None:
        """After the backward passes, averaging and clipping: the rows' gradient as the table's."""
        self.grad.index_copy_(0, self.ids, self.leaf.grad)
        self.table.grad = self.grad

    def clear(self) -> None:
        """After the optimizer's step: the rows written are zero again, as every other row stayed."""
        self.grad.index_fill_(0, self.ids, 0.0)
