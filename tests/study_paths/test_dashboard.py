"""`GET /v1/study-paths/dashboard` through the HTTP API: every path of the learner with exact
figures from a simulated history, due today, done this week, mastery by topic and the review
load of the next 7 days, a constant query count, the cache and its invalidation, and only the
learner's own rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from personalization.models import Mastery, ReviewItem
from study_paths.models import StudyPath, StudyTask
from study_paths.services import study_path_create
from tests.study_paths.progress_history import History, Step, planned, publish_progress_track, simulate
from tests.study_paths.test_api import _envelope
from tracks.models import Problem

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday: the week started on Monday 2 March
TODAY = NOW.date()
WEEK_START = date(2026, 3, 2)


@pytest.fixture
def clock() -> Iterator[None]:
    """The clock at NOW, ticking: the catalogue version (a time) differs from one test to the next."""
    with time_machine.travel(NOW, tick=True):
        yield


def _day(days_ago: int, hour: int = 9) -> datetime:
    return (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=0)


def _path(learner_id: str, track: str, seed: int = 3) -> History:
    path = study_path_create(learner_id=learner_id, track=track, config={"batch_size": 5}, seed=seed)
    return History(learner_id=learner_id, path=path)


def _expected_path(path: StudyPath) -> dict:
    path.refresh_from_db()
    tasks = planned(path)
    tomorrow = datetime(2026, 3, 5, tzinfo=UTC)
    week = datetime(2026, 3, 2, tzinfo=UTC)
    completed = [t for t in tasks if t.status in ("passed", "failed")]
    return {
        "id": str(path.id),
        "track": {"id": str(path.track_id), "slug": path.track.slug, "title": path.track.title},
        "status": path.status,
        "tasks": {"total": len(tasks), "completed": len(completed), "passed": sum(t.status == "passed" for t in tasks)},
        "due_today": sum(
            t.status in ("pending", "in_progress", "submitted") and t.due_at is not None and t.due_at < tomorrow for t in tasks
        )
        if path.status == "active"
        else 0,
        "done_this_week": sum(t.finished_at >= week for t in completed),
    }


def _review(learner_id: str, problem: Problem, due: datetime, *, retired: bool = False) -> None:
    ReviewItem.objects.create(
        learner_id=learner_id, problem=problem, reason="fail", next_due_at=due, retired_at=NOW if retired else None
    )


def _learner_model() -> dict:
    """Mastery rows and review items of alice (and bob's, which alice must not see)."""
    for key_type, key_id, score in (("topic", "arrays", 72), ("topic", "strings", 40), ("outcome", "outcome-0", 90)):
        Mastery.objects.create(learner_id="alice", key_type=key_type, key_id=key_id, score=score, ema=score)
    Mastery.objects.create(learner_id="bob", key_type="topic", key_id="graphs", score=10, ema=10)
    problems = list(Problem.objects.order_by("slug")[:8])
    _review("alice", problems[0], _day(3))  # overdue: counted today
    _review("alice", problems[1], NOW.replace(hour=23))  # today
    _review("alice", problems[2], NOW + timedelta(days=1))
    _review("alice", problems[3], NOW + timedelta(days=6))  # the 7th day
    _review("alice", problems[4], NOW + timedelta(days=7))  # beyond the window
    _review("alice", problems[5], NOW + timedelta(days=1), retired=True)  # retired: not due
    _review("bob", problems[6], NOW)
    return {
        "mastery_by_topic": {"arrays": 72, "strings": 40},
        "review_load": [
            {"day": (TODAY + timedelta(days=offset)).isoformat(), "reviews": reviews}
            for offset, reviews in enumerate((2, 1, 0, 0, 0, 0, 1))
        ],
    }


def _dashboard(client) -> dict:
    response = client.get("/v1/study-paths/dashboard")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_dashboard_figures_are_exact(clock, api) -> None:
    publish_progress_track("one")
    publish_progress_track("two")
    one = simulate(
        _path("alice", "one"),
        [Step((True,), _day(9)), Step((False, False), _day(3)), Step((True,), _day(2)), Step((False, True), _day(0))],
    )
    two = simulate(_path("alice", "two"), [Step((True,), _day(1)), Step((), _day(0))])
    assert api.patch(f"/v1/study-paths/{two.path.id}", {"status": "paused"}, format="json").status_code == 200
    simulate(_path("bob", "one"), [Step((True,), _day(0))])
    learner_model = _learner_model()

    body = _dashboard(api)

    paths = [_expected_path(two.path), _expected_path(one.path)]  # newest first
    assert body == {
        "day": TODAY.isoformat(),
        "week_start": WEEK_START.isoformat(),
        "due_today": sum(p["due_today"] for p in paths),
        "done_this_week": sum(p["done_this_week"] for p in paths),
        "paths": paths,
        **learner_model,
    }
    # By hand: two tasks of path one (Monday's and today's; Sunday's was last week) and one of path
    # two were completed since Monday.
    assert body["done_this_week"] == 3
    assert [p["tasks"]["completed"] for p in body["paths"]] == [1, 4]
    assert body["paths"][0]["due_today"] == 0  # paused
    assert body["due_today"] == body["paths"][1]["due_today"] > 0


def test_a_learner_without_paths_gets_an_empty_dashboard(clock, api) -> None:
    assert _dashboard(api) == {
        "day": TODAY.isoformat(),
        "week_start": WEEK_START.isoformat(),
        "due_today": 0,
        "done_this_week": 0,
        "paths": [],
        "mastery_by_topic": {},
        "review_load": [{"day": (TODAY + timedelta(days=n)).isoformat(), "reviews": 0} for n in range(7)],
    }


def test_the_query_count_is_the_same_at_any_history_size(clock, api, learner_client, django_assert_num_queries) -> None:
    publish_progress_track("one", per_module=12)
    publish_progress_track("two")
    simulate(_path("alice", "one"), [Step((True,), _day(2))])
    for track in ("one", "two"):
        simulate(_path("bob", track), [Step((True, False)[: 1 + n % 2][::-1], _day(n % 10), 5 + n) for n in range(14)])
    bob = learner_client("bob")

    for client in (api, bob):
        # Paths, task counts per path, mastery, review load; on a hit the learner-model half only.
        with django_assert_num_queries(4):
            first = _dashboard(client)
        with django_assert_num_queries(2):
            assert _dashboard(client) == first
    assert StudyTask.objects.filter(learner_id="bob", status__in=("passed", "failed")).count() == 28


def test_every_verdict_shows_at_once_and_the_learner_model_is_fresh(clock, api) -> None:
    publish_progress_track("one")
    one = simulate(_path("alice", "one"), [Step((True,), _day(1))])
    before = _dashboard(api)

    simulate(one, [Step((True,), _day(0))])
    after = _dashboard(api)
    assert after["done_this_week"] == before["done_this_week"] + 1
    assert after["paths"] == [_expected_path(one.path)]

    # A session's verdict moves mastery without a study-task event: read fresh, never stale.
    Mastery.objects.create(learner_id="alice", key_type="topic", key_id="arrays", score=55, ema=55.0)
    assert _dashboard(api)["mastery_by_topic"] == {"arrays": 55}


def test_the_dashboard_route_is_not_a_path_id_and_needs_a_token(clock, api) -> None:
    _envelope(APIClient().get("/v1/study-paths/dashboard"), 401, "not_authenticated")
    _envelope(api.get("/v1/study-paths/dashboards"), 404, "not_found")
