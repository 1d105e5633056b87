"""Padded, paired and packed batches: `python -m benchmarks.packing [--device cpu] [--steps 60]`.

Times forward + backward of the real TextClassifier over length-bucketed batches drawn from
SST-2's length distribution (or a synthetic one when the data is absent), for a unidirectional
and a bidirectional LSTM, every path (`paired` only differs from `padded` for the bidirectional
one). On CUDA under bf16 autocast, as training runs there. `devices.resolve_packing("auto")`
follows these figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import time
from pathlib import Path

import torch

from lstm_demo.batching import collate, make_batches
from lstm_demo.config import ModelConfig
from lstm_demo.model import TextClassifier

DATA = Path(os.environ.get("LSTM_DEMO_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def lengths() -> list[int]:
    path = DATA / "sst2" / "train.csv"
    if path.exists():
        with open(path, newline="") as f:
            return [max(1, len(r["text"].split())) for r in csv.DictReader(f)]
    rng = random.Random(0)
    return [max(1, int(rng.gauss(20, 9))) for _ in range(7000)]


def time_path(bidirectional: bool, packing: str, device: torch.device, steps: int, batch_size: int) -> float:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=20000, num_classes=2, bidirectional=bidirectional, pooling="max")
    model = TextClassifier(cfg, packing=packing).to(device).train()
    rng = random.Random(0)
    lens = lengths()
    batches = make_batches(lens, batch_size, rng)[:steps]
    seqs = [[rng.randrange(2, 20000) for _ in range(n)] for n in lens]
    times = []
    for i, batch in enumerate(batches):
        ids, lengths_ = collate([seqs[j] for j in batch], device)
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(ids, lengths_)
        logits.float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 5:
            times.append(time.perf_counter() - t)
    tokens = sum(len(seqs[j]) for b in batches[5:] for j in b)
    return tokens / sum(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    device = torch.device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}"
    )
    print(
        "| encoder | padded tokens/s | paired tokens/s | packed tokens/s | padded / paired | padded / packed |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for bi in (False, True):
        rates = {
            packing: statistics.median(
                time_path(bi, packing, device, args.steps, args.batch_size) for _ in range(args.repeats)
            )
            for packing in (("padded", "paired", "packed") if bi else ("padded", "packed"))
        }
        name = "BiLSTM 128" if bi else "LSTM 128"
        padded, packed, paired = rates["padded"], rates["packed"], rates.get("paired")
        paired_cells = (f"{paired:,.0f}", f"{padded / paired:.2f}") if paired else ("(= padded)", "-")
        print(
            f"| {name} | {padded:,.0f} | {paired_cells[0]} | {packed:,.0f} | {paired_cells[1]} "
            f"| {padded / packed:.2f} |"
        )


if __name__ == "__main__":
    main()
