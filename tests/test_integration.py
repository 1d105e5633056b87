"""Adaptive Integrated Gradients: completeness across cliffs that evenly spaced steps step over."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_demo.config import ModelConfig
from lstm_demo.explain import attribute
from lstm_demo.integration import (
    IG_CUTS_PER_LEVEL,
    IG_LEVELS,
    IG_SCAN_POINTS,
    IG_SPLIT,
    Sentence,
    adaptive_ig,
)
from lstm_demo.model import TextClassifier
from lstm_demo.names import PAD_ID


def _logit(model, ids, target, pad=False):
    ids_t = torch.tensor([[PAD_ID] * len(ids) if pad else ids])
    with torch.no_grad():
        return float(model(ids_t, torch.tensor([len(ids)]))[0, target])


class _Adaptive:
    """What `adaptive_ig` returns, as token scores."""

    def __init__(self, model, ids, target, steps=50):
        attr, self.delta, self.baseline = adaptive_ig(Sentence(model, ids, target), steps)
        self.token_scores = attr[0].sum(-1).tolist()  # (T,)
        gap = _logit(model, ids, target) - _logit(model, ids, target, pad=True)
        self.delta_ok = abs(self.delta) <= 0.05 * abs(gap)


def _cliff(where: float, steepness: float, height: float = 10.0) -> TextClassifier:
    """One word, one LSTM unit, weights set by hand so that the logit falls off a cliff along IG's path.

    The word vector is x = 1, so the path is a * 1. The input gate is sigmoid(steepness * (a - where));
    the forget gate is shut and the candidate and output gates wide open, so h = tanh(input gate) and
    the logit climbs height * tanh(1) ~ 7.6 within ~4 / steepness of a = `where`.
    """
    cfg = ModelConfig(
        embedding_dim=1, hidden_size=1, bidirectional=False, pooling="last", embedding_dropout=0.0,
        recurrent_dropout=0.0, dropout=0.0, vocab_size=3, num_classes=2,
    )  # fmt: skip
    model = TextClassifier(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embedding.weight[1] = 1.0
        model.encoder.rnn.weight_ih_l0[0] = steepness  # gates in PyTorch's order: i, f, g, o
        model.encoder.rnn.bias_ih_l0[:] = torch.tensor([-steepness * where, -30.0, 30.0, 30.0])
        model.head.weight[1] = height
    return model.eval()


@pytest.mark.parametrize("where", [0.37, 0.61, 0.83])
@pytest.mark.parametrize("steepness", [300.0, 3e3, 3e4, 3e5])
def test_adaptive_ig_keeps_completeness_across_a_cliff_that_even_steps_step_over(where, steepness):
    model = _cliff(where, steepness)
    gap = _logit(model, [1], 1) - _logit(model, [1], 1, pad=True)
    assert gap == pytest.approx(10 * np.tanh(1), rel=1e-3)
    uniform = attribute(model, [1], 1, "ig_uniform")  # 50 evenly spread steps
    assert uniform.delta_ratio > 0.1 and not uniform.delta_ok
    adaptive = _Adaptive(model, [1], 1)  # 50 gradient evaluations too, placed by a scan of F
    assert adaptive.delta_ok and adaptive.token_scores[0] == pytest.approx(gap, rel=0.02)
    assert adaptive.delta == pytest.approx(adaptive.token_scores[0] - gap, abs=1e-4)  # measured, not set
    assert "50 gradient evaluations" in adaptive.baseline and "forward evaluations" in adaptive.baseline


def test_a_step_narrower_than_float32_resolves_is_shared_by_finite_difference_or_left_flagged():
    """No scan resolves a step of width 1e-8; IG's integral is then the step itself, dF across it."""
    model = _cliff(0.37, 1e8)  # the gradient inside the last interval around the step still sees it
    gap = _logit(model, [1], 1) - _logit(model, [1], 1, pad=True)
    a = _Adaptive(model, [1], 1)
    assert a.delta_ok and a.token_scores[0] == pytest.approx(gap, rel=1e-3)
    assert "1 step(s) narrower than 1e-06 shared by finite difference" in a.baseline
    # a step so sharp that float32 sees no gradient anywhere: nothing to share it by, so it is left
    # out and delta says so, rather than being forced into the scores
    a = _Adaptive(_cliff(0.37, 1e9), [1], 1)
    assert a.token_scores == [0.0] and a.delta == pytest.approx(-gap, rel=1e-4) and not a.delta_ok
    assert "left unattributed" in a.baseline


def _random_model(seed: int = 0) -> TextClassifier:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        embedding_dim=8, hidden_size=8, pooling="max", embedding_dropout=0.0, recurrent_dropout=0.0,
        dropout=0.0, vocab_size=20, num_classes=2,
    )  # fmt: skip
    return TextClassifier(cfg).eval()


def test_adaptive_and_captum_ig_compute_the_same_integral_on_a_smooth_path():
    model = _random_model()
    ids = [3, 7, 12, 5, 9]
    adaptive = _Adaptive(model, ids, 1)
    captum = attribute(model, ids, 1, "ig_uniform", steps=1000)
    assert adaptive.token_scores == pytest.approx(
        captum.token_scores, abs=0.01 * max(map(abs, captum.token_scores))
    )
    assert adaptive.delta_ok


@pytest.mark.parametrize("steps", [1, 7, 50, 300])
def test_adaptive_ig_spends_exactly_its_gradient_evaluations_and_a_bounded_scan(steps):
    model = _cliff(0.61, 3e4)
    baseline = _Adaptive(model, [1], 1, steps=steps).baseline
    assert f"{steps} gradient evaluations" in baseline
    forwards = int(baseline.split(" forward evaluations")[0].rsplit(" ", 1)[1])
    scan = IG_SCAN_POINTS + 1 + IG_LEVELS * IG_CUTS_PER_LEVEL * (IG_SPLIT - 1)
    assert forwards <= scan + steps + 1  # the scan, then the quadrature's cell ends
