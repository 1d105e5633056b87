"""The classifier: Embedding -> recurrent encoder -> pooling -> Linear. Returns logits, nothing else.

The recurrent weights live in one standard `nn.LSTM` / `nn.GRU` / `nn.RNN` (its state dict is the
familiar `weight_ih_l0`, `weight_hh_l0_reverse`, ...), so `gates.py` can recompute every gate from
the very weights the model uses. Three execution paths reach the fused cuDNN/oneDNN kernels:

* ``padded``: right-padded batches. A forward direction never sees the padding before the real
  tokens, so its outputs at real positions are exact. A backward direction would start *in* the
  padding, so it runs on each sequence reversed within its own length (then un-reversed): exact too.
* ``paired``: the padded path with both directions of a layer in one call of twice the units
  (block-diagonal weights, see `RecurrentEncoder._paired`): the same results, for GPUs.
* ``packed``: ``pack_padded_sequence``; exact by construction, slower on the CPU.

Recurrent dropout is DropConnect on the hidden-to-hidden matrices (Merity et al. 2017): one mask
per batch on the weights instead of a fresh mask per time step on the state (Keras'
`recurrent_dropout`), which would force a Python loop over time and lose the fused kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .config import ModelConfig
from .names import PAD_ID

_RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
# the fused kernels behind those modules' forward (nn.RNN's default nonlinearity is tanh)
_KERNELS = {"lstm": torch.lstm, "gru": torch.gru, "rnn": torch.rnn_tanh}


def lengths_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True at real tokens."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def reversal_index(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) positions that reverse each row's first `length` steps, padding in place."""
    pos = torch.arange(max_len, device=lengths.device)[None, :]  # (1, T)
    rev = lengths[:, None] - 1 - pos  # (B, T)
    return torch.where(rev >= 0, rev, pos)


