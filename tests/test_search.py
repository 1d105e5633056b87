"""`auto`: a seeded search that repeats itself, stays within the limits and the budget, and returns
an ordinary configuration."""

from __future__ import annotations

import itertools

import pytest

from lstm_demo.adapt import adapt
from lstm_demo.config import Limits, RunConfig, override, preset
from lstm_demo.search import PRESET, STATES, _over_the_noise, parse_budget, run_search, search
from lstm_demo.trials import TrialReport
from tests.helpers import toy_rows

ROWS = toy_rows(48, seed=3)
TEXTS, LABELS = [t for t, _ in ROWS], [label for _, label in ROWS]
# sizes pinned by the limits, two epochs a trial: the search's logic, not a model, is under test
LIMITS = Limits(embedding_dim=16, hidden_size=16)
BASE = preset("fast", model__embedding_dim=16, model__hidden_size=16, train__epochs=2)
FIXED = {"train__epochs", "train__patience", "model__bidirectional"}


def trials(seed: int = 13, n: int = 3) -> list:
    cfg = preset("fast", model__embedding_dim=16, model__hidden_size=16, train__epochs=2, train__seed=seed)
    reports = list(search(cfg, TEXTS, LABELS, 3600, max_trials=n, fixed=FIXED, limits=LIMITS))
    return [r for r in reports if r.state != "running"]


def test_same_seed_gives_the_same_trials_and_another_seed_other_ones() -> None:
    first, again, other = trials(), trials(), trials(seed=7, n=2)

    assert len(first) == 3
    assert [(r.params, r.state, r.value) for r in first] == [(r.params, r.state, r.value) for r in again]
    assert first[1].params != other[1].params  # the sampler, not only the model, follows the seed
    assert all(r.state in STATES for r in first)
    assert all(r.params["model__hidden_size"] <= LIMITS.hidden_size for r in first)


def test_trial_zero_is_the_adapted_defaults_and_the_result_an_ordinary_config() -> None:
    result = run_search(BASE, TEXTS, LABELS, 3600, max_trials=2, fixed=FIXED, limits=LIMITS)
    adapted, _ = adapt(BASE, TEXTS, LABELS, fixed=FIXED, limits=LIMITS)

    zero = result.trials[0]
    for key, value in zero.params.items():
        section, name = key.split("__", 1)
        assert getattr(getattr(adapted, section), name) == value, key
    best = max(r.value for r in result.trials if r.state == "complete")
    kept = any("keeping the defaults" in n for n in result.notes)
    assert result.best is not None and result.best.value == (zero.value if kept else best)
    cfg = result.config
    assert cfg.preset == PRESET and cfg.labels == ("neg", "pos") and cfg.model.num_classes == 2
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.train.epochs == 2 and not cfg.model.bidirectional  # fixed options stay as set
    LIMITS.check_config(cfg)
    assert any(n.startswith("auto: 2 trials") for n in result.notes)


def _report(number: int, value: float | None, state: str = "complete") -> TrialReport:
    return TrialReport(number, {"model__hidden_size": 64 + number}, state, value, 3, 1.0, 1.0, None, None)


@pytest.mark.parametrize(
    ("defaults", "leader", "monitor", "counts", "chosen"),
    [
        (0.970, 0.975, "accuracy", [207, 207], 0),  # 0.005 ahead, one standard error is 0.0084: noise
        (0.970, 0.985, "accuracy", [207, 207], 1),  # 0.015 ahead: more than the noise
        (0.970, 0.975, "accuracy", [20_000, 20_000], 1),  # the same lead on 40,000 rows is over the noise
        (0.880, 0.890, "macro_f1", [250, 250], 0),  # 0.0145 on 500 balanced rows
        (0.975, 0.985, "macro_f1", [364, 50], 0),  # 50 rows of the rare class: 0.0118 of noise
        (0.975, 0.985, "macro_f1", [3640, 500], 1),  # ten times the rows: 0.0037
        (-0.300, -0.290, "loss", [207, 207], 1),  # a loss has no such noise figure: the plain best
    ],
)
def test_a_trial_replaces_the_defaults_only_when_it_leads_them_by_more_than_the_noise(
    defaults, leader, monitor, counts, chosen
) -> None:
    zero, other = _report(0, defaults), _report(1, leader)
    best, note = _over_the_noise(other, [zero, other], monitor, counts)
    assert best is (zero, other)[chosen]
    assert ("keeping the defaults" in note) == (chosen == 0)


