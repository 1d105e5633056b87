"""Host-side costs behind four choices in the training path: `python -m benchmarks.overhead`.

1. A recurrent call through `torch.func.functional_call` (weights swapped into the module) against
   the fused kernel called directly, as `RecurrentEncoder._recur` does: a small bidirectional LSTM
   (batch 32, 8 steps, 8 units), where the call's host time is most of its cost.
2. A dropout mask drawn by `F.dropout` (`bernoulli_`) against `model.dropout` (`torch.rand` on the
   CPU), for the shapes of a `default` step on SST-2: embeddings (32, 19, 128) and one
   hidden-to-hidden matrix (512, 128).
3. The first and the second optimizer built in a fresh process (`train.warm_up` builds the first
   one when the app starts, so a person's first training does not).
4. A whole `default` training step (batch 32; SST-2's vocabulary size and text lengths, words drawn
   by Zipf's law) with the embedding's step rows (`rows.StepRows`) against the table's dense
   gradient, each in fresh processes taken in turn, on 1 thread and on 2 (a torchrun rank's and one
   process's threads).
Medians of repeated timings on the CPU; prints a Markdown table.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lstm_demo.config import override, preset
from lstm_demo.distributed import SOLO
from lstm_demo.model import dropout
from lstm_demo.train import _Forward, _Loop, _step

VOCAB = 13_833  # SST-2's training rows through `default`'s tokenizer

FIRST_OPTIMIZER = """
import time, torch
p = [torch.nn.Parameter(torch.zeros(1))]
t = time.perf_counter(); torch.optim.Adam(p); first = time.perf_counter() - t
t = time.perf_counter(); torch.optim.Adam(p); second = time.perf_counter() - t
print(first, second)
"""


def micros(fn: Callable[[], object], calls: int = 500, repeats: int = 5) -> float:
    """Median over `repeats` of the mean microseconds per call."""
    for _ in range(20):
        fn()
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(runs)


def time_steps(threads: int, dense: bool, steps: int = 120) -> float:
    """Mean ms per `default` step in this process, after 10 untimed ones: with the step rows, or
    with `dense` the table's own gradient (a training is a process of its own, so each kind is
    timed in a fresh one: `step_milliseconds`)."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    zipf = 1.0 / torch.arange(1, VOCAB - 1, dtype=torch.float64)
    lengths = torch.randint(3, 36, ((steps + 10) * 32,), generator=g).sort().values  # a bucket's alike
    texts = [(torch.multinomial(zipf, int(n), replacement=True, generator=g) + 2).tolist() for n in lengths]
    cfg = override(preset("default"), model__vocab_size=VOCAB, model__num_classes=2, train__device="cpu")
    cfg = replace(cfg, labels=("negative", "positive"))
    loop = _Loop.build(cfg, texts, [i % 2 for i in range(len(texts))], torch.device("cpu"), SOLO)
    if dense:
        loop.rows, loop.forward = None, _Forward(loop.model)
    batches = [list(range(at, at + 32)) for at in range(0, len(texts), 32)]
    for batch in batches[:10]:
        _step(loop, batch)
    began = time.perf_counter()
    for batch in batches[10:]:
        _step(loop, batch)
    return (time.perf_counter() - began) / steps * 1000


def step_milliseconds(threads: int, rounds: int = 3) -> tuple[list[float], list[float]]:
    """ms per step with the step rows and with the dense gradient, `rounds` fresh processes each, in turn."""
    code = "import sys; from benchmarks.overhead import time_steps; print(time_steps(int(sys.argv[1]), sys.argv[2] == 'dense'))"
    times: dict[str, list[float]] = {"rows": [], "dense": []}
    for _ in range(rounds):
        for kind in times:
            out = subprocess.run(
                [sys.executable, "-c", code, str(threads), kind], capture_output=True, text=True, check=True
            )
            times[kind].append(float(out.stdout))
    return times["rows"], times["dense"]


def main() -> None:
    rows = []
    rnn = nn.LSTM(8, 8, batch_first=True, bidirectional=True)
    x = torch.randn(32, 8, 8)
    weights = dict(rnn.named_parameters())
    flat = [weights[n] for n in rnn._flat_weights_names]

    def direct() -> object:
        h0 = x.new_zeros(2, 32, 8)
        return torch.lstm(x, (h0, h0), flat, True, 1, 0.0, True, True, True)

    swapped, called = micros(lambda: functional_call(rnn, weights, (x,))), micros(direct)
    rows.append(("small BiLSTM call: functional_call / direct", f"{swapped:.0f} / {called:.0f} µs",
                 f"{swapped - called:.0f} µs saved per call"))  # fmt: skip

    for name, shape in (("embeddings (32, 19, 128)", (32, 19, 128)), ("w_hh (512, 128)", (512, 128))):
        t = torch.randn(shape)
        slow = micros(lambda t=t: F.dropout(t, 0.3, True), calls=200)
        fast = micros(lambda t=t: dropout(t, 0.3, True), calls=200)
        rows.append((f"dropout mask, {name}: F.dropout / model.dropout", f"{slow:.0f} / {fast:.0f} µs",
                     f"{slow / fast:.1f}x"))  # fmt: skip

    out = subprocess.run([sys.executable, "-c", FIRST_OPTIMIZER], capture_output=True, text=True, check=True)
    first, second = (float(v) for v in out.stdout.split())
    rows.append(("first / second optimizer built in a fresh process", f"{first:.2f} s / {second * 1e6:.0f} µs",
                 "the first imports torch._dynamo"))  # fmt: skip

    threads = torch.get_num_threads()
    for n in (1, 2):
        fast, slow = step_milliseconds(n)
        each = " / ".join(f"{d:.1f}:{r:.1f}" for d, r in zip(slow, fast, strict=True))
        rows.append((f"`default` step, {n} thread{'s' if n > 1 else ''}: dense table gradient / step rows, "
                     "median of 3 processes each", f"{statistics.median(slow):.1f} / {statistics.median(fast):.1f} ms",
                     f"{statistics.median(slow) / statistics.median(fast):.2f}x (in turn, dense:rows {each})"))  # fmt: skip

    print(f"torch {torch.__version__}, {threads} threads")
    print("| measure | figure | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