def reverse_within_length(
    x: torch.Tensor, lengths: torch.Tensor, index: torch.Tensor | None = None
) -> torch.Tensor:
    """Reverse each row's first `length` steps, leave its padding in place. (B, T, ...) -> same."""
    B, T = x.shape[:2]
    idx = reversal_index(lengths, T) if index is None else index  # (B, T)
    return x.gather(1, idx.view(B, T, *([1] * (x.dim() - 2))).expand_as(x))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout`, with the mask drawn by `torch.rand` on a CPU: the same Bernoulli(1 - p) mask.

    A CPU's `bernoulli_` draws one number at a time, `rand` a whole tensor at once (figures:
    `benchmarks.overhead`). Other devices keep the fused dropout kernel.
    """
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p=p, training=True)
    return x * _kept(x, p)


def _kept(like: torch.Tensor, p: float) -> torch.Tensor:
    """A mask shaped like `like`: 1 / (1 - p) with probability 1 - p, else 0."""
    if like.device.type != "cpu":
        return torch.empty_like(like).bernoulli_(1 - p).div_(1 - p)
    return torch.rand_like(like).ge_(p).mul_(1 / (1 - p))  # in place: 1.0 where kept, then scaled


class RecurrentEncoder(nn.Module):
    """A stacked (bi)directional LSTM/GRU/RNN that ignores padding exactly on every path."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        cls = _RNN_CLASSES[cfg.encoder]
        self.rnn = cls(
            input_size=cfg.embedding_dim,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            batch_first=True,
        )

    @property
    def output_size(self) -> int:
        return self.cfg.hidden_size * self.cfg.directions

    def _weights(self) -> dict[str, torch.Tensor]:
        """The recurrent weights, with DropConnect on hidden-to-hidden matrices when training."""
        p = self.cfg.recurrent_dropout
        weights = {}
        for name, w in self.rnn.named_parameters():
            if p > 0 and self.training and name.startswith("weight_hh"):
                w = dropout(w, p, training=True)
            weights[name] = w
        return weights

    def _recur(
        self, x: torch.Tensor, params: list[torch.Tensor], num_layers: int, bidirectional: bool
    ) -> torch.Tensor:
        """(B, T, in) -> (B, T, D*H) through one fused cuDNN/oneDNN call, from a zero state.

        The call `nn.LSTM.forward` ends in, made directly: swapping weights into the module
        (`functional_call`) costs host time on every call, a large share of a small LSTM's
        (`benchmarks.overhead`).
        `params` go per layer and direction in the module's order: w_ih, w_hh, b_ih, b_hh.
        """
        hidden = params[1].shape[1]  # w_hh is (G*H, H)
        h0 = x.new_zeros(num_layers * (2 if bidirectional else 1), x.shape[0], hidden)
        hx = (h0, h0) if self.cfg.encoder == "lstm" else h0
        kernel = _KERNELS[self.cfg.encoder]
        between = self.rnn.dropout if num_layers > 1 else 0.0  # dropout between stacked layers
        return kernel(x, hx, params, True, num_layers, between, self.training, bidirectional, True)[0]

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, packing: str = "padded", padded: bool = True
    ) -> torch.Tensor:
        """(B, T, E) embeddings, (B,) lengths -> (B, T, D*H) outputs, zero at padding.

        `padded=False` promises every text is T long: then one fused call runs every layer and
        direction, as a plain `nn.LSTM` would (length-bucketed batches often are uniform).
        """
        weights = self._weights()
        T = x.shape[1]
        if packing == "packed":
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = functional_call(self.rnn, weights, (packed,))
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
            return out
        if not padded or not self.cfg.bidirectional:
            params = [weights[name] for name in self.rnn._flat_weights_names]
            out = self._recur(x, params, self.cfg.num_layers, self.cfg.bidirectional)
            return out if not padded else out * lengths_mask(lengths, T)[..., None]
        exact = self._paired if packing == "paired" else self._padded_bidirectional
        return exact(x, lengths, weights) * lengths_mask(lengths, T)[..., None]

    def _padded_bidirectional(
        self, x: torch.Tensor, lengths: torch.Tensor, weights: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        h = x
        index = reversal_index(lengths, x.shape[1])  # (B, T), shared by every reversal below
        for layer in range(self.cfg.num_layers):
            outs = []
            for suffix in ("", "_reverse"):
                params = _layer(weights, layer, suffix)
                inp = h if not suffix else reverse_within_length(h, lengths, index)
                out = self._recur(inp, params, 1, False)  # (B, T, H)
                outs.append(out if not suffix else reverse_within_length(out, lengths, index))
            h = torch.cat(outs, dim=-1)  # (B, T, 2H)
            if layer < self.cfg.num_layers - 1:
                h = dropout(h, self.rnn.dropout, self.training)
        return h

    def _paired(
        self, x: torch.Tensor, lengths: torch.Tensor, weights: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The exact padded path in one kernel call per layer instead of one per direction.

        Both directions of a layer run as one forward-only layer of 2H units: its input is the text
        and the text reversed within its length side by side, and block-diagonal weights keep the
        two halves apart, so the first H units are the forward direction and the last H the
        backward one (reversed back afterwards). Twice the arithmetic of the two calls, in one
        sequential pass instead of two: slower on a CPU, made for a GPU, where a recurrence this
        small waits on its time steps rather than its arithmetic.
        """
        h = x
        index = reversal_index(lengths, x.shape[1])  # (B, T)
        H = self.cfg.hidden_size
        for layer in range(self.cfg.num_layers):
            forward, backward = _layer(weights, layer, ""), _layer(weights, layer, "_reverse")
            params = [_block_diagonal(a, b, H) for a, b in zip(forward, backward, strict=True)]
            both = torch.cat([h, reverse_within_length(h, lengths, index)], dim=-1)  # (B, T, 2 * in)
            out = self._recur(both, params, 1, False)  # (B, T, 2H)
            h = torch.cat([out[..., :H], reverse_within_length(out[..., H:], lengths, index)], dim=-1)
            if layer < self.cfg.num_layers - 1:
                h = dropout(h, self.rnn.dropout, self.training)
        return h


def _layer(weights: dict[str, torch.Tensor], layer: int, suffix: str) -> list[torch.Tensor]:
    """One direction of one layer: w_ih, w_hh, b_ih, b_hh (`suffix` "" or "_reverse")."""
    return [weights[f"{kind}_l{layer}{suffix}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _block_diagonal(a: torch.Tensor, b: torch.Tensor, hidden: int) -> torch.Tensor:
    """Two directions' gate-stacked weights (G*H, in) or biases (G*H,) -> one layer of 2H units.

    Gate by gate, the forward direction's rows act on the first half of the input and the backward
    direction's on the second: (G*2H, 2*in), or (G*2H,) for biases.
    """
    gates = a.shape[0] // hidden
    if a.dim() == 1:
        return torch.cat([a.view(gates, hidden), b.view(gates, hidden)], dim=1).view(-1)
    a, b = a.view(gates, hidden, -1), b.view(gates, hidden, -1)  # (G, H, in)
    zero = torch.zeros_like(a)
    top, bottom = torch.cat([a, zero], dim=2), torch.cat([zero, b], dim=2)  # (G, H, 2 * in) each
    return torch.cat([top, bottom], dim=1).view(gates * 2 * hidden, -1)


class Pooling(nn.Module):
    """Turns per-token outputs into one vector per text: last state, mean, max or attention."""

    def __init__(self, kind: str, size: int, bidirectional: bool):
        super().__init__()
        self.kind = kind
        self.bidirectional = bidirectional
        self.score = nn.Linear(size, 1) if kind == "attention" else None

    def forward(self, out: torch.Tensor, lengths: torch.Tensor, padded: bool = True) -> torch.Tensor:
        """(B, T, D*H), (B,) -> (B, D*H); `padded=False` promises every text is T long."""
        B, T, _ = out.shape
        mask = lengths_mask(lengths, T) if padded else None  # (B, T)
        if self.kind == "last":
            last = out[torch.arange(B, device=out.device), lengths - 1]  # (B, D*H)
            if not self.bidirectional:
                return last
            half = out.shape[-1] // 2
            # forward direction ends at the last real token, backward direction at the first
            return torch.cat([last[:, :half], out[:, 0, half:]], dim=-1)
        if self.kind == "mean":
            return out.sum(1) / lengths[:, None].to(out.dtype)
        if self.kind == "max":
            return out.amax(1) if mask is None else out.masked_fill(~mask[..., None], float("-inf")).amax(1)
        scores = self.score(out).squeeze(-1)  # (B, T)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=1).to(out.dtype)
        return torch.einsum("bt,btd->bd", weights, out)


class TextClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig, packing: str = "padded"):
        super().__init__()
        if cfg.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {cfg.vocab_size}")
        if cfg.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {cfg.num_classes}")
        if packing not in ("padded", "paired", "packed"):
            raise ValueError(f"packing must be padded, paired or packed, got {packing!r}")
        self.cfg = cfg
        self.packing = packing
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        self.encoder = RecurrentEncoder(cfg)
        self.pooling = Pooling(cfg.pooling, self.encoder.output_size, cfg.bidirectional)
        self.head = nn.Linear(self.encoder.output_size, cfg.num_classes)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Keras' initialisation, which trains small text sets better than PyTorch's defaults.

        Embeddings uniform(-0.05, 0.05), or N(0, 1) with `embedding_init="normal"` (PyTorch's own
        choice, compared in benchmarks/README.md);
        input weights Glorot-uniform; recurrent weights orthogonal per gate; biases zero, except an
        LSTM's forget gate bias of 1 so that the cell remembers by default early in training
        (Jozefowicz et al. 2015).
        """
        if self.cfg.embedding_init == "normal":
            nn.init.normal_(self.embedding.weight)
        else:
            nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        self.embedding.weight[PAD_ID].zero_()
        H = self.cfg.hidden_size
        for name, w in self.encoder.rnn.named_parameters():
            gates = w.shape[0] // H
            if name.startswith("weight_ih"):
                for g in range(gates):
                    nn.init.xavier_uniform_(w[g * H : (g + 1) * H])
            elif name.startswith("weight_hh"):
                for g in range(gates):
                    nn.init.orthogonal_(w[g * H : (g + 1) * H])
            else:
                w.zero_()
                if self.cfg.encoder == "lstm" and name.startswith("bias_ih"):
                    w[H : 2 * H] = 1.0  # PyTorch's gate order is i, f, g, o

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor | None = None, padded: bool | None = None
    ) -> torch.Tensor:
        """(B, T) token ids (right-padded with PAD_ID), (B,) lengths -> (B, C) logits.

        `padded`: whether any text is shorter than T. None works it out from `lengths`, which costs
        a device sync on a GPU; the training loop knows it from the host-side lengths.
        """
        if lengths is None:
            lengths = (ids != PAD_ID).sum(1).clamp(min=1)
        x = self.embedding(ids)  # (B, T, E)
        return self.classify(x, lengths, padded)

    def _embedding_dropout(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, E) -> same; a variational mask is drawn per text and unit and shared across time."""
        p = self.cfg.embedding_dropout
        if not self.training or p == 0:
            return x
        if not self.cfg.variational_dropout:
            return dropout(x, p, training=True)
        return x * _kept(x[:, :1], p)  # (B, T, E) * (B, 1, E)

    def classify(self, x: torch.Tensor, lengths: torch.Tensor, padded: bool | None = None) -> torch.Tensor:
        """Embeddings -> logits; split out so attribution methods can start from embeddings."""
        if padded is None:
            padded = bool((lengths < x.shape[1]).any())
        x = self._embedding_dropout(x)
        out = self.encoder(x, lengths, self.packing, padded)  # (B, T, D*H)
        pooled = self.pooling(out, lengths, padded)  # (B, D*H)
        pooled = dropout(pooled, self.cfg.dropout, self.training)
        return self.head(pooled)  # (B, C)
