"""Rules the database itself keeps for study paths, on SQLite and (in the PostgreSQL run) on
PostgreSQL: task events cannot be updated or deleted by any means (ORM, queryset, raw SQL),
the check and unique constraints hold, and the migrations go to zero and back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from study_paths.models import StudyPath, StudyPathStatus, StudyTask, TaskEvaluation, TaskEvent
from study_paths.services import study_path_create
from submissions.models import Submission
from tests.study_paths.factories import publish_ladder

APPEND_ONLY = "task events are append-only"


@pytest.fixture
def path() -> StudyPath:
    publish_ladder()
    return study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=11)


@pytest.fixture
def event(path: StudyPath) -> TaskEvent:
    return TaskEvent.objects.filter(path=path).order_by("task__position").first()


def _event_rows() -> list[tuple]:
    return list(TaskEvent.objects.order_by("id").values_list("id", "task_id", "sequence", "event_type", "payload", "created_at"))


def _rejected(action: Callable[[], object], operation: str) -> None:
    """The action fails in the database with the trigger's message; the savepoint keeps the
    test's transaction usable (PostgreSQL aborts a transaction after an error)."""
    with pytest.raises(IntegrityError, match=f"{APPEND_ONLY}: {operation} rejected"), transaction.atomic():
        action()


# --- immutability -------------------------------------------------------------------------


@pytest.mark.django_db
def test_task_events_cannot_be_updated_or_deleted_through_the_orm(event: TaskEvent) -> None:
    before = _event_rows()
    assert len(before) == 3

    event.payload = {"rewritten": True}
    _rejected(lambda: event.save(update_fields=["payload"]), "UPDATE")
    _rejected(lambda: TaskEvent.objects.filter(id=event.id).update(event_type="expired"), "UPDATE")
    _rejected(lambda: TaskEvent.objects.all().update(payload={}), "UPDATE")
    _rejected(event.delete, "DELETE")
    _rejected(TaskEvent.objects.all().delete, "DELETE")

    assert _event_rows() == before


@pytest.mark.django_db
def test_task_events_cannot_be_updated_or_deleted_with_raw_sql(event: TaskEvent) -> None:
    before = _event_rows()
    assert TaskEvent._meta.db_table == "study_paths_taskevent"

    def run(sql: str, params: list[object]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    _rejected(lambda: run("UPDATE study_paths_taskevent SET event_type = %s WHERE id = %s", ["expired", event.id.hex]), "UPDATE")
    _rejected(lambda: run("UPDATE study_paths_taskevent SET sequence = sequence + %s", [10]), "UPDATE")
    _rejected(lambda: run("DELETE FROM study_paths_taskevent WHERE id = %s", [event.id.hex]), "DELETE")
    _rejected(lambda: run("DELETE FROM study_paths_taskevent WHERE sequence >= %s", [1]), "DELETE")

    assert _event_rows() == before


@pytest.mark.django_db
def test_task_events_can_still_be_appended(path: StudyPath) -> None:
    task = StudyTask.objects.filter(path=path).order_by("position").first()
    TaskEvent.objects.create(task=task, path=path, sequence=2, event_type="started", payload={})
    assert list(TaskEvent.objects.filter(task=task).order_by("sequence").values_list("sequence", "event_type")) == [
        (1, "created"),
        (2, "started"),
    ]


@pytest.mark.django_db
def test_deleting_a_path_cannot_take_its_events_with_it(path: StudyPath) -> None:
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError), transaction.atomic():
        path.delete()
    assert StudyPath.objects.filter(id=path.id).exists()
    assert TaskEvent.objects.filter(path=path).count() == 3


def _triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'study_paths_taskevent'::regclass AND NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'study_paths_taskevent'")
        return {row[0] for row in cursor.fetchall()}


EXPECTED_TRIGGERS = {
    "postgresql": {"task_event_no_update_or_delete"},
    "sqlite": {"task_event_no_update", "task_event_no_delete"},
}


@pytest.mark.django_db
def test_task_event_triggers_exist() -> None:
    """Also the guard against a later migration that rebuilds the table on SQLite (which drops its triggers)."""
    assert _triggers() == EXPECTED_TRIGGERS[connection.vendor]


# --- constraints --------------------------------------------------------------------------


def _violates(name: str, action: Callable[[], object]) -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        action()
    # SQLite names CHECK constraints in its message; PostgreSQL names every constraint.
    if connection.vendor == "postgresql" or "CHECK" in str(raised.value):
        assert name in str(raised.value)


