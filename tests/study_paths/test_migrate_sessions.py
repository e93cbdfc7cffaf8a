"""`manage.py migrate_sessions_to_study_tasks` on a generated history of several learners: the
mapping (paths, tasks, evaluations on the same submissions, events in order with the original
times), idempotence, --dry-run, --learner, --since, --rollback (exactly a batch's rows), and the
task event log staying append-only for every other row."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from sessions_app.models import Session, SessionProblem
from study_paths.models import SessionMigrationBatch, StudyPath, StudyTask, TaskEvaluation, TaskEvent
from study_paths.services import study_path_create
from submissions.models import Submission
from tests.study_paths.factories import publish_wide_track
from tracks.models import Problem, Track

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STATE_TO_STATUS = {"passed": "passed", "given_up": "failed", "skipped": "skipped"}


@dataclass
class Presented:
    row: SessionProblem
    graded: list[Submission] = field(default_factory=list)  # evaluations expected, in order
    answered: list[Submission] = field(default_factory=list)  # submitted + evaluated events expected


@dataclass
class History:
    sessions: list[Session] = field(default_factory=list)
    presented: list[Presented] = field(default_factory=list)


def _submission(session: Session, problem: Problem, *, status: str, at: datetime, kind: str = "submit") -> Submission:
    submission = Submission.objects.create(
        learner_id=session.learner_id,
        session=session,
        problem=problem,
        problem_ref=str(problem.id),
        subject="coding",
        kind=kind,
        language="python",
        payload={"language": "python", "code": "pass"},
        payload_sha256=uuid.uuid4().hex * 2,
        status=status,
        visible_passed=2 if status == "passed" else 1,
        visible_total=2,
        visible_details=[
            {"index": 0, "input": "[1]", "outcome": "passed"},
            {"index": 1, "input": "[2]", "outcome": "passed" if status == "passed" else "wrong_answer"},
        ],
        hidden_passed=3 if status == "passed" else 1,
        hidden_total=3,
        failed_categories=[] if status == "passed" else ["duplicates"],
        result={"hidden": {"input": "HIDDEN-SECRET"}},
        exec_ms=12,
        peak_memory_kb=2048,
        finished_at=None if status in ("pending", "running") else at + timedelta(seconds=5),
    )
    Submission.objects.filter(id=submission.id).update(created_at=at)
    submission.created_at = at
    return submission


def _session(history: History, learner: str, track: Track, *, start: datetime, rng: random.Random, active: bool) -> None:
    problems = list(Problem.objects.filter(module__track=track).order_by("slug"))
    session = Session.objects.create(
        learner_id=learner,
        subject="coding",
        mode="track",
        track=track,
        status="active" if active else "completed",
        ended_at=None if active else start + timedelta(hours=3),
    )
    Session.objects.filter(id=session.id).update(started_at=start)
    session.started_at = start
    history.sessions.append(session)
    at = start
    chosen = rng.sample(problems, 3)
    chosen.append(chosen[0])  # presented again later (a step-down): its answers split between the two
    for position, problem in enumerate(chosen, start=1):
        last = position == len(chosen)
        state = "open" if last else rng.choice(["passed", "passed", "given_up", "skipped"])
        opened = at
        row = SessionProblem.objects.create(
            session=session,
            problem=problem,
            position=position,
            state=state,
            is_review=position == 2,
            hints_used=position % 2,
            max_hint_level=position % 2,
            opened_at=opened,
        )
        presented = Presented(row)
        statuses = {"passed": ["failed", "passed"], "given_up": ["failed", "timeout", "error"], "skipped": [], "open": ["failed"]}
        for status in statuses[state]:
            at += timedelta(minutes=4)
            _submission(session, problem, status="failed", at=at, kind="run")  # runs are not attempts
            at += timedelta(minutes=1)
            submission = _submission(session, problem, status=status, at=at)
            presented.answered.append(submission)
            if status != "error":
                presented.graded.append(submission)
        if state == "open" and not active:
            pass
        elif state != "open":
            at += timedelta(minutes=1)
            row.finished_at = at
            row.save(update_fields=["finished_at"])
        if last:
            _submission(session, problem, status="pending", at=at + timedelta(minutes=1))  # no verdict yet: left out
        history.presented.append(presented)
        at += timedelta(minutes=10)


def _generate(learners: tuple[str, ...] = ("alice", "bob", "carol")) -> History:
    publish_wide_track("wide", modules=2, per_module=3)
    publish_wide_track("deep", modules=1, per_module=4)
    tracks = {t.slug: t for t in Track.objects.all()}
    rng = random.Random(16)
    history = History()
    for index, learner in enumerate(learners):
        day = START + timedelta(days=index)
        _session(history, learner, tracks["wide"], start=day, rng=rng, active=False)
        _session(history, learner, tracks["wide"], start=day + timedelta(days=7), rng=rng, active=index == 0)
        if index != 1:
            _session(history, learner, tracks["deep"], start=day + timedelta(days=3), rng=rng, active=False)
    return history


def _snapshot() -> tuple:
    return (
        sorted(StudyPath.objects.values_list("id", "status", "migration_batch_id")),
        sorted(StudyTask.objects.values_list("id", "status", "migration_batch_id")),
        sorted(TaskEvaluation.objects.values_list("id", "submission_id")),
        sorted(TaskEvent.objects.values_list("id", "sequence")),
        sorted(SessionMigrationBatch.objects.values_list("id", "rolled_back_at")),
        Session.objects.count(),
        SessionProblem.objects.count(),
        Submission.objects.count(),
    )


def _run(*args: str) -> str:
    out = StringIO()
    call_command("migrate_sessions_to_study_tasks", *args, stdout=out)
    return out.getvalue()


def test_sessions_become_archived_paths_with_tasks_evaluations_and_events_in_order() -> None:
    history = _generate()

    output = _run()

    batch = SessionMigrationBatch.objects.get()
    assert output.splitlines()[-1] == (
        f"Batch {batch.id}: created 5 path(s), 32 task(s), {TaskEvaluation.objects.count()} evaluation(s), "
        f"{TaskEvent.objects.count()} event(s). Undo with --rollback {batch.id}."
    )
    assert batch.created == {
        "paths": 5,
        "tasks": 32,
        "evaluations": sum(len(p.graded) for p in history.presented),
        "events": TaskEvent.objects.count(),
    }
    paths = StudyPath.objects.order_by("learner_id", "track__slug")
    assert [(p.learner_id, p.track.slug, p.status, p.migration_batch_id) for p in paths] == [
        ("alice", "deep", "archived", batch.id),
        ("alice", "wide", "archived", batch.id),
        ("bob", "wide", "archived", batch.id),
        ("carol", "deep", "archived", batch.id),
        ("carol", "wide", "archived", batch.id),
    ]
    for path in paths:
        sessions = [s for s in history.sessions if s.learner_id == path.learner_id and s.track_id == path.track_id]
        assert path.created_at == min(s.started_at for s in sessions)
        presented = [p for p in history.presented if p.row.session in sessions]
        presented.sort(key=lambda p: (p.row.session.started_at, p.row.position))
        tasks = list(StudyTask.objects.filter(path=path).order_by("position"))
        assert [t.position for t in tasks] == list(range(1, len(presented) + 1))
        for task, source in zip(tasks, presented, strict=True):
            row, session = source.row, source.row.session
            expected_status = STATE_TO_STATUS.get(row.state, "in_progress" if session.status == "active" else "skipped")
            assert (task.problem_id, task.problem_ref, task.module_id, task.difficulty) == (
                row.problem_id,
                str(row.problem_id),
                row.problem.module_id,
                row.problem.difficulty,
            )
            assert (task.status, task.kind, task.hint_count, task.migration_batch_id) == (
                expected_status,
                "review" if row.is_review else "practice",
                row.hints_used,
                batch.id,
            )
            assert (task.created_at, task.started_at) == (row.opened_at, row.opened_at)
            assert task.attempt_count == len(source.graded)
            assert task.metadata["migrated_from"] == {"session": str(session.id), "session_problem": row.id, "state": row.state}
            evaluations = list(TaskEvaluation.objects.filter(task=task).order_by("created_at"))
            assert [e.submission_id for e in evaluations] == [s.id for s in source.graded]
            for evaluation, submission in zip(evaluations, source.graded, strict=True):
                assert (evaluation.created_at, evaluation.hidden_passed, evaluation.hidden_total) == (
                    submission.finished_at,
                    submission.hidden_passed,
                    3,
                )
                assert evaluation.score == (1.0 if submission.status == "passed" else 0.4)
                assert evaluation.visible_details == [
                    {"index": 0, "outcome": "passed", "passed": True},
                    {"index": 1, "outcome": submission.visible_details[1]["outcome"], "passed": submission.status == "passed"},
                ]
            events = list(TaskEvent.objects.filter(task=task).order_by("sequence"))
            expected_types = ["created", "started"] + ["submitted", "evaluated"] * len(source.answered)
            if expected_status != "in_progress":
                expected_types.append("status_changed")
            assert [e.event_type for e in events] == expected_types
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            times = [e.created_at for e in events]
            assert times == sorted(times) and times[0] == row.opened_at
            assert [e.created_at for e in events if e.event_type == "submitted"] == [s.created_at for s in source.answered]
            assert [e.payload["status"] for e in events if e.event_type == "evaluated"] == [s.status for s in source.answered]
            if expected_status != "in_progress":
                assert events[-1].payload["to"] == expected_status and task.finished_at == events[-1].created_at
    assert "HIDDEN-SECRET" not in str(list(TaskEvent.objects.values_list("payload", flat=True)))


def test_a_second_run_changes_nothing() -> None:
    _generate()
    _run()
    before = _snapshot()

    assert _run().splitlines() == ["Nothing to migrate: every track session is already migrated."]
    assert _snapshot() == before


def test_dry_run_prints_what_a_run_creates_and_writes_nothing() -> None:
    _generate()
    before = _snapshot()

    preview = _run("--dry-run")

    assert _snapshot() == before
    lines = preview.splitlines()
    assert lines[0] == "Dry run: nothing is written."
    assert lines[1].startswith("alice on wide: would add 8 task(s), ")
    assert lines[1].endswith(" event(s) from 2 session(s) to a new archived path")
    done = _run()
    assert lines[-1] == "Would create " + done.splitlines()[-1].split(": created ")[1].split(". Undo")[0] + "."
    assert [line.replace("would add", "added") for line in lines[1:-1]] == done.splitlines()[:-1]


def test_learner_and_since_narrow_the_run() -> None:
    _generate()

    _run("--learner", "bob")
    assert set(StudyPath.objects.values_list("learner_id", flat=True)) == {"bob"}
    assert SessionMigrationBatch.objects.get().learner_id == "bob"

    # Sessions on or after Jan 11: alice's and carol's second on wide (bob's is migrated already).
    _run("--since", "2026-01-11")
    migrated = StudyTask.objects.exclude(learner_id="bob").values_list("learner_id", "metadata__migrated_from__session")
    sessions = dict(Session.objects.values_list("id", "started_at"))
    assert {learner for learner, _ in migrated} == {"alice", "carol"}
    assert all(sessions[uuid.UUID(s)] >= datetime(2026, 1, 11, tzinfo=UTC) for _, s in migrated)
    assert StudyPath.objects.filter(track__slug="deep").count() == 0


def test_a_learners_active_path_on_the_track_is_left_alone() -> None:
    _generate(("alice",))
    active = study_path_create(learner_id="alice", track="wide", config={"batch_size": 3}, seed=1)
    own_tasks = sorted(StudyTask.objects.filter(path=active).values_list("id", "status", "updated_at"))

    _run()

    active.refresh_from_db()
    assert active.status == "active" and active.migration_batch_id is None
    assert sorted(StudyTask.objects.filter(path=active).values_list("id", "status", "updated_at")) == own_tasks
    assert StudyPath.objects.get(learner_id="alice", track__slug="wide", migration_batch__isnull=False).status == "archived"


def test_rollback_removes_exactly_the_batch_and_a_new_run_puts_it_back() -> None:
    _generate()
    ordinary = study_path_create(learner_id="alice", track="deep", config={"batch_size": 2}, seed=2)
    before = _snapshot()
    _run()
    batch = SessionMigrationBatch.objects.get()
    created = batch.created

    output = _run("--rollback", str(batch.id))

    assert output.splitlines() == [
        f"Batch {batch.id} rolled back: deleted {created['paths']} path(s), {created['tasks']} task(s), "
        f"{created['evaluations']} evaluation(s), {created['events']} event(s)."
    ]
    after = _snapshot()
    assert after[:4] == before[:4] and after[5:] == before[5:]
    assert StudyPath.objects.get(id=ordinary.id).status == "active"
    batch.refresh_from_db()
    assert batch.rolled_back_at is not None
    with pytest.raises(CommandError, match="session_migration_batch_rolled_back"):
        _run("--rollback", str(batch.id))
    with pytest.raises(CommandError, match="session_migration_batch_not_found"):
        _run("--rollback", "999")

    _run()
    assert SessionMigrationBatch.objects.order_by("id").last().created == created


def test_a_batch_that_later_batches_added_to_is_rolled_back_after_them() -> None:
    _generate(("alice",))
    _run("--learner", "alice")
    first = SessionMigrationBatch.objects.get()
    history = History()
    _session(
        history, "alice", Track.objects.get(slug="wide"), start=START + timedelta(days=30), rng=random.Random(1), active=False
    )

    output = _run().splitlines()
    assert output[0].startswith("alice on wide: added 4 task(s), ")
    assert output[0].endswith(" event(s) from 1 session(s) to its migrated path")
    second = SessionMigrationBatch.objects.order_by("id").last()
    path = StudyPath.objects.get(learner_id="alice", track__slug="wide")
    assert list(StudyTask.objects.filter(path=path).order_by("position").values_list("position", "migration_batch_id"))[-5:] == [
        (8, first.id),
        (9, second.id),
        (10, second.id),
        (11, second.id),
        (12, second.id),
    ]
    before = _snapshot()

    with pytest.raises(CommandError, match="session_migration_batch_has_dependents"):
        _run("--rollback", str(first.id))
    assert _snapshot() == before

    _run("--rollback", str(second.id))
    assert StudyTask.objects.filter(path=path).count() == 8
    _run("--rollback", str(first.id))
    assert StudyPath.objects.count() == StudyTask.objects.count() == TaskEvent.objects.count() == 0


def test_the_event_log_stays_append_only_except_for_a_batchs_rollback() -> None:
    _generate(("alice",))
    ordinary = study_path_create(learner_id="alice", track="deep", config={"batch_size": 2}, seed=2)
    _run()
    own = TaskEvent.objects.filter(path=ordinary).first()
    migrated = TaskEvent.objects.filter(migration_batch__isnull=False).first()
    batch = migrated.migration_batch

    for attempt in (
        lambda: TaskEvent.objects.filter(id=own.id).delete(),
        lambda: TaskEvent.objects.filter(id=own.id).update(payload={"rewritten": True}),
        lambda: TaskEvent.objects.filter(id=own.id).update(migration_batch=batch),  # cannot be made deletable
        lambda: TaskEvent.objects.filter(id=migrated.id).update(payload={"rewritten": True}),
    ):
        with pytest.raises(IntegrityError, match="task events are append-only"), transaction.atomic():
            attempt()
    own.refresh_from_db()
    migrated_payload = TaskEvent.objects.get(id=migrated.id).payload
    assert own.migration_batch_id is None and "rewritten" not in own.payload and "rewritten" not in migrated_payload
