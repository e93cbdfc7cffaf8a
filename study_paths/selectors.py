"""Reads of study paths: a learner's own paths and tasks, and the path history the planner replays."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Prefetch, Q, QuerySet, Value, When

from co_project.errors import NotFound
from study_paths.models import StudyPath, StudyPathStatus, StudyTask, TaskEvaluation, TaskEvent, TaskKind, TaskStatus
from study_paths.planner import QUEUE_REVIEW_SOURCE


def study_path_active_for(*, learner_id: str, track_id: uuid.UUID) -> StudyPath | None:
    return StudyPath.objects.filter(learner_id=learner_id, track_id=track_id, status=StudyPathStatus.ACTIVE).first()


PLANNING_FIELDS = (
    "id",
    "position",
    "status",
    "kind",
    "module_id",
    "problem_ref",
    "difficulty",
    "topics",
    "metadata",
    "due_at",
    "finished_at",
)


def study_path_task_rows(*, path_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every task of the path in order, as the planner reads them (one query)."""
    return list(StudyTask.objects.filter(path_id=path_id).order_by("position").values(*PLANNING_FIELDS))


UPCOMING_STATUSES = (TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED, TaskStatus.PENDING)


def _tasks_shown() -> QuerySet[StudyTask]:
    """Tasks with what a response shows of their module and problem (`module_slug`,
    `problem_slug`, `problem_title`; the create service sets the same on the tasks it has just
    written) — not whole problem rows with their statements, tests and references."""
    return StudyTask.objects.annotate(
        module_slug=F("module__slug"), problem_slug=F("problem__slug"), problem_title=F("problem__title")
    )


def study_path_with_upcoming(*, learner_id: str, path_id: uuid.UUID | str) -> StudyPath:
    """The learner's path with its track and its upcoming tasks in order (two queries); anyone
    else's path is not found (never 'forbidden': ids do not leak)."""
    tasks = _tasks_shown().filter(status__in=UPCOMING_STATUSES).order_by("position")
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
    """The task to do now across the learner's active paths: one already started, else the plan's
    next (the earliest due, in path order). Due reviews come first through the plan itself: the
    planner puts them at the head of the tail whenever they fit the difficulty chain, and serving
    one out of the plan's order could break its +1 rule (one query; two when there is none, to
    say why)."""
    order = Case(
        When(status__in=(TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED), then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    task = (
        _tasks_shown()
        .filter(learner_id=learner_id, status__in=UPCOMING_STATUSES, path__status=StudyPathStatus.ACTIVE)
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
    queued = (task.metadata.get("review_source") or {}).get("source") == QUEUE_REVIEW_SOURCE
    return 1 if task.kind == TaskKind.REVIEW and queued and task.due_at is not None and task.due_at <= now else 2


# --- paths and tasks: read, list, change ---------------------------------------------------------


def study_paths_of(*, learner_id: str) -> QuerySet[StudyPath]:
    """The learner's paths with their tracks (one query a page), for cursor pagination."""
    return StudyPath.objects.filter(learner_id=learner_id).select_related("track")


def study_path_detail(*, learner_id: str, path_id: uuid.UUID | str) -> StudyPath:
    """The path with its upcoming tasks (`study_path_with_upcoming`) and `task_counts`, its tasks
    counted per status (one aggregate query more, whatever the history)."""
    path = study_path_with_upcoming(learner_id=learner_id, path_id=path_id)
    counts = dict(
        StudyTask.objects.filter(path_id=path.id).order_by().values("status").annotate(n=Count("id")).values_list("status", "n")
    )
    path.task_counts = {status: counts.get(status, 0) for status in TaskStatus.values}
    return path


def study_path_active_of(*, learner_id: str, track: str | None) -> StudyPath | None:
    """The learner's active path (on the track, by slug or id, when given; the newest otherwise)
    with its upcoming tasks (two queries, one when there is none)."""
    paths = StudyPath.objects.filter(learner_id=learner_id, status=StudyPathStatus.ACTIVE)
    if track is not None:
        as_id = _uuid_or_none(track)
        paths = paths.filter(Q(track__slug=track) | Q(track_id=as_id) if as_id else Q(track__slug=track))
    tasks = _tasks_shown().filter(status__in=UPCOMING_STATUSES).order_by("position")
    return (
        paths.select_related("track")
        .prefetch_related(Prefetch("tasks", queryset=tasks, to_attr="upcoming_tasks"))
        .order_by("-created_at", "id")
        .first()
    )


def study_path_none_reason(*, learner_id: str, track: str | None) -> str:
    if track is not None:
        return f"You have no active study path on track {track!r}. Start one with POST /v1/study-paths."
    return "You have no active study path. Start one with POST /v1/study-paths."


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class TaskFilters:
    path: uuid.UUID | None = None
    status: str | None = None
    kind: str | None = None
    module: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


def study_tasks_of(*, learner_id: str, filters: TaskFilters) -> QuerySet[StudyTask]:
    """The learner's tasks matching every filter given, with problem and module (one query a page)."""
    tasks = _tasks_shown().filter(learner_id=learner_id)
    if filters.path is not None:
        tasks = tasks.filter(path_id=filters.path)
    if filters.status is not None:
        tasks = tasks.filter(status=filters.status)
    if filters.kind is not None:
        tasks = tasks.filter(kind=filters.kind)
    if filters.module is not None:
        tasks = tasks.filter(module__slug=filters.module)
    if filters.due_before is not None:
        tasks = tasks.filter(due_at__lt=filters.due_before)
    if filters.due_after is not None:
        tasks = tasks.filter(due_at__gte=filters.due_after)
    return tasks


def study_task_detail(*, learner_id: str, task_id: uuid.UUID | str) -> StudyTask:
    """The learner's task with its events in order and its evaluations (three queries); anyone
    else's task is not found."""
    task = (
        _tasks_shown()
        .filter(id=task_id, learner_id=learner_id)
        .prefetch_related(
            Prefetch("events", queryset=TaskEvent.objects.order_by("sequence"), to_attr="event_log"),
            Prefetch("evaluations", queryset=TaskEvaluation.objects.order_by("created_at", "id"), to_attr="evaluation_list"),
        )
        .first()
    )
    if task is None:
        raise NotFound("No such study task.")
    return task
