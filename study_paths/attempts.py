"""Attempts on study tasks: a submit goes through the one evaluation pipeline, a hint through the
tutor service — the second front door to the same grading, learner model and tutor as sessions.

The pipeline knows a study task only as an `Origin` (registered in `StudyPathsConfig.ready`): it
asks `check_submission` before the row is written and hands `record_verdict` every final verdict
inside the verdict's transaction, where the task's evaluation, its events, its status and the
path's plan are written. Mastery and the review queue are the pipeline's own (`attempt_record`),
exactly as for a session; this module only supplies the hints used and the time taken.

A hint goes through `tutor_turn_start_for` (the study-task `HintOrigin` counts it on the task);
the learner reads it from the tutor's own SSE stream, and what they were shown is appended to the
task's events when the stream ends.

A task takes one submission at a time: while one is being graded the task is `submitted` and a
second submit is a 409 (`study_task_awaiting_verdict`), so every verdict is judged against
the attempt count it was made at. A failed attempt sends the task back to `in_progress`; it gets
its verdict (and the plan adapts) when it passes or when `attempts_per_task` graded attempts failed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from co_project.errors import NotFound, ProblemRepositoryNotReady
from study_paths import events
from study_paths.errors import StudyPathNotActive, StudyTaskAwaitingVerdict, StudyTaskFinished
from study_paths.models import (
    FINISHED_TASK_STATUSES,
    StudyPath,
    StudyPathStatus,
    StudyTask,
    TaskEvaluation,
    TaskEventType,
    TaskStatus,
)
from study_paths.services import CONFIG_DEFAULTS, study_path_advance
from submissions.origins import STUDY_TASK_ORIGIN, AttemptContext, AttemptVerdict
from submissions.services import submission_create
from tracks.problem_bank import problem_bundle_require
from tutoring.services import tutor_turn_start_for

logger = logging.getLogger("co.study_paths")

# A task takes a submission (or a hint) only in these statuses.
ATTEMPTABLE_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


# --- reads ---------------------------------------------------------------------------------------


def _task_key(task_id: uuid.UUID | str) -> uuid.UUID:
    try:
        return uuid.UUID(str(task_id))
    except ValueError:
        raise NotFound("No such study task.") from None


@dataclass(frozen=True)
class AttemptTarget:
    task_id: uuid.UUID
    problem_ref: str
    subject: str


def study_task_attempt_target(*, learner_id: str, task_id: uuid.UUID | str) -> AttemptTarget:
    """The learner's task and the subject its answer is written in (which body a submit takes);
    anyone else's task is not found. The task's state is judged by the submit itself."""
    row = StudyTask.objects.filter(id=_task_key(task_id), learner_id=learner_id).values_list("id", "problem_ref").first()
    if row is None:
        raise NotFound("No such study task.")
    bundle = problem_bundle_require(reference=row[1])
    return AttemptTarget(task_id=row[0], problem_ref=row[1], subject=bundle.subject)


def _task_locked_for_attempt(*, learner_id: str, task_id: uuid.UUID) -> StudyTask:
    """The learner's task, locked, when it may take an attempt now: its path active, the task
    neither finished nor waiting for a verdict. Run inside the caller's transaction."""
    task = (
        StudyTask.objects.select_for_update(of=("self",)).select_related("path").filter(id=task_id, learner_id=learner_id).first()
    )
    if task is None:
        raise NotFound("No such study task.")
    if task.path.status != StudyPathStatus.ACTIVE:
        raise StudyPathNotActive(f"This study path is {task.path.status}; resume it to work on its tasks.")
    if task.status == TaskStatus.SUBMITTED:
        raise StudyTaskAwaitingVerdict()
    if task.status in FINISHED_TASK_STATUSES:
        raise StudyTaskFinished(f"This study task is {task.status}; it takes no more attempts.")
    return task


def _start(task: StudyTask, *, now: datetime, via: str) -> list[events.TaskEventSpec]:
    """A pending task is started by the first thing the learner does with it."""
    if task.status != TaskStatus.PENDING:
        return []
    task.status = TaskStatus.IN_PROGRESS
    task.started_at = now
    return [events.TaskEventSpec(task, TaskEventType.STARTED, {"via": via})]


# --- submit --------------------------------------------------------------------------------------


