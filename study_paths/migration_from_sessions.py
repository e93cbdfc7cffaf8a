"""Sessions → study tasks (seeds/004 CO-003-020): a learner's track sessions become one study
path per track, each presented problem a task, each submitted answer with a verdict a task
evaluation linked to the same submission, with the original times and the events replayed in order.

Rules (README, "Migrating sessions into study tasks"):
- A migrated path is history, not a plan: it is written `archived`, so it never competes with
  the learner's active path on the track (the one-active-path constraint cannot be hit) and
  no planner ever extends it. Sessions themselves are left as they were.
- Idempotent: a session problem already migrated (its task's `metadata.migrated_from`) is
  skipped, so a second run creates nothing. New session problems of a track already migrated
  are appended to that track's migrated path. A session problem is copied once: what happens
  in its session after that is not carried over (roll the batch back and run again).
- Every created row carries its batch; `sessions_migration_rollback` deletes exactly those
  (task events too: the append-only trigger lets through DELETE of rows with a batch id only,
  migration 0003). A batch whose paths later batches added tasks to is rolled back after them.
- One transaction per learner: a crash leaves whole learners migrated, and a re-run finishes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from co_project.errors import Conflict, NotFound
from sessions_app.selectors import PresentedProblem, TrackSessionHistory, track_session_learners, track_sessions_history
from study_paths import cache
from study_paths.models import (
    SessionMigrationBatch,
    StudyPath,
    StudyPathStatus,
    StudyTask,
    TaskEvaluation,
    TaskEvent,
    TaskEventType,
    TaskKind,
    TaskStatus,
)
from submissions.selectors import SessionAttempt, session_attempts
from tracks.selectors import problem_topic_slugs, track_slugs

MIGRATED_ALGORITHM = "sessions"  # never planned: a migrated path is archived

# Session problem state → task status. An open problem stays in progress while its session is
# active; in an ended session it was left undone: skipped.
STATUS_OF_STATE = {"passed": TaskStatus.PASSED, "given_up": TaskStatus.FAILED, "skipped": TaskStatus.SKIPPED}


class SessionMigrationBatchNotFound(NotFound):
    code = "session_migration_batch_not_found"
    default_message = "No such session migration batch."


class SessionMigrationBatchRolledBack(Conflict):
    code = "session_migration_batch_rolled_back"
    default_message = "This session migration batch was already rolled back."


class SessionMigrationBatchHasDependents(Conflict):
    code = "session_migration_batch_has_dependents"
    default_message = "Later batches added tasks to this batch's paths; roll them back first."


@dataclass
class Counts:
    paths: int = 0
    tasks: int = 0
    evaluations: int = 0
    events: int = 0

    def add(self, other: Counts) -> None:
        self.paths += other.paths
        self.tasks += other.tasks
        self.evaluations += other.evaluations
        self.events += other.events

    def as_dict(self) -> dict[str, int]:
        return {"paths": self.paths, "tasks": self.tasks, "evaluations": self.evaluations, "events": self.events}

    def __bool__(self) -> bool:
        return bool(self.paths or self.tasks or self.evaluations or self.events)


@dataclass(frozen=True)
class TrackPlan:
    """What one learner's sessions on one track add: a new path (or the migrated one), its rows."""

    learner_id: str
    track_id: uuid.UUID
    track: str  # the slug
    sessions: int  # the sessions it takes tasks from
    new_path: bool
    counts: Counts


@dataclass
class MigrationReport:
    batch_id: int | None = None
    dry_run: bool = False
    tracks: list[TrackPlan] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)


@dataclass
class _Rows:
    """The rows one learner's migration writes, built before any is written."""

    paths: list[StudyPath] = field(default_factory=list)
    tasks: list[StudyTask] = field(default_factory=list)
    evaluations: list[TaskEvaluation] = field(default_factory=list)
    events: list[TaskEvent] = field(default_factory=list)

    def counts(self) -> Counts:
        return Counts(len(self.paths), len(self.tasks), len(self.evaluations), len(self.events))


