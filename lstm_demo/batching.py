"""Length-bucketed batches of token-id lists, and their padding into tensors."""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from .devices import to_device
from .names import PAD_ID, UNK_ID


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
    """Right-pad id lists with [PAD]; an empty text becomes one [UNK]."""
    seqs = [s if len(s) else [UNK_ID] for s in seqs]
    T = max(len(s) for s in seqs)
    ids = torch.tensor([list(s) + [PAD_ID] * (T - len(s)) for s in seqs], dtype=torch.long)  # (B, T)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)  # (B,)
    return to_device(ids, device), to_device(lengths, device)


def has_padding(lengths: Sequence[int]) -> bool:
    """Whether a batch of these lengths holds padding (length-bucketed batches often do not)."""
    return min(lengths) != max(lengths)