def study_task_submit(*, learner_id: str, target: AttemptTarget, payload: dict[str, Any], idempotency_key: str = "") -> Any:
    """Submit an answer to the learner's task through `submission_create` (the study-task origin
    checks and locks the task in this transaction); the task becomes `submitted` with `started`
    (when it was pending) and `submitted` events. Returns the submission; with a reused
    Idempotency-Key the first one, and nothing is written. The evaluation is queued when this
    transaction commits."""
    with transaction.atomic():
        submission, created = submission_create(
            learner_id=learner_id,
            problem_ref=target.problem_ref,
            subject=target.subject,
            payload=payload,
            origin=STUDY_TASK_ORIGIN,
            origin_id=target.task_id,
            idempotency_key=idempotency_key,
        )
        if not created:
            return submission
        task = StudyTask.objects.get(id=target.task_id)  # locked by the origin's check, in this transaction
        now = timezone.now()
        changes = _start(task, now=now, via="submit")
        task.status = TaskStatus.SUBMITTED
        task.updated_at = now
        task.save(update_fields=["status", "started_at", "updated_at"])
        changes.append(
            events.TaskEventSpec(
                task,
                TaskEventType.SUBMITTED,
                {"submission_id": str(submission.id), "attempt": task.attempt_count + 1, "language": submission.language},
            )
        )
        events.task_events_append(events=changes, at=now)
    logger.info("study task submitted", extra={"task_id": str(target.task_id), "submission_id": str(submission.id)})
    return submission


# --- the verdict -----------------------------------------------------------------------------------


def _score(verdict: AttemptVerdict) -> float:
    """1.0 for a pass; else the share of tests passed (0.0 for math and design answers, which have none)."""
    if verdict.status == "passed":
        return 1.0
    total = verdict.visible_total + verdict.hidden_total
    if not total:
        return 0.0
    return min((verdict.visible_passed + verdict.hidden_passed) / total, 0.99)


def _evaluation(task: StudyTask, verdict: AttemptVerdict) -> TaskEvaluation:
    return TaskEvaluation.objects.create(
        task=task,
        submission_id=verdict.submission_id,
        score=_score(verdict),
        runtime_ms=verdict.exec_ms,
        peak_memory_kb=verdict.peak_memory_kb,
        visible_passed=verdict.visible_passed,
        visible_total=verdict.visible_total,
        hidden_passed=verdict.hidden_passed,
        hidden_total=verdict.hidden_total,
        failed_categories=list(verdict.categories),
        # Visible tests only, and only how each ended: their data is in the submission's result.
        visible_details=[
            {"index": index, "outcome": outcome, "passed": outcome == "passed"}
            for index, outcome in enumerate(verdict.visible_outcomes)
        ],
        partial=verdict.status == "timeout" or len(verdict.visible_outcomes) < verdict.visible_total,
        created_at=verdict.at,
    )


def study_task_verdict_record(verdict: AttemptVerdict) -> AttemptContext:
    """The study-task origin's part of a verdict, inside the verdict's transaction: the task's
    evaluation (graded verdicts), an `evaluated` event, the attempt count and status, and — when
    the task got its verdict — `study_path_advance`. Replanning can never undo the verdict: it
    runs in a savepoint, and when it fails the task's status is recorded without it."""
    path_id = StudyTask.objects.filter(id=verdict.origin_id).values_list("path_id", flat=True).first()
    if path_id is None:
        return AttemptContext()
    # The path, then the task: the order study_path_advance locks them in.
    path = StudyPath.objects.select_for_update().only("id", "config", "status").get(id=path_id)
    task = StudyTask.objects.select_for_update().get(id=verdict.origin_id)
    context = AttemptContext(
        max_hint_level=int(task.metadata.get("max_hint_level", 0)),
        seconds_taken=max(0.0, (verdict.at - task.started_at).total_seconds()) if task.started_at else None,
    )
    payload: dict[str, Any] = {"submission_id": str(verdict.submission_id), "status": verdict.status, "graded": verdict.graded}
    if verdict.graded:
        evaluation = _evaluation(task, verdict)
        task.attempt_count += 1
        payload.update(
            evaluation_id=str(evaluation.id),
            attempt=task.attempt_count,
            score=evaluation.score,
            visible={"passed": verdict.visible_passed, "total": verdict.visible_total},
            hidden={"passed": verdict.hidden_passed, "total": verdict.hidden_total},
            categories=list(verdict.categories),
        )
    final = None
    if task.status == TaskStatus.SUBMITTED:  # else it was skipped or expired meanwhile: it keeps that
        attempts_allowed = int(path.config.get("attempts_per_task", CONFIG_DEFAULTS["attempts_per_task"]))
        if verdict.graded and verdict.status == "passed":
            final = TaskStatus.PASSED
        elif verdict.graded and task.attempt_count >= attempts_allowed:
            final = TaskStatus.FAILED
        else:  # a failed attempt with attempts left, or our own error: the learner tries again
            task.status = TaskStatus.IN_PROGRESS
            payload["attempts_left"] = max(0, attempts_allowed - task.attempt_count)
    task.updated_at = verdict.at
    task.save(update_fields=["attempt_count", "status", "updated_at"])
    events.task_events_append(events=[events.TaskEventSpec(task, TaskEventType.EVALUATED, payload)], at=verdict.at)
    if final is not None:
        _task_finish(task, final, now=verdict.at)
    return context


