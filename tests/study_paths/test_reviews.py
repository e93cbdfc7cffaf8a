"""Review tasks from the review queue (study_paths/reviews.py, seeds/004 CO-003-012): due items
become `review` tasks on the learner's active path (beat task and command), at most one open
task per problem, within `max_reviews_per_day` (a backlog spreads over the following days); a
review task's verdict goes through the one pipeline and promotes or resets the item, logged."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from personalization.models import ReviewItem, ReviewLog
from personalization.services import GradedAttempt, attempt_record
from study_paths import tasks as study_path_tasks
from study_paths.models import StudyPath, StudyTask, TaskStatus
from study_paths.planner import Candidate, DoneTask, DueReview, LearnerStart, PlanConfig, plan_tail_v1
from study_paths.reviews import review_tasks_create
from tests.personalization.factories import FAIL, PASS, publish_ladder
from tests.study_paths.factories import publish_wide_track
from tracks.models import Problem

# Real commits: a submission's evaluation is queued on commit, as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_task_events_cleared")]


START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OPEN = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED)
CODE = {"language": "python", "code": "def solve(x):\n    return x\n"}


def miss(slug: str, at: datetime, learner: str = "alice") -> None:
    """A failed attempt (as any front door records it): the problem enters the review queue."""
    attempt_record(
        attempt=GradedAttempt(
            learner_id=learner, problem_id=Problem.objects.get(slug=slug).id, passed=False, tests_total=4, at=at
        )
    )


def create_path(client, track: str = "ladder", **config) -> dict:
    response = client.post("/v1/study-paths", {"track": track, "config": config}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def review_tasks(client, **filters) -> list[dict]:
    response = client.get("/v1/study-tasks", {"kind": "review", **filters})
    assert response.status_code == 200, response.content
    return response.json()["items"]


def queue_tasks(client, **filters) -> list[dict]:
    return [t for t in review_tasks(client, **filters) if (t["review_source"] or {}).get("source") == "review_queue"]


def test_a_due_review_becomes_one_review_task_whose_verdict_promotes_the_item(learner_client, fake_grader, capsys) -> None:
    publish_ladder()
    a3 = Problem.objects.get(slug="a3")
    with time_machine.travel(START, tick=False) as clock:
        alice = learner_client("alice", ttl=90 * 86400)
        miss("a3", START)
        create_path(alice, batch_size=4, daily_task_target=2)
        call_command("create_review_tasks")
        assert capsys.readouterr().out.strip() == "0 review task(s) created."  # not due yet
        assert queue_tasks(alice) == []

        clock.shift(DAY + timedelta(minutes=1))
        item = ReviewItem.objects.get(learner_id="alice", problem=a3)
        call_command("create_review_tasks")
        assert capsys.readouterr().out.strip() == "1 review task(s) created."
        [task] = queue_tasks(alice)
        due = (START + DAY).isoformat()
        assert (task["problem"]["slug"], task["status"], task["difficulty"]) == ("a3", "pending", 2)
        assert task["review_source"] == {
            "source": "review_queue",
            "key": f"{a3.id}@{due}",
            "review_item_id": item.id,
            "reason": "fail",
            "bucket": 0,
            "due_at": due,
        }

        # Again (the beat every few minutes): nothing new, still one open task for the problem.
        assert review_tasks_create() == 0
        assert StudyTask.objects.filter(learner_id="alice", problem=a3, status__in=OPEN).count() == 1

        # The learner does the review: started, ten minutes, passed (a Good review).
        assert alice.patch(f"/v1/study-tasks/{task['id']}", {"action": "start"}, format="json").status_code == 200
        clock.shift(timedelta(minutes=10))
        fake_grader.answer = dict(PASS)
        response = alice.post(f"/v1/study-tasks/{task['id']}/submit", CODE, format="json")
        assert response.status_code == 200 and response.json()["status"] == "passed", response.content
        now = START + DAY + timedelta(minutes=11)
        assert StudyTask.objects.get(id=task["id"]).status == TaskStatus.PASSED
        item.refresh_from_db()
        assert (item.bucket, item.last_reviewed_at, item.next_due_at, item.retired_at) == (1, now, now + 3 * DAY, None)
        log = ReviewLog.objects.filter(review_item=item).latest("reviewed_at")
        assert (log.reviewed_at, log.rating, log.state, log.duration_ms, log.scheduler) == (now, 3, 2, 600_000, "buckets")
        assert log.predicted_recall == 0.9 ** ((now - START).total_seconds() / 86400)

        # Not due again for three days; then one new review task, for the item's next coming-due.
        assert review_tasks_create() == 0
        clock.shift(3 * DAY)
        assert review_tasks_create() == 1
        [again] = queue_tasks(alice, status="pending")
        assert again["review_source"]["key"] == f"{a3.id}@{(now + 3 * DAY).isoformat()}"
        assert again["review_source"]["bucket"] == 1


def test_a_failed_review_task_resets_its_item(learner_client, fake_grader) -> None:
    publish_ladder()
    with time_machine.travel(START, tick=False) as clock:
        alice = learner_client("alice", ttl=90 * 86400)
        miss("a3", START)
        ReviewItem.objects.filter(learner_id="alice").update(bucket=2, next_due_at=START)
        create_path(alice, batch_size=4, attempts_per_task=1)
        [task] = queue_tasks(alice)  # due at creation: planned with the first batch
        clock.shift(timedelta(minutes=5))
        fake_grader.answer = dict(FAIL)
        response = alice.post(f"/v1/study-tasks/{task['id']}/submit", CODE, format="json")
        assert response.status_code == 200 and response.json()["status"] == "failed", response.content
        now = START + timedelta(minutes=5)
        assert StudyTask.objects.get(id=task["id"]).status == TaskStatus.FAILED
        item = ReviewItem.objects.get(learner_id="alice")
        assert (item.bucket, item.reason, item.next_due_at, item.last_reviewed_at) == (0, "fail", now + DAY, now)
        assert list(ReviewLog.objects.filter(review_item=item).order_by("reviewed_at").values_list("rating", "state")) == [
            (1, 0),
            (1, 2),
        ]


def test_a_backlog_is_spread_over_the_following_days_within_the_daily_cap(learner_client) -> None:
    publish_wide_track("wide", modules=2, per_module=10)
    solved_with_hints = ["wide-m0-p0", "wide-m0-p1", "wide-m0-p3", "wide-m0-p4", "wide-m0-p6"]  # difficulties 1–2
    with time_machine.travel(START, tick=False) as clock:
        alice = learner_client("alice", ttl=90 * 86400)
        for slug in solved_with_hints:  # solved, but only with heavy hints: queued for review
            attempt_record(
                attempt=GradedAttempt(
                    learner_id="alice", problem_id=Problem.objects.get(slug=slug).id, passed=True, max_hint_level=3, at=START
                )
            )
        response = alice.post(
            "/v1/study-paths",
            {"track": "wide", "config": {"batch_size": 10, "daily_task_target": 3, "max_reviews_per_day": 2}},
            format="json",
        )
        assert response.status_code == 201, response.content
        clock.shift(2 * DAY)
        assert review_tasks_create() == 5
        now = START + 2 * DAY
        reviews = queue_tasks(alice)
        assert sorted((datetime.fromisoformat(t["due_at"]) - now).days for t in reviews) == [0, 0, 1, 1, 2]
        assert sorted(t["problem"]["slug"] for t in reviews) == solved_with_hints
        assert {t["review_source"]["reason"] for t in reviews} == {"heavy-hint"}
        # Each day of the plan: at most two reviews, and the day's other tasks are new practice.
        pending = alice.get("/v1/study-tasks", {"status": "pending"}).json()["items"]
        per_day = Counter((datetime.fromisoformat(t["due_at"]) - now).days for t in pending if t["kind"] == "review")
        assert max(per_day.values()) == 2


def test_paused_paths_get_no_review_tasks(learner_client) -> None:
    publish_ladder()
    with time_machine.travel(START, tick=False) as clock:
        alice = learner_client("alice", ttl=90 * 86400)
        miss("a3", START)
        path = create_path(alice, batch_size=4)
        assert alice.patch(f"/v1/study-paths/{path['id']}", {"status": "paused"}, format="json").status_code == 200
        before = list(StudyTask.objects.filter(path_id=path["id"]).values_list("id", "status", "kind"))
        clock.shift(2 * DAY)
        assert review_tasks_create() == 0
        assert list(StudyTask.objects.filter(path_id=path["id"]).values_list("id", "status", "kind")) == before


def test_the_beat_task_runs_the_same_service(learner_client, settings) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["study-paths-review-tasks"]["task"] == "study_paths.review_tasks_create"
    assert study_path_tasks.review_tasks_create.name == "study_paths.review_tasks_create"
    publish_ladder()
    with time_machine.travel(START, tick=False) as clock:
        alice = learner_client("alice", ttl=90 * 86400)
        miss("a3", START)
        create_path(alice, batch_size=4)
        clock.shift(2 * DAY)
        assert study_path_tasks.review_tasks_create() == 1
        assert len(queue_tasks(alice)) == 1


# The learners with due reviews and their active paths; per path: the path locked, the
# candidates of each module (two here), the path's tasks, the learner's due reviews and topic
# mastery (the planner's inputs) — nothing written when nothing is new, whatever the history.
# The track outline comes from the process memo (the run before read it).
REVIEW_RUN_QUERIES = {"sqlite": 8, "postgresql": 8}


@pytest.mark.parametrize("skips", [0, 5])
def test_a_run_with_nothing_new_costs_the_same_queries_however_long_the_path(
    learner_client, django_assert_num_queries, skips
) -> None:
    publish_wide_track("wide", modules=2, per_module=10)
    with time_machine.travel(START, tick=False) as clock:
        alice = learner_client("alice", ttl=90 * 86400)
        attempt_record(
            attempt=GradedAttempt(
                learner_id="alice", problem_id=Problem.objects.get(slug="wide-m0-p0").id, passed=True, max_hint_level=3, at=START
            )
        )
        path = create_path(alice, track="wide", batch_size=4)
        for _ in range(skips):
            task = StudyTask.objects.filter(path_id=path["id"], status=TaskStatus.PENDING).order_by("position").first()
            assert alice.patch(f"/v1/study-tasks/{task.id}", {"action": "skip"}, format="json").status_code == 200
        clock.shift(2 * DAY)
        assert review_tasks_create() == 1
        with django_assert_num_queries(REVIEW_RUN_QUERIES[connection.vendor]):
            assert review_tasks_create() == 0


# --- the cap's config key ------------------------------------------------------------------------


def test_max_reviews_per_day_is_the_config_key_and_review_cap_per_day_its_old_name(api) -> None:
    publish_ladder()
    body = create_path(api, review_cap_per_day=1)
    assert body["config"]["max_reviews_per_day"] == 1 and "review_cap_per_day" not in body["config"]

    # A path stored under the old name: a new value under the new name wins.
    StudyPath.objects.filter(id=body["id"]).update(
        config={**{k: v for k, v in body["config"].items() if k != "max_reviews_per_day"}, "review_cap_per_day": 1}
    )
    response = api.patch(f"/v1/study-paths/{body['id']}", {"config": {"max_reviews_per_day": 3}}, format="json")
    assert response.status_code == 200, response.content
    stored = StudyPath.objects.get(id=body["id"]).config
    assert stored["max_reviews_per_day"] == 3 and "review_cap_per_day" not in stored


def test_both_names_with_different_values_are_refused_and_nothing_is_created(api) -> None:
    publish_ladder()
    response = api.post(
        "/v1/study-paths",
        {"track": "ladder", "config": {"review_cap_per_day": 1, "max_reviews_per_day": 2}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "study_path_config_invalid"
    assert StudyPath.objects.count() == 0


# --- the planner's part ----------------------------------------------------------------------------

CANDIDATES = [Candidate(ref=f"p{i}", problem_id=None, module="m", difficulty=1, topics=(f"t{i}",)) for i in range(6)]


def _reviews(*refs: str) -> list[DueReview]:
    return [DueReview(ref=ref, reason="fail", bucket=0, due_at=f"2026-11-0{i + 1}T09:00:00+00:00") for i, ref in enumerate(refs)]


def test_reviews_already_done_today_count_against_todays_cap() -> None:
    config = PlanConfig(modules=("m",), daily_target=3, review_cap_per_day=2, batch_size=6)
    learner = LearnerStart(attempted=frozenset({"p0", "p1", "p2"}))
    plan = plan_tail_v1(candidates=CANDIDATES, learner=learner, config=config, seed=1, due_reviews=_reviews("p0", "p1"))
    assert [(t.ref, t.day) for t in plan.tasks if t.kind == "review"] == [("p0", 0), ("p1", 0)]
    plan = plan_tail_v1(
        candidates=CANDIDATES, learner=learner, config=config, seed=1, due_reviews=_reviews("p0", "p1"), reviews_today=2
    )
    assert [(t.ref, t.day) for t in plan.tasks if t.kind == "review"] == [("p0", 1), ("p1", 1)]


def test_a_problem_with_an_open_task_gets_no_second_review_task() -> None:
    config = PlanConfig(modules=("m",), daily_target=3, review_cap_per_day=2, batch_size=4)
    history = [DoneTask(ref="p0", module="m", difficulty=1, topics=("t0",), kind="practice", outcome="open")]
    plan = plan_tail_v1(
        candidates=CANDIDATES, learner=LearnerStart(), config=config, seed=1, history=history, due_reviews=_reviews("p0", "p1")
    )
    assert [t.ref for t in plan.tasks if t.kind == "review"] == ["p1"]
    assert "p0" not in [t.ref for t in plan.tasks]
