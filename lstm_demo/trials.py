"""An `auto` search's trial reports, and how they travel as training progress reports: a trial is a
`Progress` of the `search` phase whose message holds the report as JSON, so it reaches the app from a
training in its own process like any other report. Light on purpose (no optuna): the service and the
UI read trials through it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .train import Progress

STATES = ("running", "complete", "pruned", "stopped", "failed")  # stopped: cut short by the budget
PHASE = "search"  # the phase of the progress reports that carry trials
KIND = "trial"
BUDGET_STEPS = 1000  # a trial report's place in the budget, as a progress fraction's steps


@dataclass(frozen=True)
class TrialReport:
    number: int  # 0 is the data-adapted defaults
    params: dict[str, Any]  # `section__field` -> value, as `config.override` takes them
    state: str  # one of STATES
    value: float | None  # the monitored validation figure (higher is better; -loss for loss)
    epochs: int  # epochs trained
    seconds: float  # this trial, tokenizer included
    elapsed: float  # since the search began
    best_number: int | None  # the best complete trial so far
    best_value: float | None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trial_progress(report: TrialReport, budget: float) -> Progress:
    """A trial report as a training progress report: its share of the budget is the fraction done, and
    the report itself rides in `message` as JSON (so it crosses a process boundary as any report does)."""
    share = min(BUDGET_STEPS, round(BUDGET_STEPS * report.elapsed / max(budget, 1e-9)))
    return Progress(
        KIND, 1, 1, share, BUDGET_STEPS, report.elapsed, message=json.dumps(report.to_dict()), phase=PHASE
    )


def trial_of(progress: Any) -> TrialReport | None:
    """The trial report a progress report carries; None for any other report."""
    if getattr(progress, "phase", None) != PHASE or getattr(progress, "kind", None) != KIND:
        return None
    return TrialReport(**json.loads(progress.message))