def _task_finish(task: StudyTask, verdict: str, *, now: datetime) -> None:
    try:
        with transaction.atomic():
            study_path_advance(task=task, verdict=verdict, now=now)
        return
    except Exception:  # the plan waits for the next verdict; this one must stand
        logger.exception("study path not advanced after a verdict", extra={"task_id": str(task.id), "verdict": verdict})
    StudyTask.objects.filter(id=task.id, status=TaskStatus.SUBMITTED).update(status=verdict, finished_at=now, updated_at=now)
    events.task_events_append(
        events=[events.task_status_changed(task, before=TaskStatus.SUBMITTED, after=verdict, reason="verdict")], at=now
    )


class StudyTaskOrigin:
    """Study tasks as a front door of the evaluation pipeline."""

    name = STUDY_TASK_ORIGIN

    def check_submission(self, *, learner_id: str, origin_id: uuid.UUID, problem_id: uuid.UUID | None) -> None:
        _task_locked_for_attempt(learner_id=learner_id, task_id=origin_id)

    def record_verdict(self, verdict: AttemptVerdict) -> AttemptContext:
        return study_task_verdict_record(verdict)


# --- hints -----------------------------------------------------------------------------------------


def _task_locked_for_hint(*, learner_id: str, task_id: uuid.UUID | str) -> StudyTask:
    """Like an attempt, but a hint may also be asked while a submission is graded."""
    task = (
        StudyTask.objects.select_for_update(of=("self",))
        .select_related("path")
        .filter(id=_task_key(task_id), learner_id=learner_id)
        .first()
    )
    if task is None:
        raise NotFound("No such study task.")
    if task.path.status != StudyPathStatus.ACTIVE:
        raise StudyPathNotActive(f"This study path is {task.path.status}; resume it to work on its tasks.")
    if task.status in FINISHED_TASK_STATUSES:
        raise StudyTaskFinished(f"This study task is {task.status}; it takes no more hints.")
    return task


def study_task_hint(
    *, learner_id: str, task_id: uuid.UUID | str, level: int, message: str = "", code: str = "", language: str = ""
) -> Any:
    """Ask the tutor for a hint on the learner's task, as a session does (the same context, stream
    and limits); the study-task hint origin counts it on the task. Returns the started turn."""
    return tutor_turn_start_for(
        learner_id=learner_id,
        origin=STUDY_TASK_ORIGIN,
        origin_id=_task_key(task_id),
        hint_level=level,
        message=message,
        code=code,
        language=language,
    )


class StudyTaskHintOrigin:
    """Study tasks as a front door of the tutor: a hint starts a pending task, is counted on it
    (the highest level asked weighs in the learner model, as in a session), and what the learner
    was shown is kept in the task's events."""

    name = STUDY_TASK_ORIGIN

    def hint_problem(self, *, learner_id: str, origin_id: uuid.UUID | str) -> uuid.UUID:
        with transaction.atomic():
            task = _task_locked_for_hint(learner_id=learner_id, task_id=origin_id)
        if task.problem_id is None:
            raise ProblemRepositoryNotReady(
                "Hints need the problem in this server's problem bank.", fields={"task": ["No hints for this problem."]}
            )
        return task.problem_id

    def record_hint(self, *, learner_id: str, origin_id: uuid.UUID, turn_id: uuid.UUID, hint_level: int, at: datetime) -> None:
        task = _task_locked_for_hint(learner_id=learner_id, task_id=origin_id)
        changes = _start(task, now=at, via="hint")
        task.hint_count += 1
        task.metadata = {**task.metadata, "max_hint_level": max(int(task.metadata.get("max_hint_level", 0)), hint_level)}
        task.updated_at = at
        task.save(update_fields=["status", "started_at", "hint_count", "metadata", "updated_at"])
        changes.append(
            events.TaskEventSpec(
                task, TaskEventType.HINT_REQUESTED, {"stage": "requested", "level": hint_level, "turn_id": str(turn_id)}
            )
        )
        events.task_events_append(events=changes, at=at)

    def record_hint_shown(
        self, *, origin_id: uuid.UUID, turn_id: uuid.UUID, hint_level: int, outcome: str, content: str, at: datetime
    ) -> None:
        task = StudyTask.objects.select_for_update().get(id=origin_id)  # event numbers are per task
        payload = {"stage": "shown", "level": hint_level, "turn_id": str(turn_id), "outcome": outcome, "content": content}
        events.task_events_append(events=[events.TaskEventSpec(task, TaskEventType.HINT_REQUESTED, payload)], at=at)
