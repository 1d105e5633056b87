"""Where a model runs and in what precision: the device, the recurrent kernel's form, autocast.

Every choice that depends on the hardware is made here, so the training loop reads the same on a
CPU, on CUDA and on Apple MPS.
"""

from __future__ import annotations

import functools

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """auto picks CUDA, then Apple MPS, then the CPU; anything else is taken as asked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} was asked for, but Apple MPS is not available")
    return device


def resolve_packing(packing: str, device: torch.device | None = None) -> str:
    """`auto`: padded batches on a CPU, the same with both directions paired in one call on CUDA.

    Packed sequences leave the oneDNN kernel on the CPU. `paired` runs a bidirectional layer's two
    directions in one sequential pass, as cuDNN's own bidirectional call does, where a GPU waits on
    time steps rather than arithmetic. The figures: `benchmarks.packing` and `benchmarks.gpu_check`
    (benchmarks/README.md).
    """
    if packing != "auto":
        return packing
    return "paired" if device is not None and device.type == "cuda" else "padded"


@functools.cache
def half_dtype() -> torch.dtype:
    """bf16 where the GPU has it (Ampere and later), else fp16; asked once, not every step."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """Mixed precision on CUDA when `enabled` (bf16 or fp16, `half_dtype`); full precision elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=half_dtype())
    return torch.autocast(device.type, enabled=False)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device without waiting: from pageable memory a CUDA copy may stall on the stream."""
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)
