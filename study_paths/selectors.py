"""Reads of study paths: a learner's own paths and tasks, and the path history the planner replays."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Case, IntegerField, Prefetch, Value, When

from co_project.errors import NotFound
from study_paths.models import StudyPath, StudyPathStatus, StudyTask, TaskKind, TaskStatus


def study_path_active_for(*, learner_id: str, track_id: uuid.UUID) -> StudyPath | None:
    return StudyPath.objects.filter(learner_id=learner_id, track_id=track_id, status=StudyPathStatus.ACTIVE).first()


PLANNING_FIELDS = ("id", "position", "status", "kind", "module_id", "problem_ref", "difficulty", "topics", "metadata")


def study_path_task_rows(*, path_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every task of the path in order, as the planner reads them (one query)."""
    return list(StudyTask.objects.filter(path_id=path_id).order_by("position").values(*PLANNING_FIELDS))


UPCOMING_STATUSES = (TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED, TaskStatus.PENDING)


def study_path_with_upcoming(*, learner_id: str, path_id: uuid.UUID | str) -> StudyPath:
    """The learner's path with its track and its upcoming tasks in order (two queries); anyone
    else's path is not found (never 'forbidden': ids do not leak)."""
    tasks = StudyTask.objects.filter(status__in=UPCOMING_STATUSES).select_related("problem", "module").order_by("position")
    path = (
        StudyPath.objects.filter(id=path_id, learner_id=learner_id)
        .select_related("track")
        .prefetch_related(Prefetch("tasks", queryset=tasks, to_attr="upcoming_tasks"))
        .first()
    )
    if path is None:
        raise NotFound("No such study path.")
    return path


@dataclass(frozen=True)
class NextTask:
    task: StudyTask | None
    reason: str


def study_task_next_for(*, learner_id: str, now: datetime) -> NextTask:
    """The task to do now across the learner's active paths: one already started, else a due
    review, else the earliest due task in path order (one query; two when there is none, to say why)."""
    order = Case(
        When(status__in=(TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED), then=Value(0)),
        When(kind=TaskKind.REVIEW, due_at__lte=now, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    task = (
        StudyTask.objects.filter(learner_id=learner_id, status__in=UPCOMING_STATUSES, path__status=StudyPathStatus.ACTIVE)
        .select_related("problem", "module")
        .order_by(order, "due_at", "position")
        .first()
    )
    if task is not None:
        reasons = {0: "You have started this task.", 1: "A review is due."}
        return NextTask(task, reasons.get(_rank(task, now), "Next in your study path."))
    statuses = set(StudyPath.objects.filter(learner_id=learner_id).values_list("status", flat=True))
    if StudyPathStatus.ACTIVE in statuses:
        return NextTask(None, "Nothing in your active study path is within reach yet; it waits for new content.")
    if StudyPathStatus.COMPLETED in statuses:
        return NextTask(None, "You have completed your study path. Start a new one with POST /v1/study-paths.")
    if StudyPathStatus.PAUSED in statuses:
        return NextTask(None, "Your study path is paused. Resume it to get tasks.")
    return NextTask(None, "You have no active study path. Start one with POST /v1/study-paths.")


def _rank(task: StudyTask, now: datetime) -> int:
    if task.status in (TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED):
        return 0
    return 1 if task.kind == TaskKind.REVIEW and task.due_at is not None and task.due_at <= now else 2