def sessions_migrate(
    *,
    learner_id: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[TrackPlan], None] | None = None,
) -> MigrationReport:
    """Migrate every learner's (or one learner's) track sessions started at or after `since`.
    With `dry_run` nothing is written; the report says what would be. Owns its transactions
    (one per learner); a run that finds nothing to add creates no batch."""
    report = MigrationReport(dry_run=dry_run)
    batch: SessionMigrationBatch | None = None
    for learner in track_session_learners(learner_id=learner_id, since=since):
        with transaction.atomic():
            rows, plans = _learner_rows(learner_id=learner, since=since)
            if not rows.counts():
                continue
            if not dry_run:
                if batch is None:
                    batch = SessionMigrationBatch.objects.create(learner_id=learner_id or "", since=since)
                _write(rows, batch=batch)
        for plan in plans:
            report.tracks.append(plan)
            report.counts.add(plan.counts)
            if progress is not None:
                progress(plan)
    if batch is not None:
        batch.created = report.counts.as_dict()
        batch.finished_at = timezone.now()
        batch.save(update_fields=["created", "finished_at"])
        report.batch_id = batch.id
    return report


def _learner_rows(*, learner_id: str, since: datetime | None) -> tuple[_Rows, list[TrackPlan]]:
    """The rows to create for the learner's sessions not migrated yet, per track. Runs inside the
    learner's transaction, with the learner's migrated paths locked (a concurrent run waits)."""
    sessions = track_sessions_history(learner_id=learner_id, since=since)
    migrated_paths = {
        path.track_id: path
        for path in StudyPath.objects.select_for_update()
        .filter(learner_id=learner_id, migration_batch__isnull=False)
        .order_by("created_at")
    }
    done = _migrated_session_problems(list(migrated_paths.values()))
    attempts_by_session: dict[uuid.UUID, list[SessionAttempt]] = defaultdict(list)
    for attempt in session_attempts(session_ids=[s.id for s in sessions]):
        attempts_by_session[attempt.session_id].append(attempt)
    topics = problem_topic_slugs(problem_ids=list({p.problem_id for s in sessions for p in s.problems}))

    by_track: dict[uuid.UUID, list[TrackSessionHistory]] = defaultdict(list)
    for session in sessions:
        by_track[session.track_id].append(session)
    slugs = track_slugs(track_ids=list(by_track))
    rows, plans = _Rows(), []
    for track_id, track_sessions in by_track.items():
        before = rows.counts()
        path = migrated_paths.get(track_id)
        new_path = path is None
        next_position = 1
        if path is None:
            path = StudyPath(
                learner_id=learner_id,
                track_id=track_id,
                status=StudyPathStatus.ARCHIVED,
                config={},
                algorithm_version=MIGRATED_ALGORITHM,
                seed=0,
                learner_start={},
                catalogue_digest="",
                created_at=track_sessions[0].started_at,
            )
        else:
            next_position = (StudyTask.objects.filter(path=path).aggregate(last=Max("position"))["last"] or 0) + 1
        added = 0
        contributing: set[uuid.UUID] = set()
        last_activity = path.updated_at if not new_path else path.created_at
        for session in track_sessions:
            for presented in session.problems:
                if presented.id in done:
                    continue
                task, evaluations, events = _task_rows(
                    path=path,
                    session=session,
                    presented=presented,
                    position=next_position + added,
                    attempts=_attempts_of(presented, session, attempts_by_session[session.id]),
                    topics=topics.get(presented.problem_id, []),
                )
                rows.tasks.append(task)
                rows.evaluations += evaluations
                rows.events += events
                added += 1
                contributing.add(session.id)
                last_activity = max(last_activity, task.updated_at)
        if not added:
            continue
        path.updated_at = last_activity
        if new_path:
            rows.paths.append(path)
        after = rows.counts()
        counts = Counts(
            after.paths - before.paths,
            after.tasks - before.tasks,
            after.evaluations - before.evaluations,
            after.events - before.events,
        )
        plans.append(TrackPlan(learner_id, track_id, slugs.get(track_id, str(track_id)), len(contributing), new_path, counts))
    return rows, plans


def _migrated_session_problems(paths: list[StudyPath]) -> set[int]:
    """The session problems the learner's migrated paths already hold (one query)."""
    found = StudyTask.objects.filter(path__in=paths).values_list("metadata__migrated_from__session_problem", flat=True)
    return {int(value) for value in found if value is not None}


