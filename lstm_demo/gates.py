"""Gate, cell and hidden-state traces recomputed from the recurrent layer's own weights.

Everything here reads the trained `nn.LSTM` / `nn.GRU` / `nn.RNN` in `model.encoder.rnn`
(`weight_ih_l{k}[_reverse]`, `weight_hh_...`, `bias_...`) and replays its equations step by step
in plain torch, so a user sees the very gates the fused kernel computed (the tests check h and c
against `nn.LSTM` to 1e-5). Layout conventions:

* PyTorch's gate order: LSTM i, f, g, o; GRU r, z, n.
* A backward direction runs over the real tokens reversed; its states are stored back at their
  token's position, so row t of a backward trace summarises tokens t..T-1.
* Layer k > 0 reads the concatenation [forward, backward] of layer k-1's hidden states.
* In eval mode inter-layer dropout and DropConnect are off, so this replay is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .model import TextClassifier, reverse_within_length
from .names import DIRECTIONS, PAD_ID, SELECT_MODES, STATE_NAMES  # noqa: F401  (re-exported for callers)

# ids per batch of prefixes in `decision_path`: bounds its memory whatever the text's length
DECISION_CHUNK_TOKENS = 16_384


@dataclass(frozen=True)
class LayerTrace:
    layer: int  # 0 = the layer that reads the word vectors
    direction: str  # forward | backward
    states: dict[str, list[list[float]]]  # state name -> T x H (row = token position)


@dataclass(frozen=True)
class GateTrace:
    encoder: str  # lstm | gru | rnn
    tokens: list[str]
    ids: list[int]
    hidden_size: int
    num_layers: int
    bidirectional: bool
    pooling: str
    layers: list[LayerTrace]  # layer 0 forward, layer 0 backward, layer 1 forward, ...
    probabilities: list[float]  # C, from the replayed states (equal to the model's own)
    predicted: int  # class index
    # C x (D*H): (W[c, u] - mean_c' W[c', u]) * pooled[u]; the last layer's units, both directions
    # concatenated. Sums (plus the centred bias) to the logit minus the mean logit, exactly.
    unit_contributions: list[list[float]]
    # the user's words and, per token, the word it came from (`Encoded`), for labels that keep them;
    # empty when the trace was made from ids alone
    words: list[str] = field(default_factory=list)
    word_index: list[int] = field(default_factory=list)

    def layer(self, layer: int = -1, direction: str = "forward") -> LayerTrace:
        """The trace of one layer (negative counts from the top) and direction."""
        if direction not in DIRECTIONS or (direction == "backward" and not self.bidirectional):
            raise ValueError(f"direction must be one of {self.directions}, got {direction!r}")
        index = layer + self.num_layers if layer < 0 else layer
        if not 0 <= index < self.num_layers:
            raise ValueError(f"layer must be in 0..{self.num_layers - 1}, got {layer}")
        return next(t for t in self.layers if t.layer == index and t.direction == direction)

    @property
    def directions(self) -> tuple[str, ...]:
        return DIRECTIONS if self.bidirectional else DIRECTIONS[:1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DecisionPath:
    tokens: list[str]
    probabilities: list[list[float]]  # T x C: row t = class probabilities after tokens 0..t
    labels: list[str]
    words: list[str] = field(default_factory=list)  # as `GateTrace.words`
    word_index: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recurrent_kind(rnn: nn.RNNBase) -> str:
    if isinstance(rnn, nn.LSTM):
        return "lstm"
    if isinstance(rnn, nn.GRU):
        return "gru"
    if isinstance(rnn, nn.RNN):
        return "rnn"
    raise TypeError(f"expected nn.LSTM, nn.GRU or nn.RNN, got {type(rnn).__name__}")


def _weights(rnn: nn.RNNBase, layer: int, suffix: str) -> tuple[torch.Tensor, ...]:
    w_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}")
    w_hh = getattr(rnn, f"weight_hh_l{layer}{suffix}")
    if rnn.bias:
        return (
            w_ih,
            w_hh,
            getattr(rnn, f"bias_ih_l{layer}{suffix}"),
            getattr(rnn, f"bias_hh_l{layer}{suffix}"),
        )
    zeros = torch.zeros(w_ih.shape[0], device=w_ih.device, dtype=w_ih.dtype)
    return w_ih, w_hh, zeros, zeros


def _run_direction(
    kind: str, rnn: nn.RNNBase, x: torch.Tensor, layer: int, suffix: str
) -> dict[str, torch.Tensor]:
    """One layer, one direction, left to right over (B, T, In) -> state name -> (B, T, H)."""
    w_ih, w_hh, b_ih, b_hh = _weights(rnn, layer, suffix)
    B, T, _ = x.shape
    H = rnn.hidden_size
    x_proj = x @ w_ih.T + b_ih  # (B, T, G*H), all input projections at once
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    steps: dict[str, list[torch.Tensor]] = {name: [] for name in STATE_NAMES[kind]}
    for t in range(T):
        h_proj = h @ w_hh.T + b_hh  # (B, G*H)
        if kind == "lstm":
            i, f, g, o = (x_proj[:, t] + h_proj).chunk(4, dim=-1)  # each (B, H)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            values = {"input": i, "forget": f, "candidate": g, "output": o, "cell": c, "hidden": h}
        elif kind == "gru":
            xr, xz, xn = x_proj[:, t].chunk(3, dim=-1)
            hr, hz, hn = h_proj.chunk(3, dim=-1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)  # the reset gate scales the hidden projection, bias included
            h = (1 - z) * n + z * h
            values = {"reset": r, "update": z, "candidate": n, "hidden": h}
        else:
            pre = x_proj[:, t] + h_proj
            h = torch.tanh(pre) if rnn.nonlinearity == "tanh" else torch.relu(pre)
            values = {"hidden": h}
        for name, value in values.items():
            steps[name].append(value)
    return {name: torch.stack(v, dim=1) for name, v in steps.items()}  # each (B, T, H)


@torch.no_grad()
def recompute(
    rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor
) -> tuple[dict[tuple[int, str], dict[str, torch.Tensor]], torch.Tensor]:
    """Replay a batch_first recurrent module on (B, T, In) right-padded inputs with (B,) lengths.

    Returns {(layer, direction): {state: (B, T, H)}} and the top layer's output (B, T, D*H), both
    zero at padding. Padding comes after the real tokens in both directions' reading order (the
    backward one reads each row reversed within its length), so it never reaches a real position.
    """
    if getattr(rnn, "proj_size", 0):
        raise ValueError("LSTMs with proj_size are not supported")
    kind = recurrent_kind(rnn)
    mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    traces: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    h = x
    for layer in range(rnn.num_layers):
        outs = []
        for direction in DIRECTIONS[: 2 if rnn.bidirectional else 1]:
            if direction == "forward":
                states = _run_direction(kind, rnn, h, layer, "")
            else:
                states = _run_direction(kind, rnn, reverse_within_length(h, lengths), layer, "_reverse")
                states = {name: reverse_within_length(v, lengths) for name, v in states.items()}
            states = {name: v * mask for name, v in states.items()}
            traces[(layer, direction)] = states
            outs.append(states["hidden"])
        h = torch.cat(outs, dim=-1)  # (B, T, D*H): the next layer's input
    return traces, h


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _check(model: TextClassifier, ids: Sequence[int]) -> None:
    if model.training:
        raise ValueError(
            "the model is in training mode (dropout would change every trace); call model.eval()"
        )
    if len(ids) == 0:
        raise ValueError("the text has no tokens the model knows: nothing to trace")


def _tokens(ids: Sequence[int], tokens: Sequence[str] | None) -> list[str]:
    if tokens is None:
        return [str(i) for i in ids]
    if len(tokens) != len(ids):
        raise ValueError(f"got {len(tokens)} tokens for {len(ids)} ids")
    return list(tokens)


def trace(model: TextClassifier, ids: Sequence[int], tokens: Sequence[str] | None = None) -> GateTrace:
    """Every gate and state of every layer and direction for one text (`Encoded.ids`, `.tokens`)."""
    _check(model, ids)
    rnn = model.encoder.rnn
    ids_t = torch.tensor([list(ids)], device=_device(model))  # (1, T)
    lengths = torch.tensor([len(ids)], device=ids_t.device)  # (1,)
    with torch.no_grad():
        traces, out = recompute(rnn, model.embedding(ids_t), lengths)
        pooled = model.pooling(out, lengths)[0]  # (D*H,)
        logits = model.head(pooled)  # (C,)
        weight = model.head.weight  # (C, D*H)
        contributions = (weight - weight.mean(0, keepdim=True)) * pooled  # (C, D*H)
    layers = [
        LayerTrace(layer, direction, {name: v[0].tolist() for name, v in states.items()})
        for (layer, direction), states in traces.items()
    ]
    return GateTrace(
        encoder=recurrent_kind(rnn),
        tokens=_tokens(ids, tokens),
        ids=list(ids),
        hidden_size=rnn.hidden_size,
        num_layers=rnn.num_layers,
        bidirectional=rnn.bidirectional,
        pooling=model.pooling.kind,
        layers=layers,
        probabilities=torch.softmax(logits.float(), -1).tolist(),
        predicted=int(logits.argmax()),
        unit_contributions=contributions.tolist(),
    )


def select_units(
    trace: GateTrace,
    mode: str = "variance",
    k: int = 10,
    *,
    layer: int = -1,
    direction: str = "forward",
    state: str = "hidden",
    indices: Sequence[int] | None = None,
    target: int | None = None,
) -> list[int]:
    """Units (0..H-1 within one layer and direction) to show, most telling first.

    * ``variance``: the k units whose `state` varies most over the sentence (ties: larger mean |value|).
    * ``contribution``: the k units of the last layer that push the `target` class (default: the
      predicted one) hardest, scored by ``(W[c, u] - mean_c' W[c', u]) * pooled[u]``. That is an exact
      additive split of the logit relative to the mean logit, which is all softmax sees, for every
      pooling, because pooling happens before the linear head. It is silent on *when* a unit earned
      its pooled value: the last real token (`last`, forward; the first token for backward), the
      arg-max step (`max`), every step equally (`mean`) or by attention weight (`attention`).
    * ``index``: exactly `indices`, in the given order (duplicates dropped).
    """
    lt = trace.layer(layer, direction)
    H = trace.hidden_size
    if mode == "index":
        if not indices:
            raise ValueError("mode 'index' needs indices")
        bad = [i for i in indices if not 0 <= int(i) < H]
        if bad:
            raise ValueError(f"unit indices must be in 0..{H - 1}, got {bad}")
        return list(dict.fromkeys(int(i) for i in indices))
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if mode == "variance":
        if state not in lt.states:
            raise ValueError(f"state must be one of {tuple(lt.states)}, got {state!r}")
        values = torch.tensor(lt.states[state])  # (T, H)
        variance = values.var(0, unbiased=False)
        magnitude = values.abs().mean(0)
        order = sorted(range(H), key=lambda u: (-float(variance[u]), -float(magnitude[u]), u))
        return order[:k]
    if mode == "contribution":
        if lt.layer != trace.num_layers - 1:
            raise ValueError(
                "contribution is defined for the last layer only (the one the output layer reads)"
            )
        c = trace.predicted if target is None else target
        if not 0 <= c < len(trace.unit_contributions):
            raise ValueError(f"target must be a class index in 0..{len(trace.unit_contributions) - 1}")
        offset = DIRECTIONS.index(direction) * H
        scores = trace.unit_contributions[c][offset : offset + H]
        return sorted(range(H), key=lambda u: (-scores[u], u))[:k]
    raise ValueError(f"mode must be one of {SELECT_MODES}, got {mode!r}")


def decision_path(
    model: TextClassifier, ids: Sequence[int], labels: Sequence[str], tokens: Sequence[str] | None = None
) -> DecisionPath:
    """Class probabilities after each prefix of the text (tokens 0..t for t = 0..T-1).

    Batched forwards over the T prefixes (row t = the first t+1 ids, right-padded, length t+1).
    That is exactly what the model computes for each prefix alone, for every encoder and pooling:
    the model ignores right padding exactly (see `model.py`), and a backward direction or the
    attention pooling of a prefix sees that prefix only. The prefixes go in chunks of at most
    DECISION_CHUNK_TOKENS ids, each cut to its longest prefix, so memory grows linearly with T.
    """
    _check(model, ids)
    T = len(ids)
    device = _device(model)
    full = torch.tensor(list(ids), device=device)  # (T,)
    rows = max(1, DECISION_CHUNK_TOKENS // T)  # prefixes per chunk
    probs = []
    with torch.no_grad():
        for first in range(0, T, rows):
            lengths = torch.arange(first + 1, min(first + rows, T) + 1, device=device)  # (R,)
            width = int(lengths[-1])  # the chunk's longest prefix
            keep = torch.arange(width, device=device)[None, :] < lengths[:, None]  # (R, width)
            prefixes = torch.where(keep, full[None, :width], PAD_ID)  # (R, width)
            probs.append(torch.softmax(model(prefixes, lengths).float(), dim=-1))  # (R, C)
    probs = torch.cat(probs)  # (T, C)
    if probs.shape[1] != len(labels):
        raise ValueError(f"the model has {probs.shape[1]} classes but {len(labels)} labels were given")
    return DecisionPath(tokens=_tokens(ids, tokens), probabilities=probs.tolist(), labels=list(labels))
