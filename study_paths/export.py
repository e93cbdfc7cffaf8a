"""The learner's study history as a file (seeds/004 CO-003-013): every task created in a date
range with all its evaluations and events, as CSV or JSON, produced chunk by chunk.

Rows are read in keyset chunks of `CO_EXPORT_CHUNK_SIZE` tasks (three queries a chunk: the tasks,
their evaluations, their events), so memory holds one chunk whatever the history's size and no
query is kept open between chunks (nothing ties a chunk to the thread or connection of the one
before). Only what the learner has already seen is written: evaluations hold counts, categories
and visible-test outcomes; hidden tests never reach a task's rows.

The ORM builds each query; its rows are read straight from the driver and turned into text here
(ids, ISO 8601 times, JSON columns kept as the JSON text the database holds), because turning
every value into a Python object and back is most of the cost of a large export (bench/export.py).

Formats are looked up in `EXPORT_FORMATS`; a new one is one entry there.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from personalization.selectors import review_log_revlog_csv
from study_paths.models import StudyTask, TaskEvaluation, TaskEvent

# Column orders are the CSV's (CSV_COLUMNS), so a record is its row with a few constants around it.
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
    "started_at",
    "finished_at",
    "created_at",
)
EVALUATION_FIELDS = (
    "task_id",
    "created_at",
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
)
EVENT_FIELDS = ("task_id", "created_at", "sequence", "event_type", "payload")


@dataclass(frozen=True)
class ExportRange:
    """Tasks created at or after `start` and before `end` (either may be open)."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ExportedTask:
    """One task's rows as text: ids and times (ISO 8601) as strings, JSON columns (`topics`,
    `failed_categories`, `visible_details`, `payload`) as JSON text; numbers as numbers. Plain
    tuples in the order of TASK_FIELDS, EVALUATION_FIELDS and EVENT_FIELDS without their leading
    `task_id`: this is built for every row of the file."""

    task: tuple[Any, ...]
    evaluations: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]


def _uuid_text(value: Any) -> str:
    """SQLite holds a UUID as 32 hex digits, PostgreSQL's driver gives a UUID."""
    if isinstance(value, str):
        if len(value) == 32:
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
        return value
    return str(value)


def _time_text(value: Any) -> str | None:
    """SQLite's driver gives a naive datetime in UTC (Django's converter), PostgreSQL's an aware
    one in the connection's zone (UTC, Django sets it): both become `2026-03-01T08:00:00[.ffffff]+00:00`,
    as the API writes times. (Text, as SQLite stores it, when no converter ran.)"""
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(" ", "T", 1) + "+00:00"
    if value.tzinfo is None:  # SQLite's converter: naive, in UTC
        return value.isoformat() + "+00:00"
    return value.isoformat()


def _json_text(value: Any) -> str:
    """The JSON column as JSON text (Django reads jsonb as text on PostgreSQL, SQLite stores text)."""
    return value if isinstance(value, str) else json.dumps(value)


TIME_FIELDS = frozenset({"due_at", "created_at", "started_at", "finished_at"})


