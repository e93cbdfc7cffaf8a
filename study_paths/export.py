"""The learner's study history as a file (seeds/004 CO-003-013): every task created in a date
range with all its evaluations and events, as CSV or JSON, produced chunk by chunk.

Rows are read in keyset chunks of `CO_EXPORT_CHUNK_SIZE` tasks (three queries a chunk: the tasks,
their evaluations, their events), so memory holds one chunk whatever the history's size and no
query is kept open between chunks (nothing ties a chunk to the thread or connection of the one
before). Only what the learner has already seen is written: evaluations hold counts, categories
and visible-test outcomes; hidden tests never reach a task's rows.

Formats are looked up in `EXPORT_FORMATS`; a new one is one entry there.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from study_paths.models import StudyTask, TaskEvaluation, TaskEvent

TASK_FIELDS = (
    "id",
    "path_id",
    "path__track__slug",
    "module__slug",
    "problem_ref",
    "kind",
    "difficulty",
    "topics",
    "position",
    "status",
    "attempt_count",
    "hint_count",
    "due_at",
    "created_at",
    "started_at",
    "finished_at",
)
EVALUATION_FIELDS = (
    "task_id",
    "id",
    "submission_id",
    "score",
    "runtime_ms",
    "peak_memory_kb",
    "visible_passed",
    "visible_total",
    "hidden_passed",
    "hidden_total",
    "failed_categories",
    "visible_details",
    "partial",
    "created_at",
)
EVENT_FIELDS = ("task_id", "sequence", "event_type", "payload", "created_at")


@dataclass(frozen=True)
class ExportRange:
    """Tasks created at or after `start` and before `end` (either may be open)."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ExportedTask:
    task: dict[str, Any]
    evaluations: list[dict[str, Any]]
    events: list[dict[str, Any]]


def study_task_export_chunks(
    *, learner_id: str, window: ExportRange, chunk_size: int | None = None
) -> Iterator[list[ExportedTask]]:
    """The learner's tasks in the window, oldest first, in chunks of `chunk_size` with their
    evaluations (oldest first) and events (in sequence): three queries a chunk, one for the empty
    read that ends a history whose size is a multiple of the chunk size.

    Ordered by (created_at, id descending) so PostgreSQL and SQLite walk the
    `study_task_learner_created` index (learner_id, -created_at, id) backwards, and each chunk starts
    at an index bound (`created_at >= last`) instead of scanning the rows before it."""
    size = chunk_size or settings.CO_EXPORT_CHUNK_SIZE
    tasks = StudyTask.objects.filter(learner_id=learner_id).order_by("created_at", "-id")
    if window.start is not None:
        tasks = tasks.filter(created_at__gte=window.start)
    if window.end is not None:
        tasks = tasks.filter(created_at__lt=window.end)
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        page = tasks
        if after is not None:
            page = page.filter(created_at__gte=after[0]).filter(Q(created_at__gt=after[0]) | Q(id__lt=after[1]))
        rows = [dict(zip(TASK_FIELDS, values, strict=True)) for values in page.values_list(*TASK_FIELDS)[:size]]
        if not rows:
            return
        ids = [row["id"] for row in rows]
        evaluations: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        for values in TaskEvaluation.objects.filter(task_id__in=ids).order_by("created_at", "id").values_list(*EVALUATION_FIELDS):
            evaluations[values[0]].append(dict(zip(EVALUATION_FIELDS[1:], values[1:], strict=True)))
        events: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        for values in TaskEvent.objects.filter(task_id__in=ids).order_by("task_id", "sequence").values_list(*EVENT_FIELDS):
            events[values[0]].append(dict(zip(EVENT_FIELDS[1:], values[1:], strict=True)))
        yield [ExportedTask(row, evaluations.get(row["id"], []), events.get(row["id"], [])) for row in rows]
        if len(rows) < size:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])


# --- formats ---------------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    """A cell or JSON value: times as ISO 8601 (`+00:00`, as the API writes them), ids as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _json_cell(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=_text)


CSV_COLUMNS = (
    "record",
    "task_id",
    "path_id",
    "track",
    "module",
    "problem",
    "kind",
    "difficulty",
    "topics",
    "position",
    "status",
    "attempt_count",
    "hint_count",
    "due_at",
    "started_at",
    "finished_at",
    "at",
    "sequence",
    "event_type",
    "payload",
    "evaluation_id",
    "submission_id",
    "score",
    "runtime_ms",
    "peak_memory_kb",
    "visible_passed",
    "visible_total",
    "hidden_passed",
    "hidden_total",
    "failed_categories",
    "visible_details",
    "partial",
)
_EMPTY = dict.fromkeys(CSV_COLUMNS, "")


