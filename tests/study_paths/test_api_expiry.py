"""Task expiry under time control: the service, its command and its beat task, in constant queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command

from co_project.celery import app
from study_paths.lifecycle import study_task_act, study_tasks_expire
from study_paths.models import StudyPath, StudyTask, TaskEvent
from study_paths.services import study_path_create
from tests.study_paths.factories import events_of, publish_ladder, publish_wide_track
from tests.study_paths.test_services import _pending

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_tasks_past_their_expiry_expire_with_an_event_and_paused_paths_wait(api) -> None:
    publish_ladder()
    with time_machine.travel(START, tick=False):
        path = study_path_create(
            learner_id="alice", track="ladder", config={"batch_size": 4, "daily_task_target": 1, "expire_after_days": 2}, seed=3
        )
        tasks = _pending(path)
        study_task_act(learner_id="alice", task_id=tasks[1].id, action="start")
        StudyTask.objects.filter(id=tasks[2].id).update(status="submitted")
        paused = study_path_create(learner_id="bob", track="ladder", config={"expire_after_days": 1}, seed=4)
        StudyPath.objects.filter(id=paused.id).update(status="paused")

    assert api.get("/v1/study-paths/active").json()["path"]["upcoming_tasks"][0]["status"] == "pending"  # now cached
    by_expiry = sorted(tasks, key=lambda t: t.expires_at)
    assert by_expiry[0].expires_at == START + timedelta(days=2)

    with time_machine.travel(START + timedelta(days=2), tick=False):
        assert study_tasks_expire() == 0  # not past it yet
    with time_machine.travel(START + timedelta(days=3, seconds=1), tick=False):
        expired = study_tasks_expire()
        now = datetime.now(UTC)

    statuses = dict(StudyTask.objects.filter(path=path).values_list("id", "status"))
    should = [t for t in tasks if t.expires_at < now and t.id != tasks[2].id]
    assert expired == len(should) >= 2
    assert {statuses[t.id] for t in should} == {"expired"}
    assert statuses[tasks[2].id] == "submitted"  # a verdict is on its way
    before = {tasks[0].id: "pending", tasks[1].id: "in_progress"}
    for task in should[:2]:
        _, event_type, payload = events_of(task)[-1]
        assert (event_type, payload) == (
            "expired",
            {"from": before[task.id], "to": "expired", "expires_at": task.expires_at.isoformat()},
        )
        assert StudyTask.objects.get(id=task.id).finished_at == now
    assert set(StudyTask.objects.filter(path=paused).values_list("status", flat=True)) == {"pending"}
    # The cached active path shows it at once.
    upcoming = api.get("/v1/study-paths/active").json()["path"]["upcoming_tasks"]
    assert {t["id"] for t in upcoming}.isdisjoint({str(t.id) for t in should})

    with time_machine.travel(START + timedelta(days=3, seconds=1), tick=False):
        assert study_tasks_expire() == 0  # nothing twice


EXPIRE_QUERIES = 6  # a savepoint, the locked batch, the update, the events' numbers, their insert, the release


@pytest.mark.parametrize("paths", [1, 6])
def test_expiry_costs_the_same_queries_however_many_tasks(django_assert_num_queries, paths: int) -> None:
    publish_wide_track("wide", modules=2, per_module=10)
    with time_machine.travel(START, tick=False):
        for index in range(paths):
            study_path_create(
                learner_id=f"learner-{index}", track="wide", config={"batch_size": 8, "expire_after_days": 1}, seed=index
            )

    with time_machine.travel(START + timedelta(days=30), tick=False), django_assert_num_queries(EXPIRE_QUERIES):
        assert study_tasks_expire() == 8 * paths
    assert TaskEvent.objects.filter(event_type="expired").count() == 8 * paths


def test_the_command_and_the_beat_task_run_the_same_service(capsys) -> None:
    publish_ladder()
    with time_machine.travel(START, tick=False):
        path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2, "expire_after_days": 1}, seed=1)
    assert settings.CELERY_BEAT_SCHEDULE["study-paths-expire-tasks"] == {
        "task": "study_paths.expire_tasks",
        "schedule": settings.CO_STUDY_TASK_EXPIRY_SECONDS,
    }
    app.loader.import_default_modules()
    assert "study_paths.expire_tasks" in app.tasks

    with time_machine.travel(START + timedelta(days=30), tick=False):
        call_command("expire_study_tasks")
    assert capsys.readouterr().out.strip() == "2 study task(s) expired."
    assert set(StudyTask.objects.filter(path=path).values_list("status", flat=True)) == {"expired"}

    with time_machine.travel(START + timedelta(days=30), tick=False):
        assert app.tasks["study_paths.expire_tasks"].apply().get() == 0
