"""How fast and how faithful the explanations are.

    python -m benchmarks.explain_bench                    # latency: IG (50 steps) + gates + decision path
    python -m benchmarks.explain_bench --faithfulness     # trains `default` on SST-2, 200 test sentences
    python -m benchmarks.explain_bench --faithfulness --home DIR --run RUN_ID   # reuse a trained run

Latency is measured on the CPU for a 40-token sentence with the `default` preset's architecture
(BiLSTM 128, max pooling); the weights do not change the cost, so without `--run` an untrained
model with SST-2's vocabulary stands in. Target: median under 300 ms.

Faithfulness trains the `default` preset through the service on SST-2's train split (dev for
validation) unless `--run` names a finished run, then reports ERASER comprehensiveness and
sufficiency for every method and a random ordering on 200 test sentences, and the share of texts
whose IG convergence delta is within 5% of F(x) - F(baseline), for `ig` (adaptive nodes) and for
`ig_uniform` (captum's evenly spaced steps). Targets: that share >= 95% for `ig`, IG's
comprehensiveness >= 2x random's.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lstm_demo import explain, gates
from lstm_demo.config import PRESETS, AppSettings, override
from lstm_demo.model import TextClassifier
from lstm_demo.tokenization import TextEncoder

DATASETS = Path(
    os.environ.get("LSTM_DEMO_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)
SENTENCE = (
    "it 's a charming and often affecting journey , though the second half drags , the jokes wear thin "
    "and the ending feels rushed ; still , the two leads are so good that you forgive it almost everything ."
)  # 40 word-level tokens


def _texts(split: str) -> list[str]:
    with open(DATASETS / "sst2" / f"{split}.csv", newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def _service(home: str | None):
    from lstm_demo.service import Service

    home = home or tempfile.mkdtemp(prefix="lstm-demo-explain-bench-")
    return Service(AppSettings.from_env({"LSTM_DEMO_HOME": home, "LSTM_DEMO_DEVICE": "cpu"}))


def _untrained_default() -> tuple[TextClassifier, TextEncoder, tuple[str, ...]]:
    cfg = PRESETS["default"]
    encoder = TextEncoder.train(_texts("train"), cfg.preprocess, cfg.tokenizer)
    cfg = override(cfg, model__vocab_size=encoder.vocab_size, model__num_classes=2)
    torch.manual_seed(0)
    return TextClassifier(cfg.model).eval(), encoder, ("negative", "positive")


def latency(model: TextClassifier, encoder: TextEncoder, labels: tuple[str, ...], repeats: int = 20) -> None:
    enc = encoder.encode(SENTENCE)
    parts: dict[str, list[float]] = {"ig (50 steps)": [], "gates": [], "decision path": [], "total": []}
    for i in range(repeats + 3):  # the first runs build kernels and caches
        t0 = time.perf_counter()
        explain.explain(model, encoder, labels, SENTENCE, methods=("ig",), steps=50)
        t1 = time.perf_counter()
        gates.trace(model, enc.ids, enc.tokens)
        t2 = time.perf_counter()
        gates.decision_path(model, enc.ids, labels, enc.tokens)
        t3 = time.perf_counter()
        if i >= 3:
            for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                parts[name].append(seconds)
    print(f"latency, {len(enc.ids)}-token sentence, CPU ({torch.get_num_threads()} threads), {repeats} runs:")
    for name, values in parts.items():
        print(
            f"  {name:<15} median {1000 * statistics.median(values):7.1f} ms   max {1000 * max(values):7.1f} ms"
        )
    verdict = "ok" if statistics.median(parts["total"]) < 0.3 else "OVER"
    print(f"  target: total median < 300 ms -> {verdict}")


def faithfulness(svc, run_id: str | None, n: int, steps: int) -> None:
    if run_id is None:
        d = DATASETS / "sst2"
        start = time.perf_counter()
        for event in svc.train(d / "train.csv", val_path=d / "dev.csv", test_path=d / "test.csv"):
            if event.run is not None:
                run_id = event.run.id
                print(f"trained run {run_id} ({event.run.status}) in {time.perf_counter() - start:.0f} s")
        assert run_id is not None
    loaded = svc.load(run_id)
    print(f"run {run_id}: test accuracy {svc.run(run_id).summary.test_accuracy}")
    start = time.perf_counter()
    result = explain.faithfulness(
        loaded.model, loaded.encoder, loaded.labels, _texts("test"), tuple(explain.METHODS), n=n, steps=steps
    )
    print(
        f"faithfulness on {int(result['random']['n'])} SST-2 test sentences ({time.perf_counter() - start:.0f} s):"
    )
    print(f"  {'method':<18}{'comprehensiveness':>18}{'sufficiency':>13}")
    for method, row in result.items():
        print(f"  {method:<18}{row['comprehensiveness']:>18.3f}{row['sufficiency']:>13.3f}")
    ig, rnd = result["ig"], result["random"]
    ratio = (
        ig["comprehensiveness"] / rnd["comprehensiveness"] if rnd["comprehensiveness"] > 0 else float("inf")
    )
    for method, target in (("ig_uniform", ""), ("ig", " (target >= 95%)")):  # even steps, adaptive ones
        row = result[method]
        print(f"  {method} delta within 5%: {100 * row['delta_ok_share']:.1f}% of texts{target},"
              f" median |delta| / |F(x) - F(b)| = {row['delta_ratio_median']:.4f}")  # fmt: skip
    print(f"  IG comprehensiveness / random: {ratio:.1f}x (target >= 2x)")
    latency(loaded.model, loaded.encoder, loaded.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--faithfulness", action="store_true", help="train (or load) a run and measure ERASER"
    )
    parser.add_argument("--home", help="LSTM_DEMO_HOME holding --run (default: a fresh temporary home)")
    parser.add_argument("--run", help="an existing completed run id to explain instead of training one")
    parser.add_argument("--n", type=int, default=200, help="test sentences for faithfulness")
    parser.add_argument("--steps", type=int, default=50, help="IG steps / GradientSHAP samples")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a shared, busy machine, 1 avoids OpenMP spin-waiting
    if args.faithfulness or args.run:
        faithfulness(_service(args.home), args.run, args.n, args.steps)
    else:
        latency(*_untrained_default())


if __name__ == "__main__":
    main()