def test_defaults_that_did_not_finish_are_not_kept_over_a_finished_trial() -> None:
    zero, other = _report(0, None, state="stopped"), _report(1, 0.9)
    assert _over_the_noise(other, [zero, other], "accuracy", [50, 50]) == (other, "")
    assert _over_the_noise(None, [zero], "accuracy", [50, 50]) == (None, "")


def ticking(step: float):
    """A clock that moves `step` seconds each time it is read."""
    counter = itertools.count()
    return lambda: next(counter) * step


def test_a_trial_cut_by_the_budget_is_not_chosen_and_the_defaults_are_kept() -> None:
    # every read of the clock is a minute: the first trial is stopped at its first step
    reports = []
    gen = search(BASE, TEXTS, LABELS, 150, fixed=FIXED, limits=LIMITS, clock=ticking(60))
    try:
        while True:
            reports.append(next(gen))
    except StopIteration as stop:
        result = stop.value

    assert [r.state for r in reports] == ["running", "stopped"]
    assert result.best is None
    adapted, _ = adapt(BASE, TEXTS, LABELS, fixed=FIXED, limits=LIMITS)
    assert result.config.model == override(adapted, model__num_classes=2).model
    assert "the budget ended before any trial finished" in result.notes[-1]


def test_should_stop_ends_the_search_between_trials() -> None:
    result = run_search(BASE, TEXTS, LABELS, "1h", fixed=FIXED, limits=LIMITS, should_stop=lambda: True)
    assert result.trials == () and result.best is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0), (45, 45.0)]
)
def test_parse_budget(text: str | int, seconds: float) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10d", "-5m", "0", float("nan"), float("inf"), True])
def test_parse_budget_refuses(text) -> None:
    with pytest.raises(ValueError):
        parse_budget(text)


def test_budget_over_the_limit_names_its_variable() -> None:
    with pytest.raises(ValueError, match="LSTM_DEMO_MAX_SEARCH_SECONDS"):
        parse_budget("2h", Limits(search_seconds=3600))


def test_an_auto_run_searches_in_its_job_streams_its_trials_and_trains_the_choice(tmp_path) -> None:
    from lstm_demo.config import AppSettings
    from lstm_demo.service import Service
    from lstm_demo.trials import trial_of
    from tests.helpers import write_toy_csv

    csv = write_toy_csv(tmp_path / "train.csv", n=60, seed=0)
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home")}))
    fixed = {"train__budget": 3, "train__epochs": 2, "model__hidden_size": 16, "model__embedding_dim": 16}
    try:
        events = list(svc.train(csv, preset_name="auto", overrides=fixed))
        detail = svc.run(events[-1].run_id)
    finally:
        svc.shutdown()
    streamed = [t for e in events if (t := trial_of(e.progress)) is not None]
    stored = detail.metrics["search"]
    assert stored["trials"] and stored["budget_seconds"] == 3
    assert [t.to_dict() for t in streamed if t.state != "running"] == stored["trials"]  # live = kept
    assert all(t["state"] in STATES for t in stored["trials"]) and stored["trials"][0]["number"] == 0
    # then an ordinary run: completed, of the auto preset, the options set by hand kept as set
    assert (detail.summary.status, detail.summary.preset) == ("completed", PRESET)
    cfg = RunConfig.from_dict(detail.config)
    assert (cfg.train.epochs, cfg.model.hidden_size, cfg.model.embedding_dim) == (2, 16, 16)
    if stored["best_trial"] is not None:  # the chosen trial's settings are the run's
        best = stored["trials"][[t["number"] for t in stored["trials"]].index(stored["best_trial"])]
        assert all(detail.config[k.split("__")[0]][k.split("__")[1]] == v for k, v in best["params"].items())
    assert any(note.startswith(("auto:", "the budget ended")) for note in detail.metrics["notes"])


def test_auto_refuses_several_processes_before_a_run_is_recorded(tmp_path) -> None:
    from lstm_demo.config import AppSettings
    from lstm_demo.service import Service, ServiceError
    from tests.helpers import write_toy_csv

    csv = write_toy_csv(tmp_path / "train.csv", n=40)
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home"), "LSTM_DEMO_DEVICE": "cpu"}))
    try:
        with pytest.raises(ServiceError, match="auto searches in one process"):
            svc.prepare(csv, preset_name="auto", overrides={"train__nproc": 2})
        assert svc.runs() == []
    finally:
        svc.shutdown()
