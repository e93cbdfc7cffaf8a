"""PostgreSQL plans of the study-path reads learners make most (CO-003-018): with many learners'
histories in the tables (and ANALYZE run), every query that `progress`, `dashboard`, `next` and
the task list and the export make — captured from the real requests — reads the study-task, evaluation and
review tables through an index, never a sequential scan. PostgreSQL run only."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from personalization.models import ReviewItem
from study_paths.models import StudyPath, StudyTask, TaskEvaluation
from study_paths.monitoring import learning_gauges_count
from submissions.models import Submission
from tests.study_paths.progress_history import publish_progress_track
from tracks.models import Module, Problem, Track

pytestmark = [pytest.mark.requires_services, pytest.mark.django_db]

LEARNERS = 600
TASKS_PER_PATH = 120
# The tables that grow with every learner's history. (The path table is left out: here every path
# is active and on one track, so a filter on either keeps every row and reading it all is right.)
SCANNED_TABLES = ("study_paths_studytask", "study_paths_taskevaluation", "personalization_reviewitem")
ANALYZED_TABLES = (*SCANNED_TABLES, "study_paths_studypath", "submissions_submission")
NOW = datetime.now(UTC)


def _histories() -> StudyPath:
    """LEARNERS paths of TASKS_PER_PATH tasks each, two thirds graded; returns alice's."""
    track = Track.objects.get(slug="plans")
    modules = list(Module.objects.filter(track=track).order_by("position"))
    problems = list(Problem.objects.filter(module__track=track).order_by("slug"))
    rng = random.Random(7)
    paths = StudyPath.objects.bulk_create(
        StudyPath(
            learner_id="alice" if n == 0 else f"learner-{n}",
            track=track,
            config={"attempts_per_task": 2},
            algorithm_version="v1",
            seed=n,
            catalogue_digest="0" * 64,
            created_at=NOW - timedelta(days=60),
        )
        for n in range(LEARNERS)
    )
    tasks, submissions, evaluations, reviews = [], [], [], []
    for path in paths:
        for position in range(1, TASKS_PER_PATH + 1):
            problem = problems[position % len(problems)]
            done = position <= TASKS_PER_PATH * 2 // 3
            at = NOW - timedelta(days=60) + timedelta(hours=position * 8)
            task = StudyTask(
                id=uuid.uuid4(),
                path=path,
                learner_id=path.learner_id,
                module=modules[position % len(modules)],
                problem=problem,
                problem_ref=str(problem.id),
                difficulty=problem.difficulty,
                topics=["arrays", "strings"][: 1 + position % 2],
                position=position,
                status=rng.choice(("passed", "passed", "failed")) if done else "pending",
                due_at=at,
                expires_at=at + timedelta(days=7),
                started_at=at if done else None,
                finished_at=at + timedelta(minutes=20) if done else None,
                created_at=NOW - timedelta(days=60),
            )
            tasks.append(task)
            if done:
                submission = Submission(
                    learner_id=path.learner_id,
                    origin="study_task",
                    origin_id=task.id,
                    problem_ref=task.problem_ref,
                    subject="coding",
                    payload={},
                    payload_sha256="0" * 64,
                    status=task.status,
                    finished_at=task.finished_at,
                )
                submissions.append(submission)
                evaluations.append(
                    TaskEvaluation(task=task, submission=submission, score=1.0 if task.status == "passed" else 0.5)
                )
        for problem in problems[:5]:
            reviews.append(
                ReviewItem(
                    learner_id=path.learner_id,
                    problem=problem,
                    reason="fail",
                    next_due_at=NOW + timedelta(days=rng.randint(-30, 30)),
                    retired_at=NOW if rng.random() < 0.5 else None,
                )
            )
    StudyTask.objects.bulk_create(tasks, batch_size=5000)
    Submission.objects.bulk_create(submissions, batch_size=5000)
    TaskEvaluation.objects.bulk_create(evaluations, batch_size=5000)
    ReviewItem.objects.bulk_create(reviews, batch_size=5000)
    with connection.cursor() as cursor:
        for table in ANALYZED_TABLES:
            cursor.execute(f"ANALYZE {table}")
    return paths[0]


def _plans(queries: list[dict]) -> list[tuple[str, str]]:
    found = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT") or "django_session" in sql:
                continue
            cursor.execute("EXPLAIN " + sql)
            found.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return found


def _sequential_scans(plans: list[tuple[str, str]]) -> list[str]:
    return [f"{sql}\n{plan}" for sql, plan in plans if any(f"Seq Scan on {table}" in plan for table in SCANNED_TABLES)]


def test_the_reads_learners_make_use_indexes(api) -> None:
    publish_progress_track("plans", per_module=8)
    path = _histories()
    urls = [
        f"/v1/study-paths/{path.id}/progress",
        f"/v1/study-paths/{path.id}/progress?compare=peers",
        "/v1/study-paths/dashboard",
        "/v1/study-tasks/next",
        "/v1/study-tasks?limit=20",
        "/v1/study-tasks?status=passed&limit=20",
        f"/v1/study-paths/{path.id}",
    ]
    plans = []
    for url in urls:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(url).status_code == 200, url
        plans += _plans(captured.captured_queries)

    for export_format in ("csv", "json"):  # streamed: its queries run while the body is read
        with CaptureQueriesContext(connection) as captured:
            response = api.get(f"/v1/study-tasks/export?format={export_format}")
            assert response.status_code == 200 and b"".join(response.streaming_content)
        plans += _plans(captured.captured_queries)

    with CaptureQueriesContext(connection) as captured:  # the periodic job behind the /metrics gauges
        learning_gauges_count()
    plans += _plans(captured.captured_queries)

    assert len(plans) >= 17
    assert _sequential_scans(plans) == []
