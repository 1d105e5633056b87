"""Why did the model say that? Token attributions through Captum, and how faithful they are.

The only module that imports captum. Every method explains one class logit (the predicted class by
default) of one text, and scores each token by summing its attribution over the embedding
dimension; subword scores are then summed per word for display. Methods:

* ``ig``: Integrated Gradients on the embedding layer, from an all-[PAD] baseline b of the same length
  (the [PAD] vector is the embedding's zero row), attributing F = the target logit. The path integral
  IG_i = (x_i - b_i) * integral_0^1 dF/de_i(b + a (x - b)) da is the textbook one; only its quadrature
  nodes are placed adaptively, because a trained recurrent model can be nearly discontinuous along
  that straight path, which evenly spaced nodes step over (how often each meets the completeness
  bound: `python -m benchmarks.explain_bench --faithfulness`, figures in the README). The rule is in
  `integration.adaptive_ig`. Completeness says the token scores sum to F(x) - F(b); the gap (the
  convergence delta, computed from the final scores, never adjusted) is returned and flagged above
  `names.DELTA_TOLERANCE`.
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

from .integration import Sentence as _Text
from .integration import adaptive_ig
from .model import TextClassifier
from .names import DELTA_TOLERANCE, METHODS, PAD_ID  # noqa: F401  (METHODS, DELTA_TOLERANCE: re-exported)

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


def _ig(x: _Text, steps: int, seed: int) -> tuple[torch.Tensor, float | None, str]:
    return adaptive_ig(x, steps)


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