def _attempts_of(
    presented: PresentedProblem, session: TrackSessionHistory, attempts: list[SessionAttempt]
) -> list[SessionAttempt]:
    """The answers given while this presentation was the live one: its problem, from when it was
    opened until the same problem was presented again in the session."""
    later = [p.opened_at for p in session.problems if p.problem_id == presented.problem_id and p.opened_at > presented.opened_at]
    until = min(later) if later else None
    return [
        a
        for a in attempts
        if a.problem_id == presented.problem_id
        and a.created_at >= presented.opened_at
        and (until is None or a.created_at < until)
    ]


def _score(attempt: SessionAttempt) -> float:
    """As a study task scores a verdict (study_paths.attempts): 1.0 for a pass, else the share passed."""
    if attempt.status == "passed":
        return 1.0
    total = attempt.visible_total + attempt.hidden_total
    return min((attempt.visible_passed + attempt.hidden_passed) / total, 0.99) if total else 0.0


def _task_rows(
    *,
    path: StudyPath,
    session: TrackSessionHistory,
    presented: PresentedProblem,
    position: int,
    attempts: list[SessionAttempt],
    topics: list[str],
) -> tuple[StudyTask, list[TaskEvaluation], list[TaskEvent]]:
    opened = presented.opened_at
    if presented.state in STATUS_OF_STATE:
        status, finished = STATUS_OF_STATE[presented.state], presented.finished_at or session.ended_at or opened
    elif session.status == "active":
        status, finished = TaskStatus.IN_PROGRESS, None
    else:
        status, finished = TaskStatus.SKIPPED, session.ended_at or opened
    task = StudyTask(
        id=uuid.uuid4(),
        path=path,
        learner_id=path.learner_id,
        module_id=presented.module_id,
        problem_id=presented.problem_id,
        problem_ref=str(presented.problem_id),
        kind=TaskKind.REVIEW if presented.is_review else TaskKind.PRACTICE,
        difficulty=presented.difficulty,
        topics=topics,
        position=position,
        status=status,
        hint_count=presented.hints_used,
        metadata={
            "reasons": ["Migrated from a track session."],
            "max_hint_level": presented.max_hint_level,
            "migrated_from": {"session": str(session.id), "session_problem": presented.id, "state": presented.state},
        },
        created_at=opened,
        started_at=opened,
        finished_at=finished,
    )
    # (time, payload) in the order they happened; ties keep this order.
    timeline: list[tuple[datetime, str, dict[str, Any]]] = [
        (
            opened,
            TaskEventType.CREATED,
            {"position": position, "kind": task.kind, "problem": task.problem_ref, "difficulty": task.difficulty},
        ),
        (opened, TaskEventType.STARTED, {"via": "session", "session_id": str(session.id)}),
    ]
    evaluations = []
    graded = 0
    for attempt in attempts:
        timeline.append(
            (
                attempt.created_at,
                TaskEventType.SUBMITTED,
                {"submission_id": str(attempt.id), "attempt": graded + 1, "language": attempt.language},
            )
        )
        payload: dict[str, Any] = {"submission_id": str(attempt.id), "status": attempt.status, "graded": attempt.graded}
        if attempt.graded:
            graded += 1
            evaluation = TaskEvaluation(
                id=uuid.uuid4(),
                task=task,
                submission_id=attempt.id,
                score=_score(attempt),
                runtime_ms=attempt.exec_ms,
                peak_memory_kb=attempt.peak_memory_kb,
                visible_passed=attempt.visible_passed,
                visible_total=attempt.visible_total,
                hidden_passed=attempt.hidden_passed,
                hidden_total=attempt.hidden_total,
                failed_categories=list(attempt.failed_categories),
                visible_details=[
                    {"index": index, "outcome": outcome, "passed": outcome == "passed"}
                    for index, outcome in enumerate(attempt.visible_outcomes)
                ],
                partial=attempt.status == "timeout" or len(attempt.visible_outcomes) < attempt.visible_total,
                created_at=attempt.finished_at,
            )
            evaluations.append(evaluation)
            payload.update(
                evaluation_id=str(evaluation.id),
                attempt=graded,
                score=evaluation.score,
                visible={"passed": attempt.visible_passed, "total": attempt.visible_total},
                hidden={"passed": attempt.hidden_passed, "total": attempt.hidden_total},
                categories=list(attempt.failed_categories),
            )
        timeline.append((attempt.finished_at, TaskEventType.EVALUATED, payload))
    timeline.sort(key=lambda item: item[0])  # stable: ties keep the order above
    last = timeline[-1][0]
    if finished is not None:
        # The verdict on the task comes after everything else that happened to it.
        finished = max(finished, last)
        task.finished_at = finished
        reason = f"session {presented.state}" if presented.state in STATUS_OF_STATE else f"session {session.status}"
        timeline.append(
            (finished, TaskEventType.STATUS_CHANGED, {"from": TaskStatus.IN_PROGRESS, "to": status, "reason": reason})
        )
    task.attempt_count = graded
    task.updated_at = timeline[-1][0]
    events = [
        TaskEvent(task=task, path=path, sequence=sequence, event_type=event_type, payload=payload, created_at=at)
        for sequence, (at, event_type, payload) in enumerate(timeline, start=1)
    ]
    return task, evaluations, events


