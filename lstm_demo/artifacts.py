"""A saved model is one directory: config.json, tokenizer.json, model.safetensors, metrics.json.

It is written atomically (a temporary sibling directory, then one rename), so a model directory
exists only once complete. Loading checks that the weights match the configuration exactly;
nothing is ever unpickled. A file from elsewhere can be measured first: `read_weight_shapes` reads
only the safetensors header, `parameter_shapes` what a configuration needs, neither allocates.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ModelConfig, RunConfig
from .model import TextClassifier
from .tokenization import TextEncoder

CONFIG, TOKENIZER, WEIGHTS, METRICS = "config.json", "tokenizer.json", "model.safetensors", "metrics.json"
MODEL_FILES = (CONFIG, TOKENIZER, WEIGHTS, METRICS)
FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}  # bytes per value
MAX_HEADER_BYTES = 2**20  # a model of ours has a few dozen tensors, described in a few KB


@dataclass
class LoadedModel:
    config: RunConfig
    model: TextClassifier  # eval mode, on `device`
    encoder: TextEncoder
    metrics: dict[str, Any]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def save_model_dir(
    target: Path, config: RunConfig, encoder: TextEncoder, model: TextClassifier, metrics: dict[str, Any]
) -> Path:
    """Write the four files into `target` atomically; `target` must not exist yet."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"model directory {target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / CONFIG).write_text(json.dumps(config.to_stored_dict(), indent=2))
        encoder.save(tmp)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt", "preset": config.preset})
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2))
        for name in MODEL_FILES:  # make the bytes durable before the directory appears
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_config(directory: Path) -> RunConfig:
    path = Path(directory) / CONFIG
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a valid run configuration: {e}") from None


def read_weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from a safetensors file's header alone: no tensor data is read.

    ValueError unless the file is well formed and holds only float tensors that lie inside it,
    each exactly as large as its shape says, none overlapping another.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{WEIGHTS} is not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{WEIGHTS} is not a safetensors file (header length {n} is impossible)")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{WEIGHTS} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{WEIGHTS} is not a safetensors file (its header is not an object)")
    header.pop("__metadata__", None)
    data_size, spans, shapes = size - 8 - n, [], {}
    for key, entry in header.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise ValueError(f"{WEIGHTS}: tensor {key!r} has a malformed header entry")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"{WEIGHTS}: tensor {key!r} is {dtype}; only float weights are accepted")
        lists = isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2
        if not lists or not all(type(v) is int and v >= 0 for v in [*shape, *offsets]):
            raise ValueError(f"{WEIGHTS}: tensor {key!r} has a malformed shape or offsets")
        begin, end = offsets
        if not begin <= end <= data_size or end - begin != math.prod(shape) * FLOAT_DTYPES[dtype]:
            raise ValueError(f"{WEIGHTS}: tensor {key!r} points outside the file or has the wrong size")
        spans.append((begin, end))
        shapes[key] = tuple(shape)
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
        raise ValueError(f"{WEIGHTS}: tensors overlap")
    return shapes


def parameter_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight a model of this configuration holds, found without allocating
    any (on PyTorch's meta device); bound the sizes first, the layers are still constructed."""
    with torch.device("meta"):
        model = TextClassifier(cfg)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def load_model_dir(directory: Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild model, tokenizer and labels from a model directory; ValueError on any mismatch."""
    directory = Path(directory)
    for name in MODEL_FILES:
        if not (directory / name).is_file():
            raise ValueError(f"model directory {directory} has no {name}")
    config = read_config(directory)
    if len(config.labels) != config.model.num_classes:
        raise ValueError(
            f"{directory / CONFIG}: {len(config.labels)} labels but num_classes={config.model.num_classes}"
        )
    encoder = TextEncoder.load(directory, config.preprocess, config.tokenizer)
    if encoder.vocab_size != config.model.vocab_size:
        raise ValueError(
            f"{directory / TOKENIZER} has {encoder.vocab_size} tokens, the model expects {config.model.vocab_size}"
        )
    model = TextClassifier(config.model)
    try:
        state = load_file(str(directory / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{directory / WEIGHTS} is not a valid safetensors file: {e}") from None
    expected = model.state_dict()
    missing, extra = set(expected) - set(state), set(state) - set(expected)
    if missing or extra:
        raise ValueError(
            f"{directory / WEIGHTS} does not match its config: missing {sorted(missing)}, extra {sorted(extra)}"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape or tensor.dtype != expected[key].dtype:
            raise ValueError(
                f"{directory / WEIGHTS}: {key} has shape {tuple(tensor.shape)} {tensor.dtype}, "
                f"the config needs {tuple(expected[key].shape)} {expected[key].dtype}"
            )
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{directory / WEIGHTS}: {key} holds NaN or infinite values")
    model.load_state_dict(state)
    model.to(device).eval()
    try:
        metrics = json.loads((directory / METRICS).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{directory / METRICS} is not valid JSON: {e}") from None
    return LoadedModel(config=config, model=model, encoder=encoder, metrics=metrics)


def refit_summary(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """What `metrics.json` says of a refit (epochs, rows, seconds), without its per-epoch history.

    All three or nothing: a record missing one (a hand-edited bundle) is no refit to report, so
    every reader (store, model card, Runs tab) can rely on each figure being there.
    """
    refit = metrics.get("refit")
    if not isinstance(refit, dict):
        return None
    summary = {k: refit.get(k) for k in ("epochs", "rows", "seconds")}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in summary.values()):
        return None
    return summary