def _driver_rows(queryset: QuerySet, fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """The query the ORM builds, its rows as the driver returns them (no per-value converters).
    On SQLite times are selected as the text the database holds: a bare column would be parsed
    into a datetime by the driver (Django registers that converter) only to be written as text."""
    connection = connections[queryset.db]
    if connection.vendor == "sqlite":
        columns: list[Any] = [Cast(name, TextField()) if name in TIME_FIELDS else name for name in fields]
    else:
        columns = list(fields)
    sql, params = queryset.values_list(*columns).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


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
        raw = _driver_rows(page[:size], TASK_FIELDS)
        if not raw:
            return
        # Grouped by the driver's own id values (hex text or UUID): no conversion per child row.
        # The children are found through the chunk's own query as a subquery, not a list of its
        # ids: a list would be converted id by id into parameters, twice a chunk.
        evaluations: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        events: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        chunk_ids = page[:size].values("id")
        for values in _driver_rows(
            TaskEvaluation.objects.filter(task_id__in=chunk_ids).order_by("created_at", "id"), EVALUATION_FIELDS
        ):
            evaluations[values[0]].append(_evaluation_row(values))
        for task_id, at, sequence, event_type, payload in _driver_rows(
            TaskEvent.objects.filter(task_id__in=chunk_ids).order_by("task_id", "sequence"), EVENT_FIELDS
        ):
            events[task_id].append((_time_text(at), sequence, event_type, _json_text(payload)))
        chunk = [ExportedTask(_task_row(values), evaluations.get(values[0], []), events.get(values[0], [])) for values in raw]
        yield chunk
        if len(chunk) < size:
            return
        last = chunk[-1].task
        after = (datetime.fromisoformat(last[-1]), uuid.UUID(last[0]))


def _task_row(values: tuple[Any, ...]) -> tuple[Any, ...]:
    (task_id, path_id, track, module, problem, kind, difficulty, topics, position, status, attempts, hints,
     due_at, started_at, finished_at, created_at) = values  # fmt: skip
    return (
        _uuid_text(task_id), _uuid_text(path_id), track, module, problem, kind, difficulty, _json_text(topics),
        position, status, attempts, hints, _time_text(due_at), _time_text(started_at), _time_text(finished_at),
        _time_text(created_at),
    )  # fmt: skip


def _evaluation_row(values: tuple[Any, ...]) -> tuple[Any, ...]:
    (_task, created_at, evaluation_id, submission_id, score, runtime_ms, peak_kb, visible_passed, visible_total,
     hidden_passed, hidden_total, failed_categories, visible_details, partial) = values  # fmt: skip
    return (
        _time_text(created_at), _uuid_text(evaluation_id), _uuid_text(submission_id), score, runtime_ms, peak_kb,
        visible_passed, visible_total, hidden_passed, hidden_total, _json_text(failed_categories),
        _json_text(visible_details), bool(partial),
    )  # fmt: skip


# --- formats ---------------------------------------------------------------------------------------

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
# Columns a record leaves empty: after a task's `at`, between the ids and an evaluation's or
# event's `at`, between an evaluation's `at` and its id, after an event's payload.
_TASK_TAIL = ("",) * 15
_GAP_BEFORE_AT = ("",) * 13
_EVALUATION_GAP = ("",) * 3
_EVENT_TAIL = ("",) * 12


def _csv_rows(item: ExportedTask) -> list[tuple[Any, ...]]:
    """A `task` row, then one `evaluation` row per evaluation, then one `event` row per event;
    each record fills its own columns (CSV_COLUMNS) and leaves the others empty (csv writes None
    as empty too)."""
    task = item.task
    task_id, path_id = task[0], task[1]
    rows = [("task", *task, *_TASK_TAIL)]
    for e in item.evaluations:
        rows.append(
            ("evaluation", task_id, path_id, *_GAP_BEFORE_AT, e[0], *_EVALUATION_GAP, *e[1:12], "true" if e[12] else "false")
        )
    for event in item.events:
        rows.append(("event", task_id, path_id, *_GAP_BEFORE_AT, *event, *_EVENT_TAIL))
    return rows


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


_encode = json.JSONEncoder().encode  # built once: json.dumps with options builds one per call


def _json_object(values: dict[str, Any], raw: dict[str, str]) -> str:
    """`values` encoded, with `raw` (name → JSON text already) spliced in as they are."""
    spliced = ", ".join(f'"{name}": {text}' for name, text in raw.items())
    return _encode(values)[:-1] + ", " + spliced + "}"


_TASK_SCALARS = (
    "id", "path_id", "track", "module", "problem", "kind", "difficulty", "position", "status", "attempt_count",
    "hint_count", "due_at", "created_at", "started_at", "finished_at",
)  # fmt: skip
_EVALUATION_SCALARS = (
    "id", "submission_id", "score", "runtime_ms", "peak_memory_kb", "visible_passed", "visible_total", "hidden_passed",
    "hidden_total", "partial", "created_at",
)  # fmt: skip


def _json_task(item: ExportedTask) -> str:
    t = item.task
    evaluations = ", ".join(
        _json_object(
            dict(zip(_EVALUATION_SCALARS, (*e[1:10], e[12], e[0]), strict=True)),
            {"failed_categories": e[10], "visible_details": e[11]},
        )
        for e in item.evaluations
    )
    events = ", ".join(
        _json_object({"sequence": ev[1], "event_type": ev[2], "created_at": ev[0]}, {"payload": ev[3]}) for ev in item.events
    )
    scalars = (*t[0:7], *t[8:13], t[15], t[13], t[14])
    return _json_object(
        dict(zip(_TASK_SCALARS, scalars, strict=True)),
        {"topics": t[7], "evaluations": f"[{evaluations}]", "events": f"[{events}]"},
    )


def json_export(*, learner_id: str, window: ExportRange) -> Iterator[bytes]:
    """One JSON document, `{"format", "version", "exported_at", "from", "to", "tasks": [...]}`,
    written a chunk of tasks at a time."""
    head = {
        "format": "study-tasks",
        "version": 1,
        "exported_at": timezone.now().isoformat(),
        "from": window.start.isoformat() if window.start else None,
        "to": window.end.isoformat() if window.end else None,
    }
    yield (_encode(head)[:-1] + ', "tasks": [').encode()
    first = True
    for chunk in study_task_export_chunks(learner_id=learner_id, window=window):
        body = ", ".join([_json_task(item) for item in chunk])
        yield (body if first else ", " + body).encode()
        first = False
    yield b"]}\n"


def revlog_export(*, learner_id: str, window: ExportRange) -> Iterator[bytes]:
    """The learner's review log in the FSRS optimizer's revlog columns, reviews in the window."""
    for line in review_log_revlog_csv(learner_id=learner_id, since=window.start, until=window.end):
        yield line.encode()


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    extension: str
    render: Callable[..., Iterator[bytes]]  # (*, learner_id: str, window: ExportRange) -> pieces of the file
    stem: str = "study-tasks"


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("text/csv; charset=utf-8", "csv", csv_export),
    "json": ExportFormat("application/json", "json", json_export),
    "revlog": ExportFormat("text/csv; charset=utf-8", "csv", revlog_export, stem="revlog"),
}


def export_file_name(*, format_name: str, first_day: date | None, last_day: date) -> str:
    """`<stem>-<first day>-<last day>.<ext>` (`start` when the range is open at the start)."""
    chosen = EXPORT_FORMATS[format_name]
    first = first_day.isoformat() if first_day else "start"
    return f"{chosen.stem}-{first}-{last_day.isoformat()}.{chosen.extension}"
