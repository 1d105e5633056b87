"""The classifier: shapes for every variant, padding that never changes a result, DropConnect."""

from __future__ import annotations

import pytest
import torch

from lstm_demo.config import ENCODERS, POOLINGS, ModelConfig
from lstm_demo.model import TextClassifier, dropout, reverse_within_length

VOCAB, CLASSES = 40, 3
SEQS = [[5, 9, 2, 33, 7], [12, 3], [4, 4, 8, 21, 30, 2, 17], [39]]  # different lengths, max 7


def _cfg(**kw) -> ModelConfig:
    base = dict(
        embedding_dim=8,
        hidden_size=6,
        vocab_size=VOCAB,
        num_classes=CLASSES,
        embedding_dropout=0.0,
        dropout=0.0,
        recurrent_dropout=0.0,
    )
    return ModelConfig(**{**base, **kw})


def _model(seed: int = 0, packing: str = "padded", **kw) -> TextClassifier:
    torch.manual_seed(seed)
    return TextClassifier(_cfg(**kw), packing=packing)


def _batch(seqs: list[list[int]], extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T + extra) ids and (B,) lengths."""
    T = max(len(s) for s in seqs) + extra
    ids = torch.zeros(len(seqs), T, dtype=torch.long)  # (B, T)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, torch.tensor([len(s) for s in seqs])


VARIANTS = [
    pytest.param(encoder, pooling, bidi, id=f"{encoder}-{pooling}-{'bi' if bidi else 'uni'}")
    for encoder in ENCODERS
    for pooling in POOLINGS
    for bidi in (False, True)
]


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("encoder, pooling, bidirectional", VARIANTS)
def test_logits_have_one_row_per_text_and_one_column_per_class(encoder, pooling, bidirectional, num_layers):
    model = _model(encoder=encoder, pooling=pooling, bidirectional=bidirectional, num_layers=num_layers)
    ids, lengths = _batch(SEQS)
    logits = model(ids, lengths)
    assert logits.shape == (len(SEQS), CLASSES)
    assert torch.isfinite(logits).all()
    out = model.encoder(model.embedding(ids), lengths)
    assert out.shape == (len(SEQS), ids.shape[1], 6 * (2 if bidirectional else 1))  # (B, T, D*H)
    logits.sum().backward()  # every variant trains
    assert model.embedding.weight.grad is not None and model.encoder.rnn.weight_hh_l0.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder, pooling, bidirectional", VARIANTS)
def test_padding_never_changes_the_logits(encoder, pooling, bidirectional):
    kw = dict(encoder=encoder, pooling=pooling, bidirectional=bidirectional, num_layers=2)
    padded = _model(**kw).eval()
    paired = _model(packing="paired", **kw).eval()
    packed = _model(packing="packed", **kw).eval()
    paired.load_state_dict(padded.state_dict())
    packed.load_state_dict(padded.state_dict())
    with torch.no_grad():
        alone = torch.cat([padded(*_batch([s])) for s in SEQS])  # no padding at all
        batch = padded(*_batch(SEQS))
        more_padding = padded(*_batch(SEQS, extra=5))
        via_pairing = paired(*_batch(SEQS, extra=3))
        via_packing = packed(*_batch(SEQS, extra=2))
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(more_padding, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(via_pairing, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(via_packing, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_paired_directions_train_exactly_as_two_calls(encoder):
    """One call of 2H units with block-diagonal weights: the same outputs and the same gradients."""
    kw = dict(encoder=encoder, bidirectional=True, num_layers=2, pooling="mean", recurrent_dropout=0.3)
    grads = {}
    for packing in ("padded", "paired"):
        model = _model(packing=packing, **kw).double().train()
        ids, lengths = _batch(SEQS, extra=2)
        torch.manual_seed(5)  # the same DropConnect masks on both paths
        logits = model(ids, lengths)
        logits.square().sum().backward()
        grads[packing] = (logits.detach(), {n: p.grad for n, p in model.named_parameters()})
    (a, ga), (b, gb) = grads["padded"], grads["paired"]
    torch.testing.assert_close(b, a, atol=1e-12, rtol=0)
    assert ga.keys() == gb.keys()
    for name in ga:  # reverse-direction and input weights included: the zero blocks leak nothing
        torch.testing.assert_close(gb[name], ga[name], atol=1e-12, rtol=1e-9, msg=name)


@pytest.mark.parametrize("encoder, pooling, bidirectional", VARIANTS)
def test_a_batch_without_padding_takes_one_fused_call_with_the_same_result(encoder, pooling, bidirectional):
    model = _model(encoder=encoder, pooling=pooling, bidirectional=bidirectional, num_layers=2).eval()
    ids, lengths = _batch([[5, 9, 2, 33, 7], [4, 4, 8, 21, 30], [1, 2, 3, 4, 5]])  # all five long
    calls = []
    recur = model.encoder._recur

    def spy(x, params, num_layers, bidirectional):
        calls.append((num_layers, bidirectional, len(params)))
        return recur(x, params, num_layers, bidirectional)

    model.encoder._recur = spy
    with torch.no_grad():
        fused, detected = model(ids, lengths, padded=False), model(ids, lengths)
        whole_stack = (2, bidirectional, 4 * 2 * (2 if bidirectional else 1))  # every layer and direction
        assert calls == [whole_stack, whole_stack]  # one call each, for padded=False and when detected
        calls.clear()
        exact = model(ids, lengths, padded=True)  # the per-direction path that handles padding
    assert calls == ([(1, False, 4)] * 4 if bidirectional else [whole_stack])
    torch.testing.assert_close(fused, exact, atol=1e-5, rtol=0)
    torch.testing.assert_close(detected, fused, atol=0, rtol=0)


def test_lengths_default_to_the_non_pad_tokens():
    model = _model(bidirectional=True, pooling="last").eval()
    ids, lengths = _batch(SEQS, extra=3)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(ids, lengths))


def test_reverse_within_length_leaves_padding_in_place():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])  # (B, T)
    out = reverse_within_length(x, torch.tensor([3, 2]))
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def _dropconnect_model(p: float, bidirectional: bool = False) -> TextClassifier:
    return _model(recurrent_dropout=p, bidirectional=bidirectional, pooling="mean")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_dropconnect_masks_recurrent_weights_in_training_only(bidirectional):
    model = _dropconnect_model(0.5, bidirectional).train()
    ids, lengths = _batch(SEQS)
    stored = model.encoder.rnn.weight_hh_l0.detach().clone()
    first, second = model(ids, lengths), model(ids, lengths)
    assert not torch.allclose(first, second)  # a fresh mask each forward
    torch.testing.assert_close(
        model.encoder.rnn.weight_hh_l0.detach(), stored
    )  # the stored weights stay whole
    second.sum().backward()
    grad = model.encoder.rnn.weight_hh_l0.grad
    assert grad is not None and grad.abs().sum() > 0
    assert (grad == 0).any()  # dropped connections get no gradient
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(ids, lengths), model(ids, lengths), atol=0, rtol=0)


def test_without_recurrent_dropout_training_forwards_agree():
    model = _dropconnect_model(0.0).train()  # all other dropouts are 0 too (see _cfg)
    ids, lengths = _batch(SEQS)
    torch.testing.assert_close(model(ids, lengths), model(ids, lengths), atol=0, rtol=0)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"vocab_size": 1}, "vocab_size must be at least 2"),
        ({"vocab_size": 0}, "vocab_size must be at least 2"),
        ({"num_classes": 1}, "num_classes must be at least 2"),
    ],
)
def test_model_refuses_a_vocabulary_or_label_set_it_cannot_use(kw, message):
    with pytest.raises(ValueError, match=message):
        TextClassifier(_cfg(**kw))


def test_model_refuses_an_unknown_packing():
    with pytest.raises(ValueError, match="packing"):
        TextClassifier(_cfg(), packing="auto")


def test_the_embedding_initialisation_is_chosen_by_the_config():
    uniform = _model(embedding_dim=64).embedding.weight.detach()
    normal = _model(embedding_dim=64, embedding_init="normal").embedding.weight.detach()
    assert uniform[1:].abs().max() <= 0.05 and 0.8 < normal[1:].std() < 1.2
    assert not uniform[0].any() and not normal[0].any()  # [PAD] stays zero


@pytest.mark.parametrize("variational", [False, True])
def test_variational_dropout_shares_one_mask_across_time(variational):
    model = _model(embedding_dropout=0.5, variational_dropout=variational).train()
    kept = model._embedding_dropout(torch.ones(4, 9, 8)) != 0  # (B, T, E)
    same_every_step = bool((kept == kept[:, :1]).all())
    assert same_every_step == variational
    assert 0.2 < kept.float().mean() < 0.8  # about half the units dropped either way
    assert torch.equal(model.eval()._embedding_dropout(torch.ones(4, 9, 8)), torch.ones(4, 9, 8))


def test_state_dict_holds_only_the_real_weights():
    model = _model(bidirectional=True, num_layers=2, pooling="attention")
    names = set(model.state_dict())
    assert "encoder.rnn.weight_hh_l1_reverse" in names and "pooling.score.weight" in names
    assert all(n.split(".")[0] in {"embedding", "encoder", "pooling", "head"} for n in names)


@pytest.mark.gpu
@pytest.mark.parametrize("encoder, pooling, bidirectional", VARIANTS)
def test_padding_never_changes_the_logits_on_cuda(encoder, pooling, bidirectional, monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # compare fp32 with fp32
    kw = dict(encoder=encoder, pooling=pooling, bidirectional=bidirectional, num_layers=2)
    cpu = _model(**kw).eval()
    with torch.no_grad():
        alone = torch.cat([cpu(*_batch([s])) for s in SEQS])
        for packing in ("padded", "paired", "packed"):
            gpu = _model(packing=packing, **kw).eval()
            gpu.load_state_dict(cpu.state_dict())
            gpu.cuda()
            ids, lengths = _batch(SEQS, extra=3)
            logits = gpu(ids.cuda(), lengths.cuda()).cpu()
            torch.testing.assert_close(logits, alone, atol=1e-4, rtol=0, msg=packing)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_keeps_each_unit_with_probability_one_minus_p_and_rescales_it(p):
    x = torch.ones(200, 50, requires_grad=True)
    out = dropout(x, p, training=True)
    kept = out != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.02  # 10,000 draws
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    out.sum().backward()
    assert torch.equal(x.grad != 0, kept)  # a dropped unit gets no gradient
    assert dropout(x, p, training=False) is x and dropout(x, 0.0, training=True) is x
