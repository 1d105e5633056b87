"""What the tabs share: messages, run choices, run summaries as plain data, error wording.

Handlers never show a traceback: `user_message` (the service's `describe_error`) passes a message
written for the user and answers anything else with an error id, its traceback in the server log.
"""

from __future__ import annotations

import html
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ..service import Service, ServiceError, describe_error

NO_MODEL = "no trained model yet: train one in the Train tab, or try one in the Examples tab"


user_message = describe_error  # the message a person should see for an error


def message_html(text: str | list[str] | tuple[str, ...], kind: str = "error") -> str:
    """A message box (kind: error | info | ok); every line is escaped, so file and column names show as text."""
    lines = [text] if isinstance(text, str) else list(text)
    lines = [line for line in lines if line]
    if not lines:
        return ""
    body = "<br>".join(html.escape(line) for line in lines)
    role = ' role="alert"' if kind == "error" else ""
    return f'<div class="lstm-demo-msg lstm-demo-msg-{kind}"{role}>{body}</div>'


def fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def run_label(run: Any) -> str:
    """How a run is named in dropdowns: id, name or dataset, preset, validation accuracy."""
    parts = [run.id, run.name or run.dataset_name or "", run.preset]
    if run.val_accuracy is not None:
        parts.append(f"acc {run.val_accuracy:.3f}")
    return " · ".join(p for p in parts if p)


def run_choices(service: Service, status: str | None = "completed") -> list[tuple[str, str]]:
    """(label, id) pairs for a run dropdown, newest first."""
    return [(run_label(r), r.id) for r in service.runs(status=status)]


def latest_completed(service: Service) -> str | None:
    runs = service.runs(status="completed", limit=1)
    return runs[0].id if runs else None


def resolve_run(service: Service, run_id: str | None) -> str:
    """The run to use: the one named (an id or a unique prefix), else the newest completed one."""
    if run_id and run_id.strip():
        return service.resolve(run_id.strip())
    latest = latest_completed(service)
    if latest is None:
        raise ServiceError(NO_MODEL)
    return latest


def plain(value: Any) -> Any:
    """Dataclasses, datetimes and tuples as JSON-friendly values."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def labels_of(service: Service, run_id: str) -> list[str]:
    """The class labels a stored run predicts, in the model's order."""
    return list(service.run(run_id).config.get("labels", []))