def _csv_rows(item: ExportedTask) -> Iterator[list[Any]]:
    """A `task` row, then one `evaluation` row per evaluation, then one `event` row per event;
    each record fills its own columns and leaves the others empty."""
    task = item.task
    task_id, path_id = str(task["id"]), str(task["path_id"])
    row = dict(
        _EMPTY,
        record="task",
        task_id=task_id,
        path_id=path_id,
        track=task["path__track__slug"],
        module=task["module__slug"],
        problem=task["problem_ref"],
        kind=task["kind"],
        difficulty=task["difficulty"],
        topics=_json_cell(task["topics"]),
        position=task["position"],
        status=task["status"],
        attempt_count=task["attempt_count"],
        hint_count=task["hint_count"],
        due_at=_text(task["due_at"]) or "",
        started_at=_text(task["started_at"]) or "",
        finished_at=_text(task["finished_at"]) or "",
        at=_text(task["created_at"]),
    )
    yield list(row.values())
    for evaluation in item.evaluations:
        row = dict(
            _EMPTY,
            record="evaluation",
            task_id=task_id,
            path_id=path_id,
            at=_text(evaluation["created_at"]),
            evaluation_id=str(evaluation["id"]),
            submission_id=str(evaluation["submission_id"]),
            score=evaluation["score"],
            runtime_ms="" if evaluation["runtime_ms"] is None else evaluation["runtime_ms"],
            peak_memory_kb="" if evaluation["peak_memory_kb"] is None else evaluation["peak_memory_kb"],
            visible_passed=evaluation["visible_passed"],
            visible_total=evaluation["visible_total"],
            hidden_passed=evaluation["hidden_passed"],
            hidden_total=evaluation["hidden_total"],
            failed_categories=_json_cell(evaluation["failed_categories"]),
            visible_details=_json_cell(evaluation["visible_details"]),
            partial="true" if evaluation["partial"] else "false",
        )
        yield list(row.values())
    for event in item.events:
        row = dict(
            _EMPTY,
            record="event",
            task_id=task_id,
            path_id=path_id,
            at=_text(event["created_at"]),
            sequence=event["sequence"],
            event_type=event["event_type"],
            payload=_json_cell(event["payload"]),
        )
        yield list(row.values())


def csv_export(*, learner_id: str, window: ExportRange) -> Iterator[bytes]:
    """The header, then each chunk's rows as one piece of UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    for chunk in study_task_export_chunks(learner_id=learner_id, window=window):
        buffer.seek(0)
        buffer.truncate()
        for item in chunk:
            writer.writerows(_csv_rows(item))
        yield buffer.getvalue().encode()


def _json_task(item: ExportedTask) -> dict[str, Any]:
    task = item.task
    return {
        "id": task["id"],
        "path_id": task["path_id"],
        "track": task["path__track__slug"],
        "module": task["module__slug"],
        "problem": task["problem_ref"],
        "kind": task["kind"],
        "difficulty": task["difficulty"],
        "topics": task["topics"],
        "position": task["position"],
        "status": task["status"],
        "attempt_count": task["attempt_count"],
        "hint_count": task["hint_count"],
        "due_at": task["due_at"],
        "created_at": task["created_at"],
        "started_at": task["started_at"],
        "finished_at": task["finished_at"],
        "evaluations": item.evaluations,
        "events": item.events,
    }


def json_export(*, learner_id: str, window: ExportRange) -> Iterator[bytes]:
    """One JSON document, `{"format", "version", "exported_at", "from", "to", "tasks": [...]}`,
    written a chunk of tasks at a time."""
    head = {
        "format": "study-tasks",
        "version": 1,
        "exported_at": timezone.now(),
        "from": window.start,
        "to": window.end,
    }
    yield (json.dumps(head, default=_text)[:-1] + ', "tasks": [').encode()
    first = True
    for chunk in study_task_export_chunks(learner_id=learner_id, window=window):
        body = ", ".join(json.dumps(_json_task(item), default=_text) for item in chunk)
        yield (body if first else ", " + body).encode()
        first = False
    yield b"]}\n"


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    extension: str
    render: Callable[..., Iterator[bytes]]  # (*, learner_id: str, window: ExportRange) -> pieces of the file


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("text/csv; charset=utf-8", "csv", csv_export),
    "json": ExportFormat("application/json", "json", json_export),
}


def export_file_name(*, format_name: str, first_day: date | None, last_day: date) -> str:
    """`study-tasks-<first day>-<last day>.<ext>` (`start` when the range is open at the start)."""
    first = first_day.isoformat() if first_day else "start"
    return f"study-tasks-{first}-{last_day.isoformat()}.{EXPORT_FORMATS[format_name].extension}"
