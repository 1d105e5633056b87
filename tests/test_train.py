"""The training generator and the training policy (`fit`) on tiny synthetic id sequences."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from helpers import toy_sequences, toy_vocab_size
from torch.optim.optimizer import register_optimizer_step_post_hook

from lstm_demo.batching import collate
from lstm_demo.config import ModelConfig, RunConfig, TrainConfig
from lstm_demo.model import TextClassifier
from lstm_demo.train import (
    Progress,
    Splits,
    TrainResult,
    WeightAverage,
    adversarial_shift,
    fit,
    predict_logits,
    train,
)

# ----------------------------------------------------------------------------------- training


def _config(**train_kw) -> RunConfig:
    model = ModelConfig(
        embedding_dim=16,
        hidden_size=16,
        embedding_dropout=0.0,
        dropout=0.0,
        recurrent_dropout=0.1,
        pooling="max",
        vocab_size=toy_vocab_size(),
        num_classes=2,
    )
    tc = dict(batch_size=16, epochs=3, learning_rate=1e-2, seed=1, device="cpu", log_every=5)
    return RunConfig(model=model, train=TrainConfig(**{**tc, **train_kw}), labels=("neg", "pos"))


TRAIN = toy_sequences(160, seed=0)
VAL = toy_sequences(60, seed=1)


def _run(cfg: RunConfig, data=TRAIN, should_stop=None) -> list[Progress]:
    return list(train(cfg, *data, *VAL, test=VAL, should_stop=should_stop))


def _result(reports: list[Progress]) -> TrainResult:
    assert reports[-1].kind == "done"
    assert reports[-1].result is not None
    return reports[-1].result


@pytest.fixture(scope="module")
def reports() -> list[Progress]:
    return _run(_config(log_every=2))


def test_training_learns_a_separable_task(reports):
    result = _result(reports)
    assert result.val["accuracy"] >= 0.95
    assert result.test is not None and result.test["accuracy"] == result.val["accuracy"]  # same texts
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.epochs_run == 3 and not result.stopped_early
    assert result.device == "cpu" and result.packing == "padded"
    assert result.train_seconds > 0 and result.tokens_per_second > 0
    assert not result.model.training


def test_progress_reports_carry_the_documented_fields(reports):
    kinds = [r.kind for r in reports]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("epoch") == 3 and "step" in kinds
    steps_per_epoch = 10  # 160 texts / 16
    for r in reports:
        assert (r.epochs, r.steps_per_epoch) == (3, steps_per_epoch)
        if r.kind in ("step", "epoch"):
            assert 1 <= r.epoch <= 3 and 1 <= r.step <= steps_per_epoch
            assert r.train_loss > 0 and r.tokens_per_second > 0 and r.eta_seconds >= 0
        if r.kind == "epoch":
            assert r.step == steps_per_epoch
            assert 0 <= r.val_accuracy <= 1 and 0 <= r.val_macro_f1 <= 1 and r.val_loss > 0
            assert 1 <= r.best_epoch <= r.epoch
    fractions = [r.fraction for r in reports if r.kind in ("step", "epoch")]
    assert fractions == sorted(fractions) and len(set(fractions)) == len(fractions)  # strictly rising
    assert reports[0].fraction == 0.0 and reports[-1].fraction == 1.0
    assert reports[-1].eta_seconds == 0.0
    elapsed = [r.elapsed for r in reports]
    assert elapsed == sorted(elapsed)


def _weights(result: TrainResult) -> dict[str, torch.Tensor]:
    return result.model.state_dict()


def _figures(result: TrainResult) -> list[tuple]:
    return [(h["train_loss"], h["val_loss"], h["val_accuracy"]) for h in result.history]


def test_training_is_repeatable_on_the_cpu_with_a_seed(reports):
    first, again, other = (
        _result(reports),
        _result(_run(_config(log_every=2))),
        _result(_run(_config(seed=2))),
    )
    assert _figures(again) == _figures(first)
    for name, tensor in _weights(first).items():
        assert torch.equal(tensor, _weights(again)[name]), name
    assert _figures(other) != _figures(first)
    assert not torch.equal(_weights(other)["head.weight"], _weights(first)["head.weight"])


def test_early_stopping_restores_the_best_epoch():
    result = _result(_run(_config(epochs=30, patience=2)))
    assert result.stopped_early
    assert result.epochs_run == result.best_epoch + 2 < 30
    best = result.history[result.best_epoch - 1]
    assert best["val_accuracy"] == max(h["val_accuracy"] for h in result.history)
    assert result.val["accuracy"] == best["val_accuracy"]
    # the loss pins the weights down more tightly than accuracy: it moves every epoch
    assert result.val["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert result.history[-1]["val_loss"] != pytest.approx(best["val_loss"], rel=1e-5)


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_without_validation_rows_the_last_epoch_is_kept(ema_decay):
    """The refit pass: exactly `epochs` epochs, no validation figures, the final (averaged) weights."""
    cfg = _config(epochs=2, patience=1, ema_decay=ema_decay)
    reports = list(train(cfg, *TRAIN, [], [], test=VAL, phase="refit"))
    result = _result(reports)
    assert {r.phase for r in reports} == {"refit"} and "refitting on all 160" in reports[0].message
    assert result.val is None and result.best_epoch == result.epochs_run == 2
    assert all(r.val_accuracy is None for r in reports if r.kind == "epoch")
    assert result.test["accuracy"] >= 0.95
    assert result.history[-1]["val_accuracy"] is None
    validated = _result(list(train(cfg, *TRAIN, *VAL, test=VAL)))  # same seed and data, same steps
    assert [h["train_loss"] for h in validated.history] == [h["train_loss"] for h in result.history]


def test_the_weight_average_matches_torchs_ema_exactly():
    torch.manual_seed(0)
    model = TextClassifier(_config().model)
    reference = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9)
    )
    ours = WeightAverage(model, 0.9)
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        reference.update_parameters(model)
        ours.update(model)
    for (name, a), b in zip(
        ours.module.state_dict().items(), reference.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not torch.equal(ours.module.head.weight, model.head.weight)


def test_monitoring_the_loss_keeps_the_epoch_with_the_lowest_validation_loss():
    result = _result(_run(_config(epochs=6, monitor="loss")))
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == losses.index(min(losses)) + 1
    assert result.val["loss"] == pytest.approx(min(losses), rel=1e-5)


def test_theadversarial_shift_follows_the_gradient_at_the_asked_size():
    emb = torch.randn(3, 5, 4, requires_grad=True)
    (emb * torch.arange(60.0).view(3, 5, 4)).sum().backward()
    r = adversarial_shift(emb, 0.5)
    norms = emb.detach().flatten(1).norm(dim=1)
    torch.testing.assert_close(r.flatten(1).norm(dim=1), 0.5 * norms)
    cosine = torch.nn.functional.cosine_similarity(r.flatten(1), emb.grad.flatten(1))
    torch.testing.assert_close(cosine, torch.ones(3))


def test_adversarial_training_still_learns_and_changes_the_steps():
    plain = _result(_run(_config(epochs=2)))
    adversarial = _result(_run(_config(epochs=2, adversarial=0.3)))
    assert adversarial.val["accuracy"] >= 0.95
    assert adversarial.history[0]["train_loss"] != plain.history[0]["train_loss"]


def test_should_stop_cancels_between_steps():
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) == 3

    reports = _run(_config(), should_stop=stop)
    assert reports[-1].kind == "cancelled"
    assert (reports[-1].epoch, reports[-1].step) == (1, 3)
    assert reports[-1].result is None and all(r.kind != "epoch" for r in reports)
    assert len(calls) == 3  # nothing ran after the cancel


def test_class_weights_change_the_loss_and_still_learn():
    data = toy_sequences(160, seed=4, weights=(0.85, 0.15))
    plain = _run(_config(log_every=1, epochs=2), data=data)
    weighted = _run(_config(log_every=1, epochs=2, class_weights=True), data=data)
    first_loss = [next(r.train_loss for r in rs if r.kind == "step") for rs in (plain, weighted)]
    assert first_loss[0] != pytest.approx(first_loss[1])
    assert _result(weighted).val["per_class"]["pos"]["recall"] > 0.5


def test_train_refuses_labels_that_do_not_match_the_model():
    cfg = _config()
    bad = RunConfig(model=cfg.model, train=cfg.train, labels=("a", "b", "c"))
    with pytest.raises(ValueError, match="num_classes"):
        next(train(bad, *TRAIN, *VAL))


def test_predict_logits_keeps_the_input_order(reports):
    model = _result(reports).model
    seqs = VAL[0][:20]
    logits = predict_logits(model, seqs, batch_size=7)  # (N, C), batches sorted by length inside
    with torch.no_grad():
        one_by_one = torch.cat([model(*collate([s], torch.device("cpu"))) for s in seqs])
    torch.testing.assert_close(logits, one_by_one, atol=1e-5, rtol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("bidirectional, adversarial", [(False, 0.0), (True, 0.0), (True, 0.2)])
def test_mixed_precision_training_on_cuda_learns(bidirectional, adversarial):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    cfg = _config(device="cuda", mixed_precision=True, adversarial=adversarial)
    cfg = RunConfig(model=replace(cfg.model, bidirectional=bidirectional), train=cfg.train, labels=cfg.labels)
    result = _result(_run(cfg))
    assert result.device.startswith("cuda") and result.packing == "paired"  # `auto` on CUDA
    assert result.val["accuracy"] >= 0.95


def test_warm_up_pays_the_first_optimizers_imports_in_advance():
    """The app calls it once its page answers, so a person's first training does not wait for those imports."""
    code = (
        "import sys; from lstm_demo.train import warm_up; "
        "before = 'torch._dynamo' in sys.modules; warm_up(); print(before, 'torch._dynamo' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "True"]


# ----------------------------------------------------------------------------------- divergence


@pytest.fixture
def after_step():
    """Run `poison(model_params)` after the n-th optimizer step of any training: a blown-up update."""
    handles = []

    def install(n: int, poison) -> None:
        count = [0]

        def hook(optimizer, args, kwargs) -> None:
            count[0] += 1
            if count[0] == n:
                with torch.no_grad():
                    poison([p for group in optimizer.param_groups for p in group["params"]])

        handles.append(register_optimizer_step_post_hook(hook))

    yield install
    for handle in handles:
        handle.remove()


def _head_bias(params) -> torch.Tensor:
    return params[-1]  # the head's bias is the model's last parameter


@pytest.mark.parametrize(
    "step, poison, message",
    [
        # 10 steps per epoch: after step 13 the weights are NaN, so epoch 2's 4th loss is NaN
        (
            13,
            lambda ps: ps[0].fill_(float("nan")),
            "the loss became NaN at epoch 2, step 4: lower the learning rate",
        ),
        # class 0 can no longer be predicted: its texts' loss is infinite
        (3, lambda ps: _head_bias(ps)[0].fill_(float("-inf")), "the loss became infinite at epoch 1, step 4"),
        # the very last step: no loss sees it, the weights do
        (30, lambda ps: ps[0].fill_(float("nan")), "the weights became NaN or infinite in epoch 3"),
    ],
)
def test_a_training_whose_loss_stops_being_finite_fails_and_says_where(after_step, step, poison, message):
    after_step(step, poison)
    reports = _run(_config(log_every=5))
    end = reports[-1]
    assert end.kind == "failed" and end.result is None
    assert message in end.message
    assert end.epochs_run == end.epoch - 1
    assert all(r.train_loss is None or r.train_loss == r.train_loss for r in reports)  # no NaN was reported


def test_a_diverged_loss_is_caught_at_the_next_report_without_running_the_epoch_out(after_step):
    after_step(1, lambda ps: ps[0].fill_(float("nan")))
    calls = []
    reports = _run(_config(log_every=3), should_stop=lambda: calls.append(1) and False)
    assert (reports[-1].kind, reports[-1].epoch, reports[-1].step) == ("failed", 1, 2)
    assert len(calls) == 3  # stopped at the first report after the bad step, not at the epoch's end


# ----------------------------------------------------------------------------------- fit


def _splits(cfg: RunConfig, everything: bool) -> Splits:
    data = (TRAIN[0] + VAL[0], TRAIN[1] + VAL[1]) if everything else TRAIN
    return Splits(cfg, data, VAL, VAL, encoder=f"encoder of {'all' if everything else 'train'}")


def _fit(cfg: RunConfig, refit: bool, should_stop=None) -> tuple[list[Progress], list[bool]]:
    asked: list[bool] = []

    def encode(everything: bool) -> Splits:
        asked.append(everything)
        return _splits(cfg, everything)

    return list(fit(encode, refit=refit, should_stop=should_stop)), asked


def test_fit_without_refit_is_one_pass_and_keeps_its_encoder():
    reports, asked = _fit(_config(), refit=False)
    result = _result(reports)
    assert asked == [False] and {r.phase for r in reports} == {"train"}
    assert result.encoder == "encoder of train" and result.config == _config()
    assert result.refit is None and result.test is not None


def test_fit_with_refit_trains_again_on_every_row_for_the_chosen_epochs():
    cfg = _config(epochs=6, patience=2)
    reports, asked = _fit(cfg, refit=True)
    result = _result(reports)
    assert asked == [False, True]
    epochs = [r for r in reports if r.kind == "epoch"]
    assert [r.phase for r in epochs] == ["train"] * result.epochs_run + ["refit"] * result.best_epoch
    assert result.refit == {**result.refit, "rows": len(TRAIN[0]) + len(VAL[0]), "epochs": result.best_epoch}
    assert result.encoder == "encoder of all"
    validated = _result(_fit(cfg, refit=False)[0])
    assert result.val == validated.val  # the first pass's figures, the only honest ones
    assert reports[-1].val_accuracy == validated.val["accuracy"]  # the done report speaks for the run
    assert not torch.equal(result.model.head.weight, validated.model.head.weight)  # another model


def test_cancelling_a_refit_reports_the_validated_passes_epochs():
    seen = []

    def stop() -> bool:
        seen.append(1)
        return len(seen) > 35  # 30 steps of the first pass, then a few of the refit

    reports, _ = _fit(_config(epochs=3), refit=True, should_stop=stop)
    assert (reports[-1].kind, reports[-1].phase, reports[-1].epochs_run) == ("cancelled", "refit", 3)


def test_fit_resolves_the_device_once_for_both_passes(monkeypatch):
    import lstm_demo.train as train_module

    calls = []
    real = train_module.resolve_device
    monkeypatch.setattr(train_module, "resolve_device", lambda name="auto": calls.append(name) or real(name))
    _result(_fit(_config(epochs=2), refit=True)[0])
    assert calls == ["cpu"]