@pytest.mark.django_db
def test_at_most_one_active_path_per_learner_and_track(path: StudyPath) -> None:
    def another(**overrides: object) -> StudyPath:
        fields = {
            "learner_id": "alice",
            "track_id": path.track_id,
            "algorithm_version": "v1",
            "seed": 1,
            "catalogue_digest": "0" * 64,
            **overrides,
        }
        return StudyPath.objects.create(**fields)

    _violates("study_path_one_active_per_track", another)
    # Paused, archived and completed paths do not count; nor do other learners' paths.
    another(status=StudyPathStatus.PAUSED)
    another(status=StudyPathStatus.ARCHIVED)
    another(status=StudyPathStatus.COMPLETED, completed_at=timezone.now())
    another(learner_id="bob")
    assert StudyPath.objects.filter(learner_id="alice", status="active").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"difficulty": 0}, "study_task_difficulty_1_to_5"),
        ({"difficulty": 6}, "study_task_difficulty_1_to_5"),
        ({"attempt_count": -1}, "study_task_attempts_non_negative"),
        ({"hint_count": -1}, "study_task_hints_non_negative"),
        ({"status": "done"}, "study_task_status_valid"),
        ({"kind": "quiz"}, "study_task_kind_valid"),
        ({"position": 0}, "study_task_position_from_1"),
        ({"position": 2}, "study_task_position_unique"),
    ],
)
def test_study_task_constraints(path: StudyPath, changes: dict, constraint: str) -> None:
    task = StudyTask.objects.filter(path=path).order_by("position").first()
    before = StudyTask.objects.filter(id=task.id).values().get()
    _violates(constraint, lambda: StudyTask.objects.filter(id=task.id).update(**changes))
    assert StudyTask.objects.filter(id=task.id).values().get() == before


@pytest.mark.django_db
def test_study_path_constraints(path: StudyPath) -> None:
    _violates("study_path_status_valid", lambda: StudyPath.objects.filter(id=path.id).update(status="done"))
    _violates("study_path_seed_non_negative", lambda: StudyPath.objects.filter(id=path.id).update(seed=-1))
    _violates("study_path_completed_has_time", lambda: StudyPath.objects.filter(id=path.id).update(status="completed"))


@pytest.mark.django_db
def test_task_event_sequence_is_unique_per_task(event: TaskEvent) -> None:
    _violates(
        "task_event_sequence_unique",
        lambda: TaskEvent.objects.create(task_id=event.task_id, path_id=event.path_id, sequence=1, event_type="started"),
    )
    _violates(
        "task_event_type_valid",
        lambda: TaskEvent.objects.create(task_id=event.task_id, path_id=event.path_id, sequence=5, event_type="edited"),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"score": 1.01}, "task_evaluation_score_0_to_1"),
        ({"score": -0.01}, "task_evaluation_score_0_to_1"),
        ({"runtime_ms": -1}, "task_evaluation_runtime_non_negative"),
        ({"peak_memory_kb": -1}, "task_evaluation_memory_non_negative"),
        ({"visible_passed": 4, "visible_total": 3}, "task_evaluation_visible_counts"),
        ({"hidden_passed": -1}, "task_evaluation_hidden_counts"),
    ],
)
def test_task_evaluation_constraints(path: StudyPath, values: dict, constraint: str) -> None:
    task = StudyTask.objects.filter(path=path).order_by("position").first()
    submission = Submission.objects.create(
        learner_id="alice",
        problem_id=task.problem_id,
        problem_ref=task.problem_ref,
        subject="coding",
        payload={},
        payload_sha256="0" * 64,
    )
    _violates(constraint, lambda: TaskEvaluation.objects.create(task=task, submission=submission, **{"score": 0.5, **values}))
    TaskEvaluation.objects.create(task=task, submission=submission, score=1.0, visible_passed=3, visible_total=3)
    assert TaskEvaluation.objects.filter(task=task).count() == 1


# --- migrations ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_study_path_migrations_are_reversible() -> None:
    call_command("migrate", "study_paths", "zero", verbosity=0)
    tables = set(connection.introspection.table_names())
    assert not {t for t in tables if t.startswith("study_paths_")}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = 'study_paths_task_event_immutable'")
            assert cursor.fetchone()[0] == 0

    call_command("migrate", "study_paths", "0001", verbosity=0)
    assert _triggers() == set()
    call_command("migrate", "study_paths", verbosity=0)

    assert {"study_paths_studypath", "study_paths_studytask", "study_paths_taskevent", "study_paths_taskevaluation"} <= set(
        connection.introspection.table_names()
    )
    assert _triggers() == EXPECTED_TRIGGERS[connection.vendor]


@pytest.mark.django_db(transaction=True)
def test_triggers_work_again_after_migrating_back() -> None:
    call_command("migrate", "study_paths", "0001", verbosity=0)
    call_command("migrate", "study_paths", verbosity=0)
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 1}, seed=3)
    event = TaskEvent.objects.get(path=path)
    _rejected(lambda: TaskEvent.objects.filter(id=event.id).update(payload={}), "UPDATE")
    # Leave no event behind: the next test's flush deletes rows, which the trigger refuses on
    # SQLite; dropping the tables (as migrating to zero does) is not a DELETE.
    call_command("migrate", "study_paths", "zero", verbosity=0)
    call_command("migrate", "study_paths", verbosity=0)
    assert not TaskEvent.objects.exists()
