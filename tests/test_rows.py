"""A CPU step's embedding rows: the same training as the table's dense gradient, for less work."""

from __future__ import annotations

import pytest
import torch

from lstm_demo import train
from lstm_demo.config import ModelConfig, RunConfig, TrainConfig
from lstm_demo.distributed import SOLO
from lstm_demo.names import PAD_ID, UNK_ID
from lstm_demo.rows import StepRows
from lstm_demo.train import _Loop, _step

VOCAB = 300


def _config(**train_options) -> RunConfig:
    model = ModelConfig(
        embedding_dim=8, hidden_size=6, bidirectional=True, vocab_size=VOCAB, num_classes=2,
        embedding_dropout=0.0, recurrent_dropout=0.0, dropout=0.0,
    )  # fmt: skip
    train_cfg = TrainConfig(batch_size=6, learning_rate=0.05, device="cpu", seed=5, **train_options)
    return RunConfig(model=model, train=train_cfg, labels=("a", "b"))


def _texts() -> tuple[list[list[int]], list[int]]:
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(2, VOCAB, (1 + i % 6,), generator=g).tolist() for i in range(18)]
    return seqs, [i % 2 for i in range(18)]


def _steps(cfg: RunConfig) -> tuple[dict[str, torch.Tensor], _Loop]:
    torch.manual_seed(0)
    loop = _Loop.build(cfg, *_texts(), torch.device("cpu"), SOLO)
    for batch in ([0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17]):
        _step(loop, batch)
    return {k: v.detach().clone() for k, v in loop.model.named_parameters()}, loop


@pytest.mark.parametrize(
    "options",
    [
        {},
        # the second pass adds into the rows' gradient; a small clip norm clips every step
        {"adversarial": 0.5, "grad_clip": 0.05},
        # [UNK] rows from word dropout; weight decay and momentum move rows no batch used
        {"word_dropout": 0.3, "weight_decay": 0.01, "ema_decay": 0.9},
    ],
    ids=["plain", "adversarial-clipped", "word-dropout-decay"],
)
def test_steps_on_the_used_rows_equal_steps_on_the_whole_table(monkeypatch, options) -> None:
    rows, loop = _steps(_config(**options))
    assert loop.rows is not None
    monkeypatch.setattr(train.StepRows, "of", classmethod(lambda cls, table: None))
    dense, reference = _steps(_config(**options))
    assert reference.rows is None
    for name, value in dense.items():
        torch.testing.assert_close(rows[name], value, rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(rows["embedding.weight"], _Loop.build(
        _config(**options), *_texts(), torch.device("cpu"), SOLO).model.embedding.weight)  # fmt: skip


def test_the_rows_are_the_batchs_with_pad_and_unk_and_only_they_keep_a_gradient() -> None:
    seqs, _ = _texts()
    _, loop = _steps(_config())
    used = sorted({PAD_ID, UNK_ID} | {t for text in seqs[12:18] for t in text})
    assert loop.rows.ids.tolist() == used
    # between steps the table's kept gradient is zero everywhere, the last step's rows cleared too
    assert not loop.rows.grad.any()


def test_a_frozen_table_keeps_the_plain_lookup() -> None:
    table = torch.nn.Parameter(torch.zeros(5, 3), requires_grad=False)
    assert StepRows.of(table) is None
    assert StepRows.of(torch.nn.Parameter(torch.zeros(5, 3))) is not None
