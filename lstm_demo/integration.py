"""Integrated Gradients along the straight path with adaptively placed nodes (torch only).

IG_i = (x_i - b_i) * integral_0^1 dF/de_i(b + a (x - b)) da. A trained recurrent classifier can be
nearly discontinuous along that path (its logit can change sign within a tiny stretch of a), so
evenly spaced nodes miss whole steps and break completeness (`benchmarks.explain_bench`). Here the
integral is the same; its nodes are placed where a forward-only scan shows F changing (`adaptive_ig`).
`explain.py` offers it as method `ig` beside captum's evenly spaced `ig_uniform`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .model import TextClassifier
from .names import PAD_ID

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


class Sentence:
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


def _path_inputs(x: Sentence, alphas: torch.Tensor) -> torch.Tensor:
    """(K,) float64 positions a on the path -> (K, T, E) word vectors b + a (x - b)."""
    a = alphas.to(x.emb.device, x.emb.dtype)[:, None, None]  # (K, 1, 1)
    return x.pad_emb + a * (x.emb - x.pad_emb)  # (K, T, E)


def _path_logits(x: Sentence, alphas: torch.Tensor) -> torch.Tensor:
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


def _scan_path(x: Sentence) -> tuple[torch.Tensor, torch.Tensor]:
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


def _path_gradients(x: Sentence, alphas: torch.Tensor) -> torch.Tensor:
    """dF/d(word vectors) at (K,) positions of the path, one batched backward pass: (K, T, E)."""
    inputs = _path_inputs(x, alphas).requires_grad_()  # (K, T, E)
    with torch.enable_grad():
        logits = x.from_embeddings(inputs, x.lengths.expand(len(alphas)))  # (K, C)
        (grads,) = torch.autograd.grad(logits[:, x.target].sum(), inputs)
    return grads


def _quadrature(
    x: Sentence, to_path: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], n: int
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


def adaptive_ig(x: Sentence, steps: int) -> tuple[torch.Tensor, float, str]:
    """Integrated Gradients with `steps` gradient evaluations placed adaptively along the path.

    1. `_scan_path`: forward passes only. F at IG_SCAN_POINTS + 1 evenly spaced points, then up to
       IG_LEVELS rounds in which the (at most IG_CUTS_PER_LEVEL) worst intervals, where |dF| exceeds
       IG_CHANGE_SHARE of |F(x) - F(b)| or F bends, are cut into IG_SPLIT.
    2. `_path_map`: a change of variable that gives steep stretches of the scan 1 - IG_EVEN_SHARE of
       the nodes and spreads the rest evenly; `_quadrature`: a midpoint rule in it, whose worst cells
       are refined IG_REFINE_ROUNDS times.
    3. A jump (`_jumps`: an isolated step the scan could not resolve at IG_MIN_WIDTH; rare) gets one
       gradient g at its middle, and its finite difference dF is
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
