"""Length-bucketed batches and their padding, on synthetic lengths and id lists."""

from __future__ import annotations

import random

import pytest
import torch

from lstm_demo.batching import collate, make_batches


def _padding(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("n, batch_size", [(1, 4), (37, 8), (1000, 16), (2000, 8)])
@pytest.mark.parametrize("shuffled", [False, True])
def test_make_batches_covers_every_index_once_and_buckets_by_length(n, batch_size, shuffled):
    lengths = [random.Random(i).randint(1, 60) for i in range(n)]
    batches = make_batches(lengths, batch_size, random.Random(0) if shuffled else None)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)
    if not shuffled:
        assert [lengths[i] for b in batches for i in b] == sorted(lengths)
    if n >= 1000:  # far less padding than batches of random texts
        unbucketed = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
        assert _padding(batches, lengths) < 0.1 * _padding(unbucketed, lengths)


def test_make_batches_is_seeded_and_varies_between_epochs():
    lengths = [random.Random(i).randint(1, 30) for i in range(300)]
    rng_a, rng_b = random.Random(5), random.Random(5)
    epoch1 = make_batches(lengths, 8, rng_a)
    assert epoch1 == make_batches(lengths, 8, rng_b)
    assert make_batches(lengths, 8, rng_a) != epoch1


def test_collate_right_pads_with_zero_and_gives_an_empty_text_one_unk():
    ids, lengths = collate([[5, 6, 7], [], [8]], torch.device("cpu"))
    assert ids.tolist() == [[5, 6, 7], [1, 0, 0], [8, 0, 0]]
    assert lengths.tolist() == [3, 1, 1]
