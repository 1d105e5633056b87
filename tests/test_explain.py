"""Attributions on a tiny model trained here on a task where one word decides the label."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_demo import explain as ex
from lstm_demo.config import ModelConfig, PreprocessConfig, TokenizerConfig
from lstm_demo.explain import METHODS, attribute, explain, faithfulness
from lstm_demo.model import TextClassifier
from lstm_demo.tokenization import PAD_ID, TextEncoder

LABELS = ("negative", "positive")
FILLER = [f"w{i}" for i in range(12)]


def _sentence(rng: random.Random, label: int) -> str:
    """Filler words with one cue word ("good" or "bad") somewhere: the cue alone decides the label."""
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
    words.insert(rng.randint(0, len(words)), "good" if label else "bad")
    return " ".join(words)


@pytest.fixture(scope="module")
def trained():
    """(model, encoder): a unidirectional LSTM with max pooling, trained to ~100% in ~2 s on the CPU."""
    rng = random.Random(0)
    labels = [rng.randint(0, 1) for _ in range(400)]
    texts = [_sentence(rng, y) for y in labels]
    encoder = TextEncoder.train(texts, PreprocessConfig(), TokenizerConfig(kind="word"))
    torch.manual_seed(0)
    cfg = ModelConfig(
        embedding_dim=16, hidden_size=16, pooling="max", embedding_dropout=0.0, recurrent_dropout=0.0,
        vocab_size=encoder.vocab_size, num_classes=2,
    )  # fmt: skip
    model = TextClassifier(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    seqs = [encoder.encode(t).ids for t in texts]
    for step in range(150):
        batch = [(step * 32 + j) % len(seqs) for j in range(32)]
        T = max(len(seqs[i]) for i in batch)
        ids = torch.tensor([seqs[i] + [PAD_ID] * (T - len(seqs[i])) for i in batch])  # (B, T)
        lengths = torch.tensor([len(seqs[i]) for i in batch])
        loss = torch.nn.functional.cross_entropy(
            model(ids, lengths), torch.tensor([labels[i] for i in batch])
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test = [_sentence(rng, y) for y in (0, 1) * 20]
    accuracy = np.mean([explain(model, encoder, LABELS, t, methods=("occlusion",)).predicted == LABELS[i % 2]
                        for i, t in enumerate(test)])  # fmt: skip
    assert accuracy == 1.0, "the tiny model did not learn its task; the tests below would mean nothing"
    return model, encoder


def _logit(model, ids, target, pad=False):
    ids_t = torch.tensor([[PAD_ID] * len(ids) if pad else ids])
    with torch.no_grad():
        return float(model(ids_t, torch.tensor([len(ids)]))[0, target])


@pytest.mark.parametrize("method", ["ig", "ig_uniform"])
@pytest.mark.parametrize("text", ["w1 w2 good w3", "bad w4 w4 w9 w0 w11 w2", "w5 w6 w7 w8 w9 w10 w11 bad"])
def test_ig_scores_add_up_to_the_logit_change_from_the_baseline(trained, method, text):
    model, encoder = trained
    ids = encoder.encode(text).ids
    for steps in (4, 300):  # too coarse to converge on this sharp model, then plenty
        e = explain(model, encoder, LABELS, text, methods=(method,), steps=steps)
        ig = e.attributions[method]
        c = LABELS.index(e.target)
        gap = _logit(model, ids, c) - _logit(model, ids, c, pad=True)
        assert ig.delta == pytest.approx(sum(ig.token_scores) - gap, abs=1e-4)
        assert ig.delta_ratio == pytest.approx(abs(ig.delta) / abs(gap))
        assert ig.delta_ok == (ig.delta_ratio <= ex.DELTA_TOLERANCE)
        assert f"{steps} " in ig.baseline and "[PAD]" in ig.baseline
    assert ig.delta_ok and sum(ig.token_scores) == pytest.approx(gap, rel=0.01)  # completeness


# Saliency and input x gradient are left out on purpose: both read the gradient at the text itself,
# and a saturated cue word can have a smaller gradient than an idle filler word. The methods kept
# compare the text with a baseline, so they must find the one word that moves the logit.
@pytest.mark.parametrize("method", ["ig", "ig_uniform", "gradient_shap", "occlusion"])
@pytest.mark.parametrize(
    "text,cue", [("w1 w2 good w3 w4", 2), ("bad w4 w9 w0", 0), ("w5 w6 w7 w8 w9 w10 bad", 6)]
)
def test_the_word_that_decides_the_label_gets_the_largest_score(trained, method, text, cue):
    model, encoder = trained
    e = explain(model, encoder, LABELS, text, methods=(method,))
    scores = e.attributions[method].token_scores
    assert e.predicted == ("positive" if "good" in text else "negative")
    assert max(range(len(scores)), key=scores.__getitem__) == cue, scores
    assert e.attributions[method].seconds >= 0 and e.attributions[method].title == METHODS[method]


def test_occlusion_is_the_logit_drop_when_one_token_becomes_pad(trained):
    model, encoder = trained
    ids = encoder.encode("w3 good w7 w7").ids
    scores = attribute(model, ids, 1, "occlusion").token_scores
    for t in range(len(ids)):
        occluded = ids[:t] + [PAD_ID] + ids[t + 1 :]
        assert scores[t] == pytest.approx(_logit(model, ids, 1) - _logit(model, occluded, 1), abs=1e-5)


def test_occlusion_of_an_all_pad_sentence_is_zero(trained):
    model, _ = trained
    assert attribute(model, [PAD_ID] * 5, 0, "occlusion").token_scores == [0.0] * 5


def test_every_method_runs_with_cudnn_switched_off(trained, monkeypatch):
    """cuDNN's RNN has no eval-mode backward; the switch must be off on every path, not just some."""
    model, encoder = trained
    seen = {}
    for name, fn in ex._METHOD_FNS.items():

        def spy(x, steps, seed, fn=fn, name=name):
            seen[name] = torch.backends.cudnn.enabled
            return fn(x, steps, seed)

        monkeypatch.setitem(ex._METHOD_FNS, name, spy)
    explain(model, encoder, LABELS, "good w1", methods=tuple(METHODS))
    assert seen == dict.fromkeys(METHODS, False)
    assert torch.backends.cudnn.enabled  # and back on afterwards
    assert not model.training


