"""Task events: the append-only log of what happened to each study task (seeds/004 CO-003-009).

Every event is written by `task_events_append`, inside the caller's transaction; the small
functions below name the events the services emit. The database rejects any UPDATE or DELETE
of an event (migration 0002), so the log can only grow.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Max

from study_paths import cache, monitoring
from study_paths.models import StudyTask, TaskEvent, TaskEventType


@dataclass(frozen=True)
class TaskEventSpec:
    task: StudyTask
    event_type: str
    payload: dict[str, Any] = field(default_factory=dict)


def task_events_append(*, events: Sequence[TaskEventSpec], at: datetime, new_tasks: bool = False) -> list[TaskEvent]:
    """Append events in the given order, numbering each task's events 1, 2, … (one query to read
    the current numbers unless every task is new, one insert). Run inside the transaction that
    changed the tasks, with the tasks locked (or just created), so numbers cannot collide."""
    if not events:
        return []
    last: dict[uuid.UUID, int] = {}
    if not new_tasks:
        task_ids = {spec.task.id for spec in events}
        last = dict(
            TaskEvent.objects.filter(task_id__in=task_ids)
            .order_by()
            .values("task_id")
            .annotate(last=Max("sequence"))
            .values_list("task_id", "last")
        )
    rows = []
    for spec in events:
        sequence = last.get(spec.task.id, 0) + 1
        last[spec.task.id] = sequence
        rows.append(
            TaskEvent(
                task_id=spec.task.id,
                path_id=spec.task.path_id,
                sequence=sequence,
                event_type=spec.event_type,
                payload=spec.payload,
                created_at=at,
            )
        )
    created = TaskEvent.objects.bulk_create(rows)
    # Every task write passes here: the learner's cached read models (active path, progress,
    # dashboard) are forgotten, and verdicts are counted for /metrics once they commit.
    cache.active_path_forget(spec.task.learner_id for spec in events)
    monitoring.completions_count(events)
    return created


def task_created(task: StudyTask) -> TaskEventSpec:
    return TaskEventSpec(
        task,
        TaskEventType.CREATED,
        {"position": task.position, "kind": task.kind, "problem": task.problem_ref, "difficulty": task.difficulty},
    )


def task_status_changed(task: StudyTask, *, before: str, after: str, reason: str) -> TaskEventSpec:
    return TaskEventSpec(task, TaskEventType.STATUS_CHANGED, {"from": before, "to": after, "reason": reason})


def task_expired(task: StudyTask, *, before: str) -> TaskEventSpec:
    return TaskEventSpec(task, TaskEventType.EXPIRED, {"from": before, "to": "expired", "expires_at": _iso(task.expires_at)})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
