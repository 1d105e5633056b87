"""Why did the model say that? Token attributions through Captum, and how faithful they are.

The only module that imports captum. Every method explains one class logit (the predicted class by
default) of one text, and scores each token by summing its attribution over the embedding
dimension; subword scores are then summed per word for display. Methods:

* ``ig``: Integrated Gradients on the embedding layer, from an all-[PAD] baseline b of the same length
  (the [PAD] vector is the embedding's zero row), attributing F = the target logit. The path integral
  IG_i = (x_i - b_i) * integral_0^1 dF/de_i(b + a (x - b)) da is the textbook one; only its quadrature
  nodes are placed adaptively, because a trained recurrent model is nearly discontinuous along that
  straight path (measured on the `default` SST-2 model: F falls 5.7 logits within 5e-4 of a, and
  more steeply still in narrower stretches), which evenly spaced nodes step over: with 50 of them
  IG met the 5% completeness bound on ~45% of 200 SST-2 test sentences (82% with 2000); with 50
  adaptive ones, on 98.5% (`python -m benchmarks.explain_bench --faithfulness`). See `_ig` for the
  rule. Completeness says the token scores sum to F(x) - F(b); the gap (the convergence delta,
  computed from the final scores, never adjusted) is returned and flagged above 5%.
* ``ig_uniform``: the same integral with captum's `LayerIntegratedGradients`: `steps` Gauss-Legendre
  nodes spread evenly along the path, for comparison.
* ``gradient_shap``: GradientSHAP (expected gradients) on the word vectors, baselines [PAD] plus a few
  random-token sequences drawn with a fixed seed, so the same text always gets the same scores.
* ``occlusion``: F(x) - F(x with that one token's vector replaced by [PAD]'s), all tokens in one batch.
* ``saliency``: the L1 norm of the logit's gradient at the token's vector (captum's |gradient|, summed):
  how sensitive the logit is to the token, with no sign.
* ``input_x_gradient``: gradient x word vector, summed: the first-order (Taylor) share of the logit.

cuDNN's LSTM refuses a backward pass in eval mode ("cudnn RNN backward can only be called in training
mode") and a training-mode model would explain a random dropout mask instead of the model, so every
attribution runs through `attribute`, which turns cuDNN off around the method (`_gradients_allowed`)
whatever the method; the model stays in eval mode.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from statistics import mean, median
from typing import Any

import numpy as np
import torch
from captum.attr import GradientShap, LayerGradientXActivation, LayerIntegratedGradients, Occlusion, Saliency

from .model import TextClassifier
from .names import METHODS  # noqa: F401  (the method keys and titles; re-exported)

PAD_ID = 0  # the model's padding id (tokenization.PAD_ID); its embedding row is zero
DELTA_TOLERANCE = 0.05  # IG's |delta| may be at most this share of |F(x) - F(baseline)|
# Adaptive IG: where the path is scanned (forward passes only) before the gradients are placed
IG_SCAN_POINTS = 64  # first, F at this many evenly spaced intervals of the path
IG_SPLIT = 8  # an interval that needs a closer look is cut into this many equal parts
IG_LEVELS = 6  # rounds of cutting; IG_MIN_WIDTH stops it at intervals 1/64/8^5 ~ 5e-7 wide
IG_CUTS_PER_LEVEL = 32  # the worst intervals cut per round; bounds the scan at 65 + 6 * 32 * 7 forwards
IG_MIN_WIDTH = 1e-6  # narrower intervals are not cut: float32 rounds a * x by up to ~3e-8 * a
IG_CHANGE_SHARE = 0.02  # cut an interval whose |dF| exceeds this share of the scale (see _need_cut) ...
IG_BEND_SHARE = 0.005  # ... or whose dF a neighbour's slope mispredicts by more than this share
IG_EVEN_SHARE = 0.3  # share of the gradient evaluations spread evenly in a; the rest follow |dF|
IG_REFINE_ROUNDS = 2  # rounds of cutting the worst cells of the quadrature (see _quadrature)
SHAP_RANDOM_BASELINES = 4  # random-token sequences beside the all-[PAD] one
FRACTIONS = (0.1, 0.2, 0.5)  # ERASER's share of tokens removed or kept (at least one token each)
EMPTY_TEXT = (
    "the text has no tokens the model knows: it is empty after preprocessing "
    "(blank, or every word was removed); type a sentence with at least one word"
)


@dataclass(frozen=True)
class MethodAttribution:
    method: str  # a key of METHODS
    title: str  # its display name
    token_scores: list[float]  # one per token, summed over the embedding dimension
    word_scores: list[float | None]  # one per word: the sum of its tokens; None for a word with no token
    delta: float | None  # IG methods only: sum(token_scores) - (F(x) - F(baseline)), in logits
    delta_ratio: float | None  # IG methods only: |delta| / |F(x) - F(baseline)|; None when that is 0
    delta_ok: bool | None  # IG methods only: |delta| <= DELTA_TOLERANCE * |F(x) - F(baseline)|
    baseline: str  # what the text was compared with, in words, and the evaluations spent
    seconds: float


@dataclass(frozen=True)
class Explanation:
    text: str
    tokens: list[str]
    words: list[str]
    word_index: list[int]  # token -> index into words
    probabilities: dict[str, float]  # label -> p(label | text)
    predicted: str
    target: str  # the class whose logit is explained
    attributions: dict[str, MethodAttribution]  # method -> scores, in the order asked for

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_cudnn_lock = threading.Lock()
_cudnn_users = 0  # attributions running now; cuDNN is off while there is at least one
_cudnn_before = True  # the setting to restore when the last one finishes
_rng_lock = threading.Lock()


@contextmanager
def _gradients_allowed() -> Iterator[None]:
    """Backward through the recurrent layer in eval mode: cuDNN's RNN kernel only does it in training mode.

    The switch is process-wide, so concurrent explanations (several users of the app) share it: the
    first one in turns cuDNN off, the last one out restores what was there before.
    """
    global _cudnn_users, _cudnn_before
    with _cudnn_lock:
        if _cudnn_users == 0:
            _cudnn_before = torch.backends.cudnn.enabled
            torch.backends.cudnn.enabled = False
        _cudnn_users += 1
    try:
        yield
    finally:
        with _cudnn_lock:
            _cudnn_users -= 1
            if _cudnn_users == 0:
                torch.backends.cudnn.enabled = _cudnn_before


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """captum draws with numpy and torch's global generators: seed both, then put them back as they were."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with _rng_lock, torch.random.fork_rng(devices=devices):
        state = np.random.get_state()
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


