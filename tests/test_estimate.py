"""The time-per-epoch estimate: the model a run would build, a few timed steps, bounded by steps, time and limits."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from helpers import THREAD, write_toy_csv

from lstm_demo import data, estimate
from lstm_demo.config import AppSettings, LimitError, Limits
from lstm_demo.service import Service

SMALL = {"model__hidden_size": 8, "model__embedding_dim": 8}


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    return data.parse(write_toy_csv(tmp_path_factory.mktemp("data") / "toy.csv", n=120))


def test_an_epoch_is_the_median_step_times_the_steps_of_the_training_rows(parsed):
    e = estimate.epoch_time(parsed, preset_name="fast", overrides={**SMALL, "train__epochs": 3}, device="cpu")
    assert e.train_rows == 108  # the validation share (10%) is not trained on
    assert e.steps_per_epoch == math.ceil(108 / 16)  # the fast preset's batch
    assert 1 <= e.steps_timed <= estimate.STEPS
    assert e.seconds_per_step > 0 and e.seconds_per_epoch == pytest.approx(
        e.seconds_per_step * e.steps_per_epoch
    )
    assert e.epochs == 3 and e.seconds_total == pytest.approx(3 * e.seconds_per_epoch)
    assert e.device == "cpu" and e.to_dict()["seconds_total"] == e.seconds_total


def test_a_table_of_fewer_batches_than_steps_is_timed_for_every_step(parsed):
    """Seven batches an epoch, ten steps wanted: the measuring goes on into the next epoch."""
    e = estimate.epoch_time(parsed, preset_name="fast", overrides=SMALL, device="cpu",
                            limits=Limits(estimate_seconds=60))  # fmt: skip
    assert e.steps_per_epoch == 7 and e.steps_timed == estimate.STEPS


def test_the_time_cap_ends_the_measuring_after_one_step(parsed):
    tiny = Limits(estimate_seconds=1e-9)  # any step takes longer
    e = estimate.epoch_time(parsed, preset_name="fast", overrides=SMALL, device="cpu", limits=tiny)
    assert e.steps_timed == 1  # no warm-up could be left out in time: the first step, pessimistic


def test_the_service_measures_within_the_operators_time_limit(tmp_path):
    """LSTM_DEMO_MAX_ESTIMATE_SECONDS reaches the measuring through Service.estimate."""
    path = write_toy_csv(tmp_path / "toy.csv", n=120)
    env = {"LSTM_DEMO_HOME": str(tmp_path / "home"), "LSTM_DEMO_DEVICE": "cpu", **THREAD}
    svc = Service(AppSettings.from_env({**env, "LSTM_DEMO_MAX_ESTIMATE_SECONDS": "1e-9"}))
    try:
        e = svc.estimate(path, preset_name="fast", overrides=SMALL)
    finally:
        svc.shutdown()
    assert e.steps_timed == 1


def test_the_settings_measured_are_the_ones_a_run_would_train_with(tmp_path, parsed):
    """The adapted preset (small data changes the default's sizes), the labels and the vocabulary."""
    path = write_toy_csv(tmp_path / "toy.csv", n=120)
    env = {"LSTM_DEMO_HOME": str(tmp_path / "home"), "LSTM_DEMO_DEVICE": "cpu", **THREAD}
    svc = Service(AppSettings.from_env(env))
    try:
        e = svc.estimate(path, preset_name="default", overrides={"train__adversarial": 0.0})
        prepared = svc.prepare(path, preset_name="default", overrides={"train__adversarial": 0.0})
    finally:
        svc.shutdown()
    run = prepared.config
    assert replace(e.config.model, vocab_size=0) == run.model and e.config.preprocess == run.preprocess
    assert e.config.model.vocab_size == 2 + 24  # [PAD], [UNK] and the toy data's 24 words: every row read
    assert e.config.train.batch_size == run.train.batch_size and e.epochs == run.train.epochs
    assert e.config.labels == run.labels == ("neg", "pos")


@pytest.mark.parametrize(
    ("limits", "overrides", "says"),
    [
        (Limits(hidden_size=64), {"model__hidden_size": 65}, "model.hidden_size is 65"),
        (Limits(classes=1), {}, "the number of classes"),
    ],
)
def test_a_request_over_a_limit_is_refused_before_anything_is_built(parsed, limits, overrides, says):
    with pytest.raises(LimitError, match=says):
        estimate.epoch_time(parsed, preset_name="fast", overrides=overrides, limits=limits, device="cpu")


def test_an_unknown_option_is_refused_in_words(parsed):
    with pytest.raises(ValueError, match="unknown option model.hiden_size"):
        estimate.epoch_time(parsed, preset_name="fast", overrides={"model__hiden_size": 8}, device="cpu")