def _write(rows: _Rows, *, batch: SessionMigrationBatch) -> None:
    """Insert the rows in dependency order, each stamped with the batch (inside the learner's transaction)."""
    for group in (rows.paths, rows.tasks, rows.evaluations, rows.events):
        for row in group:
            row.migration_batch = batch
    StudyPath.objects.bulk_create(rows.paths)
    for path in {task.path for task in rows.tasks if task.path not in rows.paths}:
        StudyPath.objects.filter(id=path.id, updated_at__lt=path.updated_at).update(updated_at=path.updated_at)
    StudyTask.objects.bulk_create(rows.tasks, batch_size=500)
    TaskEvaluation.objects.bulk_create(rows.evaluations, batch_size=500)
    TaskEvent.objects.bulk_create(rows.events, batch_size=500)
    cache.active_path_forget({path.learner_id for path in rows.paths})


# --- rollback ------------------------------------------------------------------------------------


def sessions_migration_rollback(*, batch_id: int) -> Counts:
    """Delete exactly the rows the batch created (events, evaluations, tasks, paths) and mark the
    batch rolled back; the sessions and submissions they were copied from are untouched. Refused
    (nothing deleted) for an unknown or rolled-back batch, or while a later batch's tasks sit in
    this batch's paths."""
    with transaction.atomic():
        batch = SessionMigrationBatch.objects.select_for_update().filter(id=batch_id).first()
        if batch is None:
            raise SessionMigrationBatchNotFound(f"No session migration batch {batch_id}.")
        if batch.rolled_back_at is not None:
            raise SessionMigrationBatchRolledBack(f"Batch {batch_id} was rolled back at {batch.rolled_back_at.isoformat()}.")
        paths = StudyPath.objects.filter(migration_batch=batch)
        dependents = sorted(
            set(
                StudyTask.objects.filter(path__in=paths)
                .exclude(migration_batch=batch)
                .values_list("migration_batch_id", flat=True)
            ),
            key=lambda value: (value is None, value or 0),
        )
        if dependents:
            named = ", ".join("unbatched rows" if value is None else f"batch {value}" for value in dependents)
            raise SessionMigrationBatchHasDependents(
                f"Batch {batch_id}'s paths hold tasks of {named}; roll those back first.",
                fields={"dependents": [value for value in dependents if value is not None]},
            )
        learners = set(paths.values_list("learner_id", flat=True))
        deleted = Counts()
        deleted.events = TaskEvent.objects.filter(migration_batch=batch).delete()[0]
        deleted.evaluations = TaskEvaluation.objects.filter(migration_batch=batch).delete()[0]
        deleted.tasks = StudyTask.objects.filter(migration_batch=batch).delete()[0]
        deleted.paths = paths.delete()[0]
        batch.rolled_back_at = timezone.now()
        batch.save(update_fields=["rolled_back_at"])
        cache.active_path_forget(learners)
    return deleted


def sessions_migration_batches() -> list[SessionMigrationBatch]:
    """Every batch, oldest first (one query), for the command's listing."""
    return list(SessionMigrationBatch.objects.order_by("id"))
