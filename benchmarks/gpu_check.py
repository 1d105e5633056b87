"""GPU checks, run on a CUDA machine: `python -m benchmarks.gpu_check [--data DIR] [--epochs N]`.

`--device cpu` runs only the first check, on the CPU (the same comparison without a GPU).
`--size N` sets the embedding and hidden sizes (default: the preset's 128); on the CPU a small
size, where the arithmetic all but vanishes, leaves what a GPU step is mostly made of at these
sizes: the host's time per operation, which the comparison then measures.

1. Tokens per second of `default` training on CUDA (our full training loop through the service)
   against a bare `nn.LSTM` loop with the same shapes, batches, optimizer and mixed precision.
2. Padded against packed batches on CUDA.
3. Every attribution method on CUDA in eval mode (cuDNN switched off only inside the attribution
   call), compared with the same explanation on the CPU.
Prints one JSON object per check.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lstm_demo.batching import collate, make_batches
from lstm_demo.config import AppSettings
from lstm_demo.service import Service
from lstm_demo.train import adversarial_shift


def _emit(**row) -> None:
    print(json.dumps(row), flush=True)


def train_ours(
    data: Path,
    epochs: int,
    packing: str = "auto",
    amp: bool = True,
    device: str = "cuda",
    size: int | None = None,
) -> tuple[Service, str, dict]:
    home = tempfile.mkdtemp(prefix="gpu-check-")
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": home, "LSTM_DEMO_DEVICE": device}))
    result = run_id = None
    overrides = {
        "train__epochs": epochs,
        "train__patience": 0,
        "train__packing": packing,
        "train__mixed_precision": amp,
    }
    if size:
        overrides |= {"model__embedding_dim": size, "model__hidden_size": size}
    for ev in svc.train(
        data / "train.csv",
        val_path=data / "dev.csv",
        test_path=data / "test.csv",
        preset_name="default",
        overrides=overrides,
    ):
        run_id = ev.run_id
        result = ev.progress.result or result
    return (
        svc,
        run_id,
        {
            # after the first epoch, like the bare loop: the first pays CUDA's and cuDNN's start-up
            "tokens_per_second": _after_first_epoch(result.history),
            "tokens_per_second_all_epochs": result.tokens_per_second,
            "seconds_per_epoch": result.seconds_per_epoch,
            "test_accuracy": result.test["accuracy"],
            "packing": result.packing,
            "device": result.device,
        },
    )


def _after_first_epoch(history: list[dict]) -> float | None:
    if len(history) < 2:
        return None
    first, last = history[0], history[-1]
    return (last["tokens_seen"] - first["tokens_seen"]) / (last["train_seconds"] - first["train_seconds"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_lstm(
    svc: Service, run_id: str, epochs: int, data: Path, device_name: str = "cuda", adversarial: float = 0.0
) -> dict:
    """The same shapes as the run's model, as plainly as PyTorch writes it: no masking, no DropConnect.

    No step waits for the GPU (targets and token counts stay on the host side). With `adversarial`
    each step also trains on the shifted embeddings, as `train.adversarial` does: the same work
    per token as a run with that setting.
    """
    loaded = svc.load(run_id)
    cfg = loaded.config
    import csv

    with open(data / "train.csv", newline="") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    seqs = loaded.encoder.encode_batch(texts)
    device = torch.device(device_name)
    m, tc = cfg.model, cfg.train
    emb = nn.Embedding(m.vocab_size, m.embedding_dim, padding_idx=0).to(device)
    lstm = nn.LSTM(
        m.embedding_dim, m.hidden_size, m.num_layers, batch_first=True, bidirectional=m.bidirectional
    ).to(device)
    head = nn.Linear(m.hidden_size * m.directions, m.num_classes).to(device)
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=tc.learning_rate)
    y = torch.randint(0, m.num_classes, (len(seqs),))
    rng = random.Random(0)
    lengths = [max(1, len(s)) for s in seqs]
    tokens, seconds = 0, 0.0
    for epoch in range(epochs):
        _sync(device)
        t = time.perf_counter()
        for batch in make_batches(lengths, tc.batch_size, rng):
            ids, lens = collate([seqs[i] for i in batch], device)
            target = y[batch].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                x = emb(ids)
                if adversarial:
                    x.retain_grad()
                out, _ = lstm(x)
                logits = head(out.amax(1))
            loss = F.cross_entropy(logits.float(), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if adversarial:
                r = adversarial_shift(x, adversarial)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    out, _ = lstm(emb(ids) + r)
                    logits = head(out.amax(1))
                F.cross_entropy(logits.float(), target).backward()
            torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            opt.step()
            tokens += sum(lengths[i] for i in batch)
        _sync(device)
        if epoch > 0:  # the first epoch warms CUDA and cuDNN up; ours is timed after it too
            seconds += time.perf_counter() - t
        else:
            tokens = 0
    return {"tokens_per_second": tokens / seconds}


def _throughput(svc: Service, run_id: str, ours: dict, args: argparse.Namespace, device: str) -> None:
    """Ours against the bare loop doing the same work per token, and against the plainest loop."""
    adversarial = svc.load(run_id).config.train.adversarial
    same = bare_lstm(svc, run_id, args.epochs, args.data, device, adversarial)
    model = svc.load(run_id).config.model
    row = {"check": "throughput", "device": device, "size": [model.embedding_dim, model.hidden_size]}
    row |= {"ours": ours, "bare": same}
    row["ratio"] = ours["tokens_per_second"] / same["tokens_per_second"]
    if adversarial:
        plain = bare_lstm(svc, run_id, args.epochs, args.data, device)
        row["bare_without_adversarial_step"] = plain
        row["ratio_to_plain"] = ours["tokens_per_second"] / plain["tokens_per_second"]
    _emit(**row)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--data", type=Path, default=Path(os.environ.get("LSTM_DEMO_DATASETS", "../shared/datasets")) / "sst2"
    )
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device", default="cuda", help="cuda (every check) or cpu (the throughput check alone)")
    p.add_argument("--size", type=int, default=None, help="embedding and hidden size (default: the preset's)")
    args = p.parse_args()
    if args.device == "cpu":
        svc, run_id, ours = train_ours(args.data, args.epochs, device="cpu", size=args.size)
        _throughput(svc, run_id, ours, args, "cpu")
        return 0
    if not torch.cuda.is_available():
        _emit(check="cuda", ok=False, error="no CUDA device")
        return 1
    _emit(
        check="cuda",
        ok=True,
        device=torch.cuda.get_device_name(),
        torch=torch.__version__,
        cudnn=torch.backends.cudnn.version(),
        bf16=torch.cuda.is_bf16_supported(),
    )
    svc, run_id, ours = train_ours(args.data, args.epochs, size=args.size)
    _throughput(svc, run_id, ours, args, "cuda")
    for packing in ("padded", "paired", "packed"):
        _, _, r = train_ours(args.data, 2, packing=packing)
        _emit(check="packing", requested=packing, **r)
    _, _, r = train_ours(args.data, args.epochs, amp=False)
    _emit(check="fp32", **r)

    from lstm_demo import explain

    text = "the film is not bad at all , in fact it is a quietly moving and very funny piece of work"
    loaded = svc.load(run_id)
    methods = tuple(explain.METHODS)
    t = time.perf_counter()
    gpu = explain.explain(loaded.model, loaded.encoder, loaded.labels, text, methods)
    gpu_s = time.perf_counter() - t
    still_eval = not loaded.model.training
    cpu_model = loaded.model.to("cpu")
    cpu = explain.explain(cpu_model, loaded.encoder, loaded.labels, text, methods)
    diffs = {
        m: max(
            abs(a - b)
            for a, b in zip(gpu.attributions[m].token_scores, cpu.attributions[m].token_scores, strict=True)
        )
        for m in methods
    }
    _emit(
        check="explain_cuda",
        ok=True,
        model_stayed_in_eval=still_eval,
        seconds=gpu_s,
        ig_delta_ok=gpu.attributions["ig"].delta_ok,
        max_abs_diff_vs_cpu=diffs,
        cudnn_enabled_after=torch.backends.cudnn.enabled,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
