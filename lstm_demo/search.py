"""`auto`: a search over the settings that matter, within a time budget, chosen on validation.

The only module that imports optuna. `search(...)` is a generator of plain `TrialReport`s (for a
live table and a best-so-far curve) whose return value is a `SearchResult` holding an ordinary
`RunConfig`: the caller trains it as any other run. Trials see the training rows only, split as
the run itself will split them, so the validation figures of the search and of the run agree and
the test file never takes part in a choice.

Same seed, same data, same trial count -> the same trials: the TPE sampler is seeded, every trial
trains with the run's seed, and the first trial is always the data-adapted defaults (`adapt`), so
the search can only improve on them on validation; a trial that leads them by no more than the
validation figure's noise (one standard error) does not replace them (`_over_the_noise`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from .adapt import adapt, bounded_length, describe, explicit
from .config import PRESETS, Limits, RunConfig, override
from .config import parse_budget as parse_budget  # re-exported: the search's own word for it
from .data import stratified_split
from .tokenization import TextEncoder
from .train import Progress, train
from .trials import STATES as STATES  # re-exported beside the search that sets them
from .trials import TrialReport, trial_progress

if TYPE_CHECKING:
    from .service import PreparedRun

PRESET = "auto"  # the name a searched configuration carries in the run list
PRUNE_AFTER_EPOCHS = 2  # a trial is compared with the median of earlier ones from this epoch on
PRUNER_STARTUP_TRIALS = 2  # trials that always run to the end, so the median means something
SAMPLER_STARTUP_TRIALS = 6  # random trials before TPE starts modelling which settings score well
TRIAL_PATIENCE = 3  # early stopping inside a trial whose preset has none: the budget is shared

# Searched options (`section__field`) and their choices. Categorical where the values are few and
# worth reading in a table; (low, high) float ranges for dropouts and shares; the learning rate on a
# log scale. WordPiece is left out: its training is not deterministic (see tokenization._trainer),
# which would break "same seed, same trials". Sizes are cut to the limits in `_space`.
CHOICES: dict[str, tuple[Any, ...]] = {
    "model__encoder": ("lstm", "gru"),
    "model__bidirectional": (True, False),
    "model__pooling": ("max", "mean", "attention", "last"),
    "model__embedding_dim": (64, 128, 256),
    "model__hidden_size": (64, 128, 256),
    "tokenizer__kind": ("word", "bpe"),
    "tokenizer__vocab_size": (8000, 16000, 30000),
    "train__class_weights": (False, True),
}
RANGES: dict[str, tuple[float, float]] = {
    "model__embedding_dropout": (0.0, 0.5),
    "model__dropout": (0.0, 0.5),
    "model__recurrent_dropout": (0.0, 0.3),
    "train__adversarial": (0.0, 0.5),
}
LOG_RANGES: dict[str, tuple[float, float]] = {"train__learning_rate": (3e-4, 1e-2)}
_LIMITED = {"model__embedding_dim": "embedding_dim", "model__hidden_size": "hidden_size"}


@dataclass(frozen=True)
class SearchResult:
    config: RunConfig  # the chosen settings on the adapted defaults; an ordinary run's configuration
    trials: tuple[TrialReport, ...]  # final reports, one per trial, in order
    best: TrialReport | None  # None when no trial finished within the budget
    monitor: str
    notes: tuple[str, ...] = field(default=())  # adapt's notes, then the search's own


def search(
    cfg: RunConfig,
    texts: Sequence[str],
    labels: Sequence[str],
    budget: float | str,
    *,
    max_trials: int | None = None,
    fixed: Collection[str] = (),
    limits: Limits | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[TrialReport, None, SearchResult]:
    """Search settings for `texts`/`labels` (training rows only) within `budget` (see `parse_budget`).

    Yields a `running` report when a trial starts and a final one when it ends; returns the
    `SearchResult`. `fixed`: options the person set, neither adapted nor searched. `max_trials`
    bounds the count as well as the time (tests count trials instead of timing them). A trial
    still training at the deadline is stopped and does not count.
    """
    limits = limits or Limits()
    seconds = parse_budget(budget, limits)
    base, notes = adapt(cfg, texts, labels, fixed=fixed, limits=limits)
    classes = tuple(sorted(set(labels)))
    base = override(base, preset=PRESET, labels=classes, model__num_classes=len(classes))
    limits.check_config(base)
    train_idx, val_idx = stratified_split(labels, base.train.val_fraction, base.train.seed)
    space = _space(base, texts, fixed, limits)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.train.seed, n_startup_trials=SAMPLER_STARTUP_TRIALS),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNE_AFTER_EPOCHS
        ),
    )
    study.enqueue_trial(_defaults(base, space))
    start = clock()
    deadline = start + seconds

    def out_of_time() -> bool:
        return clock() >= deadline or (should_stop is not None and should_stop())

    reports: list[TrialReport] = []
    best: TrialReport | None = None
    while not out_of_time() and (max_trials is None or len(reports) < max_trials):
        trial = study.ask()
        params = _suggest(trial, space)
        began = clock()
        leader = (best.number, best.value) if best else (None, None)
        yield TrialReport(trial.number, params, "running", None, 0, 0.0, began - start, *leader)
        message = ""
        try:
            state, value, epochs = _run_trial(
                trial, override(base, **params), texts, labels, train_idx, val_idx, limits, out_of_time
            )
        except ValueError as e:  # a combination the limits or the data refuse: tell Optuna, go on
            state, value, epochs, message = "failed", None, 0, str(e)
        _tell(study, trial, state, value)
        if state == "complete" and (best is None or value > best.value):
            leader = (trial.number, value)
        final = TrialReport(
            trial.number, params, state, value, epochs, clock() - began, clock() - start, *leader, message
        )
        if leader[0] == trial.number:
            best = final
        reports.append(final)
        yield final

    val_counts = list(Counter(labels[i] for i in val_idx).values())
    best, kept = _over_the_noise(best, reports, base.train.monitor, val_counts)
    if kept:
        notes.append(kept)
    chosen = override(base, **best.params) if best is not None else base
    if best is None:
        notes.append("the budget ended before any trial finished: keeping the data-adapted defaults")
    else:
        notes.append(
            f"auto: {len(reports)} trials in {clock() - start:.0f} s; trial {best.number} was "
            f"{'kept' if kept else 'best'} on validation ({base.train.monitor} {abs(best.value):.3f})"
        )
    return SearchResult(chosen, tuple(reports), best, base.train.monitor, tuple(notes))


def _over_the_noise(
    best: TrialReport | None, reports: Sequence[TrialReport], monitor: str, val_counts: Sequence[int]
) -> tuple[TrialReport | None, str]:
    """The best trial, unless it leads the defaults (trial 0) by no more than one standard error of the
    defaults' validation figure: then the defaults, and a note that says so.

    With a few hundred validation rows the leader among a dozen trials is partly luck. `val_counts`:
    the validation rows of each class. Accuracy is a proportion of all of them, sqrt(v(1 - v) / n);
    macro-F1 is the mean of one figure per class, each read on that class's rows alone, so its error
    is sqrt(v(1 - v) * sum(1 / n_c)) / C, set by the smallest classes (each class's figure taken as
    a proportion near v: an approximation). A loss monitor keeps the plain best.
    """
    first = next((r for r in reports if r.number == 0 and r.state == "complete"), None)
    counts = [n for n in val_counts if n > 0]
    if best is None or first is None or best is first or monitor == "loss" or not counts:
        return best, ""
    v = min(max(first.value, 0.0), 1.0)
    if monitor == "macro_f1":
        margin = math.sqrt(v * (1 - v) * sum(1 / n for n in counts)) / len(counts)
    else:
        margin = math.sqrt(v * (1 - v) / sum(counts))
    lead = best.value - first.value
    if lead > margin:
        return best, ""
    return first, (
        f"auto: trial {best.number} led the defaults by {lead:.3f} on validation, within one standard "
        f"error ({margin:.3f} on {sum(counts)} rows): keeping the defaults"
    )


def run_search(*args: Any, **kwargs: Any) -> SearchResult:
    """`search` without the live reports (the command line's and the benchmark's way)."""
    gen = search(*args, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _space(
    base: RunConfig, texts: Sequence[str], fixed: Collection[str], limits: Limits
) -> dict[str, tuple[str, Any]]:
    """option -> ("choice", values) | ("float", (low, high)) | ("log", (low, high)), without `fixed`.

    Each holds the adapted defaults' own value, so trial 0 is exactly those defaults.
    """
    shape = describe(texts, ["_"] * len(texts))
    # lengths the data suggests: half of the texts whole, most of them, nearly all
    lengths = tuple(bounded_length(shape.length_percentiles[q], limits) for q in (50, 90, 95, 99))
    choices = {**CHOICES, "preprocess__max_length": lengths}
    space: dict[str, tuple[str, Any]] = {}
    for key, values in choices.items():
        values = (*values, _current(base, key))
        if key in _LIMITED:
            bound = getattr(limits, _LIMITED[key])
            values = tuple(v for v in values if v <= bound)
        space[key] = ("choice", tuple(dict.fromkeys(sorted(values, key=_order))))
    for kind, ranges in (("float", RANGES), ("log", LOG_RANGES)):
        for key, (low, high) in ranges.items():
            value = _current(base, key)
            space[key] = (kind, (min(low, value), max(high, value)))
    return {key: spec for key, spec in space.items() if key not in fixed}


def _order(value: Any) -> tuple[str, Any]:
    """Sort mixed choices by type, then value, so the space (and thus the trials) never depends on
    which value the defaults added."""
    return (type(value).__name__, value)


def _current(cfg: RunConfig, key: str) -> Any:
    section, name = key.split("__", 1)
    return getattr(getattr(cfg, section), name)


def _defaults(base: RunConfig, space: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The adapted defaults as trial 0's parameters."""
    return {key: _current(base, key) for key in space}