def test_overlapping_explanations_keep_cudnn_off_until_the_last_one_ends():
    """Two users explaining at once: the first to finish must not switch cuDNN back on under the other."""
    first, second = ex._gradients_allowed(), ex._gradients_allowed()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not torch.backends.cudnn.enabled
    second.__exit__(None, None, None)
    assert torch.backends.cudnn.enabled


def test_target_by_label_name_and_unknown_labels(trained):
    model, encoder = trained
    e = explain(model, encoder, LABELS, "w1 good w2", methods=("ig", "saliency"), target="negative")
    assert (e.predicted, e.target) == ("positive", "negative")
    assert list(e.attributions) == ["ig", "saliency"]
    assert e.probabilities["positive"] > 0.9 and sum(e.probabilities.values()) == pytest.approx(1.0)
    assert e.attributions["ig"].delta_ok  # completeness holds for any class, not just the predicted one
    with pytest.raises(ValueError, match="unknown label 'neutral'.*negative, positive"):
        explain(model, encoder, LABELS, "w1 good", target="neutral")


def test_gradient_shap_is_seeded_and_leaves_global_generators_alone(trained):
    model, encoder = trained
    np.random.seed(123)
    torch.manual_seed(123)
    before = (np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    first = explain(model, encoder, LABELS, "w1 w2 bad w3", methods=("gradient_shap",))
    second = explain(model, encoder, LABELS, "w1 w2 bad w3", methods=("gradient_shap",))
    assert (
        first.attributions["gradient_shap"].token_scores == second.attributions["gradient_shap"].token_scores
    )
    assert (np.random.get_state()[1] == before[0]).all() and torch.equal(torch.get_rng_state(), before[1])
    assert "random-token" in first.attributions["gradient_shap"].baseline


def test_subword_scores_are_summed_per_word_and_dropped_words_are_none():
    texts = ["unbelievably wonderful films", "the unbearable boredom", "wonderful and believable"] * 5
    encoder = TextEncoder.train(
        texts, PreprocessConfig(remove_stopwords=True), TokenizerConfig(kind="wordpiece", vocab_size=60)
    )
    torch.manual_seed(0)
    model = TextClassifier(
        ModelConfig(embedding_dim=8, hidden_size=8, vocab_size=encoder.vocab_size, num_classes=2)
    )
    e = explain(
        model.eval(), encoder, LABELS, "The unbelievably wonderful <b>films</b>!", methods=("ig", "occlusion")
    )
    assert len(e.tokens) > len(e.words) - 1  # words were split into pieces
    assert e.words[0] == "The"
    for a in e.attributions.values():
        assert a.word_scores[0] is None  # "the" is a stop word: the model never saw it
        for w in range(1, len(e.words)):
            pieces = [s for s, i in zip(a.token_scores, e.word_index, strict=True) if i == w]
            assert a.word_scores[w] == pytest.approx(sum(pieces))
    d = e.to_dict()
    assert d["attributions"]["ig"]["word_scores"][0] is None and isinstance(d["tokens"][0], str)


@pytest.mark.parametrize("text", ["", "   ", "the a of"])
def test_texts_without_tokens_are_refused_with_a_clear_message(text):
    encoder = TextEncoder.train(
        ["good film", "the bad film"], PreprocessConfig(remove_stopwords=True), TokenizerConfig()
    )
    model = TextClassifier(
        ModelConfig(embedding_dim=4, hidden_size=4, vocab_size=encoder.vocab_size, num_classes=2)
    )
    with pytest.raises(ValueError, match="no tokens the model knows"):
        explain(model.eval(), encoder, LABELS, text)


def test_refuses_unknown_methods_and_training_mode(trained):
    model, encoder = trained
    with pytest.raises(ValueError, match="methods must be chosen from ig, ig_uniform, gradient_shap"):
        explain(model, encoder, LABELS, "good", methods=("lime",))
    try:
        with pytest.raises(ValueError, match="training mode"):
            explain(model.train(), encoder, LABELS, "good")
    finally:
        model.eval()


def test_erasure_deletes_tokens_rather_than_masking_them():
    ids = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    ranking = [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]  # token 1 first, then 3, 5, 7, 9, ...
    without_10, only_10, without_20, only_20, without_50, only_50 = ex._erasures(ids, ranking)
    assert (without_10, only_10) == ([10, 12, 13, 14, 15, 16, 17, 18, 19], [11])
    assert (without_20, only_20) == ([10, 12, 14, 15, 16, 17, 18, 19], [11, 13])
    assert (without_50, only_50) == ([10, 12, 14, 16, 18], [11, 13, 15, 17, 19])
    assert ex._erasures([7], [1.0])[::2] == [[PAD_ID]] * 3  # nothing left: a lone [PAD], at least one token


def test_faithfulness_ranks_the_cue_word_above_chance(trained):
    model, encoder = trained
    rng = random.Random(5)
    texts = [_sentence(rng, i % 2) for i in range(30)] + [""]
    result = faithfulness(model, encoder, LABELS, texts, methods=("ig", "occlusion"), n=40, steps=20)
    assert set(result) == {"ig", "occlusion", "random"}
    assert result["ig"]["n"] == result["random"]["n"] == 30  # the empty text is skipped
    for m in ("ig", "occlusion"):
        assert result[m]["comprehensiveness"] > 2 * result["random"]["comprehensiveness"]
        assert result[m]["sufficiency"] < result["random"]["sufficiency"]
    ig_ok = []
    for text in texts[:-1]:
        ids = encoder.encode(text).ids
        target = int(explain(model, encoder, LABELS, text, methods=("occlusion",)).predicted == "positive")
        ig_ok.append(attribute(model, ids, target, "ig", steps=20).delta_ok)
    assert result["ig"]["delta_ok_share"] == pytest.approx(np.mean(ig_ok))
    assert faithfulness(model, encoder, LABELS, texts, methods=("ig",), n=10, steps=20)["ig"]["n"] <= 10


SST2 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"


@pytest.mark.slow
@pytest.mark.skipif(not SST2.is_dir(), reason="needs ../shared/datasets/sst2")
def test_ig_finds_what_the_default_model_uses_on_sst2(tmp_path):
    """The `default` preset trained through the service (40 s to 3 min on 2 CPU cores), 200 test sentences.

    Measured there: IG comprehensiveness 0.54 against random 0.10; IG's delta within 5% for 98.5% of
    the texts with 50 adaptive gradient evaluations, against ~45% for 50 evenly spaced ones.
    """
    from lstm_demo.config import AppSettings
    from lstm_demo.service import Service

    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path), "LSTM_DEMO_DEVICE": "cpu"}))
    events = list(svc.train(SST2 / "train.csv", val_path=SST2 / "dev.csv", preset_name="default"))
    loaded = svc.load(events[-1].run.id)
    with open(SST2 / "test.csv", newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    result = faithfulness(
        loaded.model, loaded.encoder, loaded.labels, texts, methods=("ig", "occlusion"), n=200
    )
    assert result["ig"]["n"] == 200
    assert result["ig"]["comprehensiveness"] >= 2 * result["random"]["comprehensiveness"]
    assert result["occlusion"]["comprehensiveness"] >= 2 * result["random"]["comprehensiveness"]
    assert result["ig"]["sufficiency"] < result["random"]["sufficiency"]
    assert result["ig"]["delta_ok_share"] >= 0.95


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("bidirectional,packing", [(False, "padded"), (True, "padded"), (True, "packed")])
def test_every_method_runs_on_cuda_in_eval_mode_and_agrees_with_the_cpu(trained, bidirectional, packing):
    from captum.attr import LayerIntegratedGradients

    _, encoder = trained
    torch.manual_seed(3)
    cfg = ModelConfig(
        embedding_dim=16, hidden_size=16, bidirectional=bidirectional, pooling="max",
        vocab_size=encoder.vocab_size, num_classes=2,
    )  # fmt: skip
    cpu = TextClassifier(cfg, packing=packing).eval()
    gpu = TextClassifier(cfg, packing=packing)
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda().eval()
    ids = torch.tensor([encoder.encode("w1 w2 good w3").ids], device="cuda")
    lengths = torch.tensor([ids.shape[1]], device="cuda")
    # the reason for the cuDNN switch: without it the backward pass refuses to run in eval mode
    with pytest.raises(RuntimeError, match="cudnn RNN backward can only be called in training mode"):
        LayerIntegratedGradients(gpu, gpu.embedding).attribute(
            ids, torch.zeros_like(ids), target=0, additional_forward_args=(lengths,)
        )
    on_cpu = explain(cpu, encoder, LABELS, "w1 w2 good w3", methods=tuple(METHODS))
    on_gpu = explain(gpu, encoder, LABELS, "w1 w2 good w3", methods=tuple(METHODS))
    assert not gpu.training and torch.backends.cudnn.enabled
    for m in METHODS:
        assert on_gpu.attributions[m].token_scores == pytest.approx(
            on_cpu.attributions[m].token_scores, abs=1e-3
        )
    assert on_gpu.attributions["ig"].delta_ok == on_cpu.attributions["ig"].delta_ok
