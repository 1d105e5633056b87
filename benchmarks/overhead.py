"""Host-side costs behind three choices in the training path: `python -m benchmarks.overhead`.

1. A recurrent call through `torch.func.functional_call` (weights swapped into the module) against
   the fused kernel called directly, as `RecurrentEncoder._recur` does: a small bidirectional LSTM
   (batch 32, 8 steps, 8 units), where the call's host time is most of its cost.
2. A dropout mask drawn by `F.dropout` (`bernoulli_`) against `model.dropout` (`torch.rand` on the
   CPU), for the shapes of a `default` step on SST-2: embeddings (32, 19, 128) and one
   hidden-to-hidden matrix (512, 128).
3. The first and the second optimizer built in a fresh process (`train.warm_up` builds the first
   one when the app starts, so a person's first training does not).
Medians of repeated timings on the CPU; prints a Markdown table.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lstm_demo.model import dropout

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

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| measure | figure | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
