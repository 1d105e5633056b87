"""Data parallel training: one step on two gloo ranks equals one step of a single process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from lstm_demo import distributed
from lstm_demo.config import ModelConfig, RunConfig, TrainConfig
from lstm_demo.distributed import SOLO, Group
from lstm_demo.names import PAD_ID, UNK_ID
from lstm_demo.train import _Loop, _step

# (name, encoder, bidirectional, batch size, adversarial, vocabulary): an odd batch splits unevenly
# across two ranks; with 400 words a batch uses few of the embedding's rows, and only those travel
CASES = [
    (f"{enc}-{'bi' if bi else 'uni'}", enc, bi, 8, 0.0, 20)
    for enc in ("lstm", "gru", "rnn")
    for bi in (False, True)
] + [
    ("lstm-bi-odd-adversarial", "lstm", True, 7, 0.5, 20),
    ("lstm-bi-adversarial-400-words", "lstm", True, 8, 0.5, 400),
]


def _config(encoder: str, bidirectional: bool, adversarial: float, vocab: int = 20) -> RunConfig:
    model = ModelConfig(
        encoder=encoder,
        embedding_dim=6,
        hidden_size=5,
        bidirectional=bidirectional,
        embedding_dropout=0.0,
        recurrent_dropout=0.0,
        vocab_size=vocab,
        num_classes=3,
    )
    train = TrainConfig(batch_size=8, learning_rate=0.01, adversarial=adversarial, device="cpu", seed=3)
    return RunConfig(model=model, train=train, labels=("a", "b", "c"))


def _data(n: int, vocab: int = 20) -> tuple[list[list[int]], list[int]]:
    """Texts of different lengths, so every share of a batch holds padding."""
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(2, vocab, (2 + i % 5,), generator=g).tolist() for i in range(n)]
    return seqs, [i % 3 for i in range(n)]


def _one_step(
    group: Group, name: str, encoder: str, bi: bool, batch: int, adversarial: float, vocab: int
) -> dict:
    torch.manual_seed(0)
    seqs, y = _data(batch, vocab)
    loop = _Loop.build(_config(encoder, bi, adversarial, vocab), seqs, y, torch.device("cpu"), group)
    for _ in range(2):  # a second step: the gradients reset and the optimizer state carried, alike
        _step(loop, list(range(batch)))
    state = {f"param.{k}": v.detach().clone() for k, v in loop.model.named_parameters()}
    state |= {f"grad.{k}": v.grad.clone() for k, v in loop.model.named_parameters()}
    state["rows"] = loop.rows.ids.clone()  # the embedding rows whose gradient the step computed
    return state


def _rank(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    group = distributed.init(torch.device("cpu"))
    try:
        for case in CASES:
            save_file(_one_step(group, *case), os.path.join(out, f"{case[0]}.{rank}.safetensors"))
    finally:
        group.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case's step, run once on two gloo ranks. Forked, after one step here, the ranks start with
    torch and its optimizer's imports already loaded: a fresh interpreter per rank takes seconds."""
    _one_step(SOLO, *CASES[0])
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_rank, args=(_free_port(), str(out)), nprocs=2, join=True, start_method="fork")
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_steps_on_two_ranks_equal_steps_of_the_whole_batch(ranks_out: Path, case: tuple) -> None:
    single = _one_step(SOLO, *case)
    for rank in (0, 1):
        ddp = load_file(ranks_out / f"{case[0]}.{rank}.safetensors")
        # the whole batch's ids, [PAD] and [UNK] (word dropout's), found alike on every rank: only the
        # rows the batch used travelled, and all of them did
        used = sorted({PAD_ID, UNK_ID} | {t for text in _data(case[3], case[5])[0] for t in text})
        assert ddp["rows"].tolist() == used
        assert ddp.keys() == single.keys()
        for key, value in single.items():
            torch.testing.assert_close(ddp[key], value, rtol=0, atol=1e-6, msg=f"rank {rank}: {key}")
    # the step moved the weights: equal parameters are not equal by never changing
    torch.manual_seed(0)
    start = _Loop.build(
        _config(*case[1:3], *case[4:]), *_data(case[3], case[5]), torch.device("cpu"), SOLO
    ).model
    moved = [not torch.equal(p, single[f"param.{k}"]) for k, p in start.named_parameters()]
    assert any(moved)


def test_each_rank_trains_on_a_disjoint_share_of_every_batch() -> None:
    batch = list(range(11))
    shares = [Group(rank=r, world_size=3).share(batch) for r in range(3)]
    assert sorted(i for s in shares for i in s) == batch
    assert [len(s) for s in shares] == [4, 4, 3]


def test_a_group_of_one_changes_nothing() -> None:
    module = torch.nn.Linear(2, 2)
    assert SOLO.wrap(module) is module
    assert SOLO.share([3, 1, 2]) == [3, 1, 2]
    assert SOLO.any(True) and not SOLO.any(False)
    assert SOLO.decide(7) == 7
    assert SOLO.text("{}") == "{}"


def test_only_the_distributed_module_imports_torch_distributed() -> None:
    root = Path(__file__).resolve().parents[1] / "lstm_demo"
    importers = {
        p.name
        for p in root.rglob("*.py")
        if any(
            line.lstrip().startswith(
                ("import torch.distributed", "from torch.distributed", "from torch import distributed")
            )
            for line in p.read_text().splitlines()
        )
    }
    assert importers == {"distributed.py"}
