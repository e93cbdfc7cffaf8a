"""Reads of study paths: a learner's own paths and tasks, and the path history the planner replays."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from co_project.errors import NotFound
from study_paths.models import StudyPath, StudyPathStatus, StudyTask, TaskEvent


def study_path_get_for_learner(*, learner_id: str, path_id: uuid.UUID | str) -> StudyPath:
    """The learner's path; anyone else's is not found (never 'forbidden': ids do not leak)."""
    path = StudyPath.objects.filter(id=path_id, learner_id=learner_id).first()
    if path is None:
        raise NotFound("No such study path.")
    return path


def study_path_active_for(*, learner_id: str, track_id: uuid.UUID) -> StudyPath | None:
    return StudyPath.objects.filter(learner_id=learner_id, track_id=track_id, status=StudyPathStatus.ACTIVE).first()


PLANNING_FIELDS = ("id", "position", "status", "kind", "module_id", "problem_ref", "difficulty", "topics", "metadata")


def study_path_task_rows(*, path_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every task of the path in order, as the planner reads them (one query)."""
    return list(StudyTask.objects.filter(path_id=path_id).order_by("position").values(*PLANNING_FIELDS))


def study_tasks_of_path(*, path_id: uuid.UUID) -> QuerySet[StudyTask]:
    return StudyTask.objects.filter(path_id=path_id).order_by("position")


def task_events_of(*, task_id: uuid.UUID) -> QuerySet[TaskEvent]:
    return TaskEvent.objects.filter(task_id=task_id).order_by("sequence")