def _suggest(trial: optuna.trial.Trial, space: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    params = {}
    for key, (kind, values) in space.items():
        if kind == "choice":
            params[key] = trial.suggest_categorical(key, values)
        else:
            params[key] = trial.suggest_float(key, values[0], values[1], log=kind == "log")
    return params


def _tell(study: optuna.Study, trial: optuna.trial.Trial, state: str, value: float | None) -> None:
    if state == "complete":
        study.tell(trial, value)
    elif state == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:  # failed, or stopped by the budget: a partial figure would mislead the sampler
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _score(monitor: str, accuracy: float | None, macro_f1: float | None, loss: float | None) -> float:
    """The monitored validation figure, higher is better (as `train` chooses the epoch)."""
    value = {"accuracy": accuracy, "macro_f1": macro_f1, "loss": None if loss is None else -loss}[monitor]
    if value is None or not math.isfinite(value):
        return -math.inf if monitor == "loss" else 0.0
    return value


def _run_trial(
    trial: optuna.trial.Trial,
    cfg: RunConfig,
    texts: Sequence[str],
    labels: Sequence[str],
    train_idx: Sequence[int],
    val_idx: Sequence[int],
    limits: Limits,
    out_of_time: Callable[[], bool],
) -> tuple[str, float | None, int]:
    """Train one trial, reporting each epoch to Optuna; returns (state, value, epochs)."""
    encoder = TextEncoder.train([texts[i] for i in train_idx], cfg.preprocess, cfg.tokenizer)
    patience = cfg.train.patience or TRIAL_PATIENCE
    cfg = override(cfg, model__vocab_size=encoder.vocab_size, train__patience=patience)
    limits.check_config(cfg)
    index = {label: i for i, label in enumerate(cfg.labels)}
    ids = encoder.encode_batch(list(texts))
    y = [index[label] for label in labels]

    def rows(idx: Sequence[int]) -> tuple[list[list[int]], list[int]]:
        return [ids[i] for i in idx], [y[i] for i in idx]

    monitor, epochs = cfg.train.monitor, 0
    reports = train(cfg, *rows(train_idx), *rows(val_idx), should_stop=out_of_time)
    for p in reports:
        if p.kind == "epoch":
            epochs = p.epoch
            trial.report(_score(monitor, p.val_accuracy, p.val_macro_f1, p.val_loss), p.epoch)
            if trial.should_prune():
                reports.close()
                return "pruned", None, epochs
        elif p.kind == "cancelled":
            return "stopped", None, epochs
        elif p.kind == "done":
            val = p.result.val
            return "complete", _score(monitor, val["accuracy"], val["macro_f1"], val["loss"]), epochs
    raise RuntimeError("training ended without a final report")


def before_training(
    prepared: PreparedRun, limits: Limits, should_stop: Callable[[], bool] | None = None
) -> Iterator[Progress]:
    """An `auto` run's search, in its training job before the training: each trial report streams as a
    progress report (`trial_of` reads it back); then the run's config becomes the chosen one and its
    trials are kept on `prepared.search` for the run's metrics. Other presets: nothing happens.

    The search sees the training table's rows (never a test file) and splits them as the run does;
    options set apart from the preset are neither adapted nor searched.
    """
    cfg = prepared.config
    if cfg.preset != PRESET:
        return
    table = prepared.table
    texts, labels = list(table.texts), list(table.labels)
    gen = search(
        cfg, texts, labels, cfg.train.budget, fixed=explicit(PRESETS[PRESET], cfg), limits=limits,
        should_stop=should_stop,
    )  # fmt: skip
    while True:
        try:
            report = next(gen)
        except StopIteration as stop:
            result: SearchResult = stop.value
            break
        yield trial_progress(report, cfg.train.budget)
    prepared.config = override(result.config, text_column=cfg.text_column, label_column=cfg.label_column)
    prepared.notes.extend(note for note in result.notes if note not in prepared.notes)
    prepared.search = record(result, cfg.train.budget)


def record(result: SearchResult, budget: float) -> dict[str, Any]:
    """What a run keeps of its search (the `search` record of its metrics)."""
    best = result.best
    return {
        "budget_seconds": budget,
        "monitor": result.monitor,
        "best_trial": None if best is None else best.number,
        "best_value": None if best is None else best.value,
        "trials": [t.to_dict() for t in result.trials],
    }
