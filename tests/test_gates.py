"""Gate traces replay the trained recurrent layer exactly; unit selection and the decision path."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_demo import gates
from lstm_demo.config import ModelConfig
from lstm_demo.gates import STATE_NAMES, decision_path, recompute, select_units, trace
from lstm_demo.model import TextClassifier

LENGTHS = [6, 3, 1, 5]  # a padded batch: rows of different lengths, max 6


def _model(encoder="lstm", pooling="max", bidirectional=True, num_layers=2, seed=0) -> TextClassifier:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        encoder=encoder,
        embedding_dim=8,
        hidden_size=6,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pooling=pooling,
        vocab_size=30,
        num_classes=3,
    )
    return TextClassifier(cfg).eval()


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recomputed_states_equal_the_torch_module(kind, num_layers, bidirectional):
    torch.manual_seed(1)
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    rnn = cls(5, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=True).eval()
    lengths = torch.tensor(LENGTHS)
    x = torch.randn(len(LENGTHS), max(LENGTHS), 5)  # (B, T, In)
    x = x * (torch.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]  # garbage-free padding
    x[1, 3:] = 7.0  # ...except one row, whose padding must not leak into its real positions

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, final = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, T, D*H)
    h_n, c_n = final if kind == "lstm" else (final, None)  # (L*D, B, H)

    traces, replay_out = recompute(rnn, x, lengths)
    torch.testing.assert_close(replay_out, out, atol=1e-5, rtol=0)
    last = lengths - 1
    rows = torch.arange(len(LENGTHS))
    for (layer, direction), states in traces.items():
        assert set(states) == set(STATE_NAMES[kind])
        d = 0 if direction == "forward" else 1
        end = last if direction == "forward" else torch.zeros_like(last)  # where each direction finishes
        index = layer * (2 if bidirectional else 1) + d
        torch.testing.assert_close(states["hidden"][rows, end], h_n[index], atol=1e-5, rtol=0)
        if kind == "lstm":
            torch.testing.assert_close(states["cell"][rows, end], c_n[index], atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("encoder,bidirectional", [("lstm", True), ("lstm", False), ("gru", True)])
def test_trace_reproduces_the_models_prediction(pooling, encoder, bidirectional):
    model = _model(encoder, pooling, bidirectional)
    ids = [4, 9, 2, 17, 5]
    t = trace(model, ids, ["a", "b", "c", "d", "e"])
    with torch.no_grad():
        logits = model(torch.tensor([ids]), torch.tensor([len(ids)]))[0]
    assert t.probabilities == pytest.approx(torch.softmax(logits, -1).tolist(), abs=1e-5)
    assert t.predicted == int(logits.argmax())
    assert len(t.layers) == 2 * (2 if bidirectional else 1)
    assert all(len(rows) == len(ids) and len(rows[0]) == 6 for lt in t.layers for rows in lt.states.values())
    # the unit contributions split the centred logits exactly
    bias = (model.head.bias - model.head.bias.mean()).detach()
    centred = (logits - logits.mean()).tolist()
    for c, row in enumerate(t.unit_contributions):
        assert sum(row) + float(bias[c]) == pytest.approx(centred[c], abs=1e-5)
    assert t.to_dict()["layers"][0]["direction"] == "forward"


def test_backward_trace_is_aligned_with_the_tokens():
    model = _model("lstm", "max", bidirectional=True, num_layers=1)
    ids = [3, 8, 11, 4]
    full = trace(model, ids).layer(0, "backward").states["hidden"]
    # the backward state at token 2 summarises tokens 2..3: the same as tracing that suffix alone
    suffix = trace(model, ids[2:]).layer(0, "backward").states["hidden"]
    assert full[2] == pytest.approx(suffix[0], abs=1e-6)
    # and the forward state at token 1 is the forward state of the prefix
    prefix = trace(model, ids[:2]).layer(0, "forward").states["hidden"]
    assert trace(model, ids).layer(0, "forward").states["hidden"][1] == pytest.approx(prefix[1], abs=1e-6)


def test_select_units_by_variance_contribution_and_index():
    model = _model("lstm", "max", bidirectional=True)
    t = trace(model, [4, 9, 2, 17, 5, 5, 21])
    values = torch.tensor(t.layer(-1, "backward").states["cell"])  # (T, H)
    by_var = select_units(t, "variance", 3, direction="backward", state="cell")
    assert by_var == values.var(0, unbiased=False).argsort(descending=True)[:3].tolist()

    by_contrib = select_units(t, "contribution", 6, direction="backward", target=1)
    scores = t.unit_contributions[1][6:12]  # the backward half of the pooled vector
    assert [scores[u] for u in by_contrib] == sorted(scores, reverse=True)
    assert select_units(t, "contribution", 2) == select_units(t, "contribution", 2, target=t.predicted)

    assert select_units(t, "index", indices=[5, 0, 5]) == [5, 0]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mode": "index"}, "needs indices"),
        ({"mode": "index", "indices": [6]}, "0..5"),
        ({"mode": "contribution", "layer": 0}, "last layer"),
        ({"mode": "variance", "state": "reset"}, "state must be one of"),
        ({"mode": "variance", "direction": "sideways"}, "direction"),
        ({"mode": "variance", "layer": 2}, "layer must be in 0..1"),
        ({"mode": "best"}, "mode must be one of"),
    ],
)
def test_select_units_rejects_bad_requests(kwargs, message):
    t = trace(_model(), [4, 9, 2])
    with pytest.raises(ValueError, match=message):
        select_units(t, **kwargs)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
def test_decision_path_row_t_is_the_prediction_for_the_prefix(pooling):
    model = _model("lstm", pooling, bidirectional=True)
    ids = [4, 9, 2, 17, 5]
    path = decision_path(model, ids, ["a", "b", "c"], tokens=list("vwxyz"))
    assert path.tokens == list("vwxyz") and path.labels == ["a", "b", "c"]
    assert len(path.probabilities) == len(ids)
    for t in range(len(ids)):
        with torch.no_grad():
            alone = torch.softmax(model(torch.tensor([ids[: t + 1]]), torch.tensor([t + 1]))[0], -1)
        assert path.probabilities[t] == pytest.approx(alone.tolist(), abs=1e-5)


@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_a_long_decision_path_goes_in_chunks_linear_in_its_length_with_the_same_result(pooling, monkeypatch):
    model = _model("lstm", pooling, bidirectional=True)
    ids = [int(i) for i in torch.randint(2, 30, (120,), generator=torch.Generator().manual_seed(1))]
    T = len(ids)
    whole = torch.tensor(decision_path(model, ids, ["a", "b", "c"]).probabilities)  # one chunk: T * T ids
    shapes = []
    forward = TextClassifier.forward

    def counted(self, ids_, *args, **kwargs):
        shapes.append(tuple(ids_.shape))
        return forward(self, ids_, *args, **kwargs)

    monkeypatch.setattr(TextClassifier, "forward", counted)
    monkeypatch.setattr(gates, "DECISION_CHUNK_TOKENS", 4 * T)  # four prefixes per chunk
    chunked = torch.tensor(decision_path(model, ids, ["a", "b", "c"]).probabilities)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    assert sum(rows for rows, _ in shapes) == T and len(shapes) == T // 4
    assert max(rows * width for rows, width in shapes) <= 4 * T < T * T  # no (T, T) batch was built
    assert [width for _, width in shapes] == list(range(4, T + 1, 4))  # each chunk cut to its longest prefix


def test_refuses_empty_texts_training_mode_and_wrong_labels():
    model = _model()
    with pytest.raises(ValueError, match="no tokens"):
        trace(model, [])
    with pytest.raises(ValueError, match="3 classes but 2 labels"):
        decision_path(model, [3, 4], ["a", "b"])
    with pytest.raises(ValueError, match="training mode"):
        decision_path(model.train(), [3, 4], ["a", "b", "c"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_traces_and_decision_paths_on_cuda_equal_the_cpu():
    cpu = _model("lstm", "attention", bidirectional=True)
    gpu = _model("lstm", "attention", bidirectional=True).cuda()
    ids = [4, 9, 2, 17, 5]
    on_cpu, on_gpu = trace(cpu, ids), trace(gpu, ids)
    for a, b in zip(on_cpu.layers, on_gpu.layers, strict=True):
        for name in a.states:
            torch.testing.assert_close(
                torch.tensor(b.states[name]), torch.tensor(a.states[name]), atol=1e-4, rtol=0
            )
    path = decision_path(gpu, ids, ["a", "b", "c"]).probabilities
    assert torch.allclose(
        torch.tensor(path), torch.tensor(decision_path(cpu, ids, ["a", "b", "c"]).probabilities), atol=1e-4
    )
