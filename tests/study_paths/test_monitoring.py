"""Study-path metrics on `GET /metrics`: each task verdict counted once by kind and outcome when it
commits (a replanning's dropped tasks are not verdicts), the open-task and review-backlog gauges
counted by the periodic job and reported by any process's scrape from the cache, and the export
duration histogram's helper."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from co_project import metrics
from personalization.models import ReviewItem
from study_paths import monitoring, tasks
from study_paths.lifecycle import study_task_act, study_tasks_expire
from study_paths.models import StudyTask
from study_paths.services import study_path_create
from tests.study_paths.progress_history import History, Step, publish_progress_track, simulate
from tracks.models import Problem

pytestmark = pytest.mark.django_db

TOKEN = "scrape-secret-progress-0123"
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture(autouse=True)
def _token(settings) -> None:
    settings.CO_METRICS_TOKEN = TOKEN


def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def completions(before: dict, after: dict) -> dict[tuple[str, str], float]:
    moved = {}
    for (name, labels), value in after.items():
        if name == "co_study_task_completions_total" and value != before.get((name, labels), 0.0):
            found = dict(labels)
            moved[(found["kind"], found["outcome"])] = value - before.get((name, labels), 0.0)
    return moved


def test_each_verdict_counts_once_when_it_commits(clock, django_capture_on_commit_callbacks) -> None:
    publish_progress_track()
    history = History("alice", study_path_create(learner_id="alice", track="progress", config={"batch_size": 4}, seed=5))
    before = scrape()
    with django_capture_on_commit_callbacks(execute=False) as uncommitted:
        simulate(history, [Step((True,), NOW - timedelta(hours=3))])
    assert completions(before, scrape()) == {}  # not committed yet: nothing counted
    for callback in uncommitted:
        callback()
    with django_capture_on_commit_callbacks(execute=True):
        # A failed task (a replanning then drops tasks: those are no verdicts), and a skip.
        simulate(history, [Step((False, False), NOW - timedelta(hours=2)), Step((), NOW - timedelta(hours=1))])
    verdicts = StudyTask.objects.filter(path=history.path, status__in=("passed", "failed", "skipped")).exclude(
        metadata__has_key="replanned"
    )
    assert sorted(completions(before, scrape()).items()) == sorted(((t.kind, t.status), 1.0) for t in verdicts)
    assert sorted(t.status for t in verdicts) == ["failed", "passed", "skipped"]
    assert StudyTask.objects.filter(path=history.path, metadata__has_key="replanned").exists()

    before = scrape()
    pending = list(StudyTask.objects.filter(path=history.path, status="pending"))
    with django_capture_on_commit_callbacks(execute=True):
        assert study_tasks_expire(now=NOW + timedelta(days=60)) == len(pending)
    expected = Counter((task.kind, "expired") for task in pending)
    assert completions(before, scrape()) == {key: float(count) for key, count in expected.items()}


def test_the_gauges_come_from_the_periodic_job_through_the_cache(clock) -> None:
    publish_progress_track()
    active = study_path_create(learner_id="alice", track="progress", config={"batch_size": 4}, seed=5)
    paused = study_path_create(learner_id="bob", track="progress", config={"batch_size": 3}, seed=6)
    paused.status = "paused"
    paused.save(update_fields=["status"])
    first = StudyTask.objects.filter(path=active).order_by("position").first()
    study_task_act(learner_id="alice", task_id=first.id, action="start")
    problems = list(Problem.objects.order_by("slug")[:3])
    ReviewItem.objects.create(learner_id="alice", problem=problems[0], reason="fail", next_due_at=NOW - timedelta(days=1))
    ReviewItem.objects.create(learner_id="bob", problem=problems[1], reason="fail", next_due_at=NOW - timedelta(hours=1))
    ReviewItem.objects.create(learner_id="bob", problem=problems[2], reason="fail", next_due_at=NOW + timedelta(days=1))
    ReviewItem.objects.create(
        learner_id="carol", problem=problems[0], reason="fail", next_due_at=NOW - timedelta(days=1), retired_at=NOW
    )

    tasks.learning_gauges_refresh.apply().get()
    # Another process: its gauges hold nothing of its own; the scrape sets them from the cache.
    metrics.learning_gauges_set(tasks_by_status={"pending": 0, "in_progress": 0, "submitted": 0}, review_backlog=0, counted_at=0)
    samples = scrape()

    open_tasks = StudyTask.objects.filter(path=active)
    gauged = {status: samples[("co_study_tasks", frozenset({"status": status}.items()))] for status in monitoring.GAUGED_STATUSES}
    assert gauged == {
        "pending": open_tasks.filter(status="pending").count(),
        "in_progress": 1,
        "submitted": 0,
    }
    assert samples[("co_review_backlog", frozenset())] == 2
    assert samples[("co_learning_gauges_updated_timestamp_seconds", frozenset())] == cache.get(monitoring.CACHE_KEY)["counted_at"]


def test_a_scrape_before_the_first_count_answers(clock) -> None:
    assert ("co_review_backlog", frozenset()) in scrape()


def test_the_job_is_on_the_beat_schedule(settings) -> None:
    entries = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["study_paths.learning_gauges_refresh"] == settings.CO_LEARNING_GAUGES_SECONDS == 60.0


def test_the_export_duration_helper_observes_by_format() -> None:
    before = scrape()
    metrics.export_duration_observe(export_format="csv", seconds=1.5)
    metrics.export_duration_observe(export_format="csv", seconds=-1)  # a clock step back counts as 0
    after = scrape()
    key = ("co_export_duration_seconds_count", frozenset({"format": "csv"}.items()))
    total = ("co_export_duration_seconds_sum", frozenset({"format": "csv"}.items()))
    assert after[key] - before.get(key, 0) == 2
    assert after[total] - before.get(total, 0) == 1.5


def test_in_multiprocess_mode_the_latest_count_wins_over_an_older_process(tmp_path: Path) -> None:
    """Two processes of a host set the gauges one after the other (the job in a worker, a web
    scrape from the cache): the scrape reports the later values, not a sum or the larger one."""
    code = """
        import os, sys, time
        from co_project import metrics
        metrics.learning_gauges_set(
            tasks_by_status={{"pending": {pending}, "in_progress": 0, "submitted": 0}}, review_backlog={backlog}, counted_at={at}
        )
        time.sleep(0.01)
    """
    env = {**os.environ, "CO_METRICS_DIR": str(tmp_path), "CO_ENV": "test"}
    for pending, backlog, at in ((50, 9, 100.0), (20, 3, 160.0)):
        source = textwrap.dedent(code.format(pending=pending, backlog=backlog, at=at))
        subprocess.run([sys.executable, "-c", source], env=env, check=True, timeout=60)
    scrape_code = "from co_project import metrics; print(metrics.metrics_exposition()[0].decode())"
    text = subprocess.run(
        [sys.executable, "-c", scrape_code], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("co_study_tasks", frozenset({"status": "pending"}.items()))] == 20
    assert samples[("co_review_backlog", frozenset())] == 3
    assert samples[("co_learning_gauges_updated_timestamp_seconds", frozenset())] == 160.0