class _Text:
    """One text as the model sees it: (1, T) ids, (1,) length, explained class."""

    def __init__(self, model: TextClassifier, ids: Sequence[int], target: int) -> None:
        device = next(model.parameters()).device
        self.model = model
        self.ids = torch.tensor([list(ids)], device=device)  # (1, T)
        self.lengths = torch.tensor([len(ids)], device=device)  # (1,)
        self.pad = torch.full_like(self.ids, PAD_ID)  # (1, T): the all-[PAD] baseline
        self.target = target
        with torch.no_grad():
            self.emb = model.embedding(self.ids)  # (1, T, E)
            self.pad_emb = model.embedding(self.pad)  # (1, T, E)

    def from_embeddings(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.classify(emb, lengths)  # (B, C)


def _path_inputs(x: _Text, alphas: torch.Tensor) -> torch.Tensor:
    """(K,) float64 positions a on the path -> (K, T, E) word vectors b + a (x - b)."""
    a = alphas.to(x.emb.device, x.emb.dtype)[:, None, None]  # (K, 1, 1)
    return x.pad_emb + a * (x.emb - x.pad_emb)  # (K, T, E)


def _path_logits(x: _Text, alphas: torch.Tensor) -> torch.Tensor:
    """F, the explained logit, at (K,) positions of the path: one batched forward pass, no gradient."""
    with torch.no_grad():
        logits = x.from_embeddings(_path_inputs(x, alphas), x.lengths.expand(len(alphas)))  # (K, C)
    return logits[:, x.target].double().cpu()  # (K,)


def _scale(change: torch.Tensor) -> float:
    """What a change in F is measured against: |F(x) - F(b)|, or 1% of F's total variation if larger."""
    return max(abs(float(change.sum())), 0.01 * float(change.abs().sum()))


def _need_cut(width: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """(M,) > 1 where an interval of the scan must be looked at closer: F changes much or bends inside.

    "Bends": the slope of a neighbour mispredicts the interval's change, so F's slope changes near or
    inside it and one gradient there could misjudge the interval: a steep rise seen only at one end.
    """
    scale = _scale(change)
    if scale == 0:
        return torch.zeros_like(change)
    slope = change / width  # (M,)
    left = torch.cat([slope[1:2], slope[:-1]])  # the first interval has only a right neighbour
    right = torch.cat([slope[1:], slope[-2:-1]])
    bend = torch.maximum((change - width * left).abs(), (change - width * right).abs())
    return torch.maximum(change.abs() / (IG_CHANGE_SHARE * scale), bend / (IG_BEND_SHARE * scale))


def _scan_path(x: _Text) -> tuple[torch.Tensor, torch.Tensor]:
    """F on a grid of the path refined where it changes fast or bends: (M+1,) positions, (M+1,) logits."""
    alphas = torch.linspace(0, 1, IG_SCAN_POINTS + 1, dtype=torch.float64)
    f = _path_logits(x, alphas)
    parts = torch.arange(1, IG_SPLIT, dtype=torch.float64) / IG_SPLIT  # (S-1,)
    for _ in range(IG_LEVELS):
        width, need = alphas.diff(), _need_cut(alphas.diff(), f.diff())  # (M,)
        cut = torch.nonzero((need > 1) & (width > IG_MIN_WIDTH)).flatten()
        if len(cut) == 0:
            break
        cut = cut[need[cut].argsort(descending=True)[:IG_CUTS_PER_LEVEL]]
        new = (alphas[cut, None] + width[cut, None] * parts).flatten()  # (cuts * (S-1),)
        new = new.float().double()  # the positions float32 really evaluates, so widths are exact
        alphas, order = torch.cat([alphas, new]).sort(stable=True)
        f = torch.cat([f, _path_logits(x, new)])[order]
        keep = torch.cat([torch.tensor([True]), alphas.diff() > 0])  # a cut too fine for float32 repeats
        alphas, f = alphas[keep], f[keep]
    return alphas, f


def _jumps(alphas: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(J, 2) [first, last] scan points around each step the scan could not resolve, largest first.

    A step: one scan interval, or two adjacent ones (a step right at a scan point), at the finest
    width, each changing F by more than IG_CHANGE_SHARE of the scale, across which F moves at least 4
    times as steeply as on the intervals either side: isolated, not a steep stretch that the cuts did
    resolve into many narrow intervals.
    """
    width, change = alphas.diff(), f.diff()  # (M,)
    slope = change.abs() / width
    odd = ((width <= IG_MIN_WIDTH) & (change.abs() > IG_CHANGE_SHARE * _scale(change))).long()  # (M,)
    bounds = torch.diff(odd, prepend=odd.new_zeros(1), append=odd.new_zeros(1))  # runs of odd intervals
    first, last = torch.nonzero(bounds == 1).flatten(), torch.nonzero(bounds == -1).flatten()
    before = torch.where(first > 0, slope[(first - 1).clamp(min=0)], 0.0)
    after = torch.where(last < len(width), slope[last.clamp(max=len(width) - 1)], 0.0)
    size = (f[last] - f[first]).abs()
    isolated = (last - first <= 2) & (
        size / (alphas[last] - alphas[first]) > 4 * torch.maximum(before, after)
    )
    steps = torch.stack([first, last], 1)[isolated]  # (J, 2)
    return steps[size[isolated].argsort(descending=True)]


def _path_map(
    alphas: torch.Tensor, f: torch.Tensor, jumps: torch.Tensor
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A change of variable a(s) of the path that spends s where F changes: s -> (a(s), da/ds).

    On scan interval k, ds/da is proportional to IG_EVEN_SHARE * width_k + (1 - IG_EVEN_SHARE) *
    |dF_k| / sum |dF| (zero on jumps, attributed apart), so equal steps of s crowd into steep stretches
    and still cover smooth ones.
    """
    width, size = alphas.diff(), f.diff().abs()  # (M,)
    even = width.clone()
    for first, last in jumps.tolist():
        even[first:last] = size[first:last] = 0
    mass = IG_EVEN_SHARE * even / even.sum()  # (M,)
    mass = mass + (1 - IG_EVEN_SHARE) * size / size.sum() if size.sum() > 0 else mass / IG_EVEN_SHARE
    edges = torch.cat([mass.new_zeros(1), mass.cumsum(0)])  # (M+1,) s at the scan's points
    mass, edges = mass / edges[-1], edges / edges[-1]
    mass = mass.clamp_min(1e-300)  # a jump at the very end is reached only at s = 1, where a = 1

    def to_path(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = (torch.searchsorted(edges, s, right=True) - 1).clamp(0, len(width) - 1)  # (K,) interval of each
        return (alphas[k] + (s - edges[k]) / mass[k] * width[k]).clamp(0, 1), width[k] / mass[k]

    return to_path


def _path_gradients(x: _Text, alphas: torch.Tensor) -> torch.Tensor:
    """dF/d(word vectors) at (K,) positions of the path, one batched backward pass: (K, T, E)."""
    inputs = _path_inputs(x, alphas).requires_grad_()  # (K, T, E)
    with torch.enable_grad():
        logits = x.from_embeddings(inputs, x.lengths.expand(len(alphas)))  # (K, C)
        (grads,) = torch.autograd.grad(logits[:, x.target].sum(), inputs)
    return grads


def _quadrature(
    x: _Text, to_path: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], n: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """n gradient evaluations along the path, placed by `to_path`: (n,) weights, (n, T, E) gradients.

    A midpoint rule in s: cells of s, one node at each cell's middle, weighted by da/ds there times
    the cell's width in s. It starts with n - 4 * (n // 8) equal cells; then twice, the n // 8 cells
    whose node's estimate dF/da * weight misses F's change across the cell (F at the cells' ends:
    forward passes) the most are cut in three, the middle third keeping the node, the outer two
    getting one each: an adaptive quadrature, refining where its own error is largest. Also returns
    the forward passes it spent.
    """
    splits = n // (4 * IG_REFINE_ROUNDS)  # cells cut per round
    edges = torch.linspace(0, 1, n - 2 * IG_REFINE_ROUNDS * splits + 1, dtype=torch.float64)
    lo, hi = edges[:-1], edges[1:]  # (K,) each
    alphas, da = to_path((lo + hi) / 2)
    grads = _path_gradients(x, alphas)  # (K, T, E)
    known_s, known_f = edges, _path_logits(x, to_path(edges)[0])
    diff = x.emb - x.pad_emb  # (1, T, E)
    for _ in range(IG_REFINE_ROUNDS if splits else 0):
        slope = (grads * diff).sum((1, 2)).double().cpu()  # (K,) dF/da at each node
        change = known_f[torch.searchsorted(known_s, hi)] - known_f[torch.searchsorted(known_s, lo)]
        worst = (da * (hi - lo) * slope - change).abs().topk(splits).indices
        keep = torch.ones_like(lo, dtype=torch.bool)
        keep[worst] = False
        third = (hi[worst] - lo[worst]) / 3
        left, right = lo[worst] + third, hi[worst] - third  # the new cell ends
        new_alphas, new_da = to_path(torch.cat([(lo[worst] + left) / 2, (right + hi[worst]) / 2]))
        # cells: kept, middle thirds (old node), left thirds, right thirds
        lo = torch.cat([lo[keep], left, lo[worst], right])
        hi = torch.cat([hi[keep], right, left, hi[worst]])
        da = torch.cat([da[keep], da[worst], new_da])
        grads = torch.cat([grads[keep], grads[worst], _path_gradients(x, new_alphas)])
        order = lo.argsort()
        lo, hi, da, grads = lo[order], hi[order], da[order], grads[order]
        new_s = torch.cat([left, right])
        known_s, order = torch.cat([known_s, new_s]).sort()
        known_f = torch.cat([known_f, _path_logits(x, to_path(new_s)[0])])[order]
    return da * (hi - lo), grads, len(known_s)


def _ig(x: _Text, steps: int, seed: int) -> tuple[torch.Tensor, float | None, str]:
    """Integrated Gradients with `steps` gradient evaluations placed adaptively along the path.

    1. `_scan_path`: forward passes only. F at 65 evenly spaced points, then up to 6 rounds in which
       the (at most 32) worst intervals, where |dF| exceeds 2% of |F(x) - F(b)| or F bends, are cut
       into 8.
    2. `_path_map`: a change of variable that gives steep stretches of the scan 70% of the nodes and
       spreads 30% evenly; `_quadrature`: a midpoint rule in it, whose worst cells are refined twice.
    3. A jump (`_jumps`: an isolated step the scan could not resolve at 1e-6; rare on SST-2, under
       1% of test sentences) gets one gradient g at its middle, and its finite difference dF is
       shared over the word-vector entries as dF * v / sum(v), v = (x - b) * g; if sum(v) has not dF's
       sign (the gradient does not see the step), v = (x - b) * the mean gradient of the other nodes;
       if neither does, the step is left unattributed and shows up in delta.
    delta = sum(scores) - (F(x) - F(b)) from the final scores: the quadrature's own error, never adjusted.
    """
    alphas, f = _scan_path(x)
    jumps = _jumps(alphas, f)[: steps - 1]  # (J, 2)
    weights, grads, forwards = _quadrature(x, _path_map(alphas, f, jumps), steps - len(jumps))
    diff = x.emb - x.pad_emb  # (1, T, E)
    attr = diff * torch.einsum("k,kte->te", weights.to(grads), grads)  # (1, T, E)
    unseen = 0
    if len(jumps):
        mean_grad = grads.mean(0)  # (T, E)
        middles = (alphas[jumps[:, 0]] + alphas[jumps[:, 1]]) / 2  # (J,)
        for (first, last), g in zip(jumps.tolist(), _path_gradients(x, middles), strict=True):
            step = float(f[last] - f[first])
            v = next((v for v in (diff * g, diff * mean_grad) if float(v.sum()) * step > 0), None)
            if v is None:
                unseen += 1
            else:
                attr = attr + step * v / v.sum()  # (1, T, E)
    delta = float(attr.sum()) - float(f[-1] - f[0])
    baseline = (
        f"all [PAD], {x.ids.shape[1]} tokens; {steps} gradient evaluations at adaptive points of the "
        f"straight path, {len(alphas) + forwards} forward evaluations"
    )
    if len(jumps) > unseen:
        baseline += (
            f"; {len(jumps) - unseen} step(s) narrower than {IG_MIN_WIDTH:g} shared by finite difference"
        )
    if unseen:
        baseline += f"; {unseen} such step(s) left unattributed: no gradient sees them"
    return attr, delta, baseline


def _ig_uniform(x: _Text, steps: int, seed: int) -> tuple[torch.Tensor, float | None, str]:
    lig = LayerIntegratedGradients(x.model, x.model.embedding)
    attr, delta = lig.attribute(
        x.ids, baselines=x.pad, target=x.target, additional_forward_args=(x.lengths,),
        n_steps=steps, return_convergence_delta=True,
    )  # fmt: skip
    return attr, float(delta[0]), f"all [PAD], {x.ids.shape[1]} tokens; {steps} evenly spread steps"


def _gradient_shap(x: _Text, steps: int, seed: int) -> tuple[torch.Tensor, float | None, str]:
    T = x.ids.shape[1]
    generator = torch.Generator().manual_seed(seed)
    vocab = x.model.embedding.num_embeddings
    randoms = torch.randint(2, max(vocab, 3), (SHAP_RANDOM_BASELINES, T), generator=generator)  # (K, T)
    with torch.no_grad():
        baselines = torch.cat([x.pad_emb, x.model.embedding(randoms.to(x.ids.device))])  # (K+1, T, E)
    with _seeded(seed, x.ids.device):
        attr = GradientShap(x.from_embeddings).attribute(
            x.emb, baselines=baselines, n_samples=steps, target=x.target, additional_forward_args=(x.lengths,)
        )
    baseline = f"all [PAD] and {SHAP_RANDOM_BASELINES} random-token texts (seed {seed}); {steps} samples"
    return attr, None, baseline


def _occlusion(x: _Text, steps: int, seed: int) -> tuple[torch.Tensor, float | None, str]:
    T, E = x.emb.shape[1:]
    attr = Occlusion(x.from_embeddings).attribute(
        x.emb, sliding_window_shapes=(1, E), baselines=x.pad_emb, target=x.target,
        additional_forward_args=(x.lengths,), perturbations_per_eval=T,
    )  # fmt: skip
    # each of a token's E entries carries the whole drop in the logit; the token score is that drop.
    # Occluding a [PAD] with [PAD] changes nothing: exactly zero, not batched-vs-single rounding noise.
    attr = attr / E * (x.ids != PAD_ID)[..., None]  # (1, T, E)
    return attr, None, "each token in turn replaced by [PAD]"


def _saliency(x: _Text, steps: int, seed: int) -> tuple[torch.Tensor, float | None, str]:
    attr = Saliency(x.from_embeddings).attribute(
        x.emb.requires_grad_(), target=x.target, abs=True, additional_forward_args=(x.lengths,)
    )
    return attr, None, "none (local gradient)"


def _input_x_gradient(x: _Text, steps: int, seed: int) -> tuple[torch.Tensor, float | None, str]:
    attr = LayerGradientXActivation(x.model, x.model.embedding).attribute(
        x.ids, target=x.target, additional_forward_args=(x.lengths,)
    )
    return attr, None, "zero vector (first-order)"


_METHOD_FNS: dict[str, Callable[[_Text, int, int], tuple[torch.Tensor, float | None, str]]] = {
    "ig": _ig,
    "ig_uniform": _ig_uniform,
    "gradient_shap": _gradient_shap,
    "occlusion": _occlusion,
    "saliency": _saliency,
    "input_x_gradient": _input_x_gradient,
}


def _check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be chosen from {', '.join(METHODS)}; got {list(methods)}")


def _check_model(model: TextClassifier) -> None:
    if model.training:
        raise ValueError(
            "the model is in training mode (dropout would explain a random mask); call model.eval()"
        )


def attribute(
    model: TextClassifier,
    ids: Sequence[int],
    target: int,
    method: str = "ig",
    *,
    steps: int = 50,
    seed: int = 0,
    word_index: Sequence[int] | None = None,
    n_words: int | None = None,
) -> MethodAttribution:
    """One method's scores for token ids (`Encoded.ids`), explaining class index `target`.

    `word_index` (token -> word) groups the scores into `n_words` words; by default each token is a word.
    """
    _check_methods([method])
    _check_model(model)
    if len(ids) == 0:
        raise ValueError(EMPTY_TEXT)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0 <= target < model.head.out_features:
        raise ValueError(f"target must be a class index in 0..{model.head.out_features - 1}, got {target}")
    start = time.perf_counter()
    x = _Text(model, ids, target)
    with _gradients_allowed():  # every method, gradient-based or not, runs inside this
        attr, delta, baseline = _METHOD_FNS[method](x, steps, seed)
    token_scores = attr[0].sum(-1).tolist()  # (T, E) -> T
    delta_ratio = delta_ok = None
    if delta is not None:
        with torch.no_grad():
            gap = float(model(x.ids, x.lengths)[0, target] - model(x.pad, x.lengths)[0, target])
        delta_ratio = abs(delta) / abs(gap) if gap != 0 else None
        delta_ok = abs(delta) <= DELTA_TOLERANCE * abs(gap)
    if word_index is None:
        word_index = range(len(ids))
    if n_words is None:
        n_words = max(word_index, default=-1) + 1
    return MethodAttribution(
        method=method,
        title=METHODS[method],
        token_scores=token_scores,
        word_scores=group_words(token_scores, word_index, n_words),
        delta=delta,
        delta_ratio=delta_ratio,
        delta_ok=delta_ok,
        baseline=baseline,
        seconds=time.perf_counter() - start,
    )


def group_words(token_scores: Sequence[float], word_index: Sequence[int], n_words: int) -> list[float | None]:
    """Sum subword scores per word; a word no token came from (a removed stop word) gets None."""
    words: list[float | None] = [None] * n_words
    for score, w in zip(token_scores, word_index, strict=True):
        words[w] = (words[w] or 0.0) + score
    return words


def resolve_target(labels: Sequence[str], target: str | None, predicted: int) -> int:
    """The class to explain: the predicted one by default, else the one named `target`."""
    if target is None:
        return predicted
    if target not in labels:
        raise ValueError(f"unknown label {target!r}; the model's labels are: {', '.join(labels)}")
    return list(labels).index(target)


def _probabilities(model: TextClassifier, ids: Sequence[int], labels: Sequence[str]) -> list[float]:
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(torch.tensor([list(ids)], device=device), torch.tensor([len(ids)], device=device))
    if logits.shape[1] != len(labels):
        raise ValueError(f"the model has {logits.shape[1]} classes but {len(labels)} labels were given")
    return torch.softmax(logits[0].float(), -1).tolist()


def explain(
    model: TextClassifier,
    encoder: Any,
    labels: Sequence[str],
    text: str,
    methods: Sequence[str] = ("ig",),
    target: str | None = None,
    steps: int = 50,
    seed: int = 0,
) -> Explanation:
    """Explain the model's answer for `text` with each of `methods` (keys of METHODS).

    `encoder` is the run's `tokenization.TextEncoder`; `target` a label name (default: the predicted one).
    """
    _check_methods(methods)
    _check_model(model)
    enc = encoder.encode(text)
    if not enc.ids:
        raise ValueError(EMPTY_TEXT)
    probs = _probabilities(model, enc.ids, labels)
    predicted = max(range(len(probs)), key=probs.__getitem__)
    c = resolve_target(labels, target, predicted)
    attributions = {
        m: attribute(
            model, enc.ids, c, m, steps=steps, seed=seed, word_index=enc.word_index, n_words=len(enc.words)
        )
        for m in dict.fromkeys(methods)
    }
    return Explanation(
        text=text,
        tokens=list(enc.tokens),
        words=list(enc.words),
        word_index=list(enc.word_index),
        probabilities=dict(zip(labels, probs, strict=True)),
        predicted=labels[predicted],
        target=labels[c],
        attributions=attributions,
    )


def _top(scores: Sequence[float], m: int) -> list[int]:
    """Positions of the m highest scores (ties: earlier first)."""
    return sorted(sorted(range(len(scores)), key=lambda t: (-scores[t], t))[:m])


def _erasures(ids: Sequence[int], ranking: Sequence[float]) -> list[list[int]]:
    """For each fraction: the text without its top tokens, then the text with only its top tokens.

    Tokens are deleted, not masked (ERASER), keeping the survivors' order; a text with nothing left
    becomes a single [PAD], which is what "no evidence" looks like to the model.
    """
    out = []
    for fraction in FRACTIONS:
        m = min(len(ids), max(1, round(fraction * len(ids))))
        top = set(_top(ranking, m))
        out.append([i for t, i in enumerate(ids) if t not in top] or [PAD_ID])
        out.append([i for t, i in enumerate(ids) if t in top])
    return out


def _target_probs(model: TextClassifier, seqs: list[list[int]], target: int) -> list[float]:
    device = next(model.parameters()).device
    T = max(map(len, seqs))
    ids = torch.tensor([s + [PAD_ID] * (T - len(s)) for s in seqs], device=device)  # (B, T)
    lengths = torch.tensor([len(s) for s in seqs], device=device)  # (B,)
    with torch.no_grad():
        return torch.softmax(model(ids, lengths).float(), -1)[:, target].tolist()


def faithfulness(
    model: TextClassifier,
    encoder: Any,
    labels: Sequence[str],
    texts: Sequence[str],
    methods: Sequence[str] = ("ig",),
    n: int = 200,
    seed: int = 0,
    steps: int = 50,
) -> dict[str, dict[str, float]]:
    """ERASER comprehensiveness and sufficiency (DeYoung et al. 2020) of each method, and of chance.

    For up to `n` texts (a seeded sample when there are more), explaining the predicted class c:
    comprehensiveness = p(c|x) - p(c|x without its top-k% tokens) (higher: the ranking found what
    mattered), sufficiency = p(c|x) - p(c|only its top-k% tokens) (lower: those tokens suffice), each
    averaged over k in FRACTIONS; "random" ranks tokens in a seeded random order. Each IG method also
    gets "delta_ok_share", the share of texts whose convergence delta is within DELTA_TOLERANCE, and
    "delta_ratio_median", the median |delta| / |F(x) - F(baseline)|.
    """
    _check_methods(methods)
    _check_model(model)
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(texts)), n)) if len(texts) > n else range(len(texts))
    names = [*dict.fromkeys(methods), "random"]
    comp: dict[str, list[float]] = {m: [] for m in names}
    suff: dict[str, list[float]] = {m: [] for m in names}
    ratios: dict[str, list[float | None]] = {m: [] for m in names}
    oks: dict[str, list[bool]] = {m: [] for m in names}
    for i in chosen:
        ids = encoder.encode(texts[i]).ids
        if not ids:
            continue
        full = _probabilities(model, ids, labels)
        c = max(range(len(full)), key=full.__getitem__)
        rankings = {}
        for m in names[:-1]:
            a = attribute(model, ids, c, m, steps=steps, seed=seed)
            rankings[m] = a.token_scores
            if a.delta_ok is not None:
                ratios[m].append(a.delta_ratio)
                oks[m].append(a.delta_ok)
        rankings["random"] = [rng.random() for _ in ids]
        seqs = [s for m in names for s in _erasures(ids, rankings[m])]
        probs = _target_probs(model, seqs, c)
        per_method = 2 * len(FRACTIONS)
        for j, m in enumerate(names):
            chunk = probs[j * per_method : (j + 1) * per_method]
            comp[m].append(full[c] - mean(chunk[0::2]))
            suff[m].append(full[c] - mean(chunk[1::2]))
    if not comp["random"]:
        raise ValueError("none of the texts has a token the model knows")
    result = {
        m: {"comprehensiveness": mean(comp[m]), "sufficiency": mean(suff[m]), "n": float(len(comp[m]))}
        for m in names
    }
    for m in names:
        if oks[m]:
            finite = [r for r in ratios[m] if r is not None]
            result[m]["delta_ok_share"] = mean(oks[m])
            result[m]["delta_ratio_median"] = median(finite) if finite else float("nan")
    return result
