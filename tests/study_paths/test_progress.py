"""`GET /v1/study-paths/{id}/progress` through the HTTP API: exact figures against a simulated
history computed independently, a constant query count at any history size, the cache and its
invalidation by every verdict and change, ownership and the error envelope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from study_paths.models import StudyTask
from study_paths.services import study_path_create
from tests.study_paths.progress_history import History, Step, expected_progress, publish_progress_track, simulate
from tests.study_paths.test_api import _envelope

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def clock() -> Iterator[None]:
    """The clock at NOW, ticking: the catalogue version (a time) differs from one test to the next."""
    with time_machine.travel(NOW, tick=True):
        yield


def _history(learner_id: str = "alice", **config: object) -> History:
    path = study_path_create(learner_id=learner_id, track="progress", config={"batch_size": 6, **config}, seed=11)
    return History(learner_id=learner_id, path=path)


def _day(days_ago: int, hour: int = 9) -> datetime:
    return (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=0)


# Passes on days 9, 8, 7 (a 3-day run), a fail only on day 5, passes on days 2, 1, 0 (today):
# the current streak is 3, the longest 3; two attempts on some tasks, a skip in between.
STEPS = [
    Step((True,), _day(9), 12),
    Step((False, True), _day(8), 30),
    Step((True,), _day(7, 10), 7.5),
    Step((True,), _day(7, 18), 20),
    Step((False, False), _day(5), 40),
    Step((), _day(4)),
    Step((True,), _day(2), 15),
    Step((False, True), _day(1), 25),
    Step((True,), _day(0, 8), 9),
]


def _progress(api, path_id: object, query: str = "") -> dict:
    response = api.get(f"/v1/study-paths/{path_id}/progress{query}")
    assert response.status_code == 200, response.content
    return response.json()


def _compared(body: dict) -> dict:
    return {key: value for key, value in body.items() if key not in ("path_id", "track", "status")}


def test_progress_figures_are_exact_for_a_simulated_history(clock, api) -> None:
    publish_progress_track()
    history = simulate(_history(), STEPS)

    body = _progress(api, history.path.id)

    assert _compared(body) == expected_progress(history, NOW.date())
    assert body["path_id"] == str(history.path.id)
    assert (body["track"]["slug"], body["status"]) == ("progress", "active")
    # Spot checks of the definitions, by hand: 8 tasks graded (7 passed, the skip is not completed),
    # 11 graded attempts of which 7 passed.
    assert (body["totals"]["completed"], body["totals"]["passed"], body["totals"]["attempts"]) == (8, 7, 11)
    assert body["overall_accuracy"] == round(7 / 11, 4) == 0.6364
    assert body["streaks"] == {"current_days": 3, "longest_days": 3, "last_pass_day": NOW.date().isoformat()}
    assert [day["day"] for day in body["difficulty_progression"]["by_day"]] == [
        _day(n).date().isoformat() for n in (9, 8, 7, 5, 2, 1, 0)
    ]


def test_an_empty_path_has_zeros_and_nulls(clock, api) -> None:
    publish_progress_track()
    history = _history()

    body = _progress(api, history.path.id)

    assert _compared(body) == expected_progress(history, NOW.date())
    assert body["overall_accuracy"] is None
    assert body["streaks"] == {"current_days": 0, "longest_days": 0, "last_pass_day": None}
    assert body["difficulty_progression"] == {"by_task": [], "by_day": []}
    first = StudyTask.objects.filter(path=history.path).order_by("position").first()
    assert body["current_difficulty"] == first.difficulty


def test_a_streak_ends_after_a_day_without_a_pass(learner_client) -> None:
    publish_progress_track()
    with time_machine.travel(NOW, tick=True):
        history = simulate(_history(), [Step((True,), _day(3)), Step((True,), _day(2))])
    with time_machine.travel(NOW - timedelta(days=1), tick=True):  # yesterday: the run is alive
        assert _progress(learner_client("alice"), history.path.id)["streaks"]["current_days"] == 2
    with time_machine.travel(NOW, tick=True):  # today, after a day without a pass: it ended
        assert _progress(learner_client("alice"), history.path.id)["streaks"] == {
            "current_days": 0,
            "longest_days": 2,
            "last_pass_day": _day(2).date().isoformat(),
        }


def test_the_query_count_is_the_same_at_any_history_size_and_a_hit_costs_none(
    clock, api, learner_client, django_assert_num_queries
) -> None:
    publish_progress_track(per_module=12)
    small = simulate(_history(), STEPS[:3])
    large = simulate(
        _history("bob"),
        [Step((index % 3 != 0, True) if index % 4 else (True,), _day(20 - index // 2), 5 + index) for index in range(30)],
    )
    bob = learner_client("bob")
    assert len(large.done) == 30

    for client, history in ((api, small), (bob, large)):
        # The path, the module/topic groups, the attempts, the days, the latest tasks, the current task.
        with django_assert_num_queries(6):
            first = _progress(client, history.path.id)
        with django_assert_num_queries(0):
            assert _progress(client, history.path.id) == first
        assert _compared(first) == expected_progress(history, NOW.date())


def test_every_verdict_and_change_shows_at_once(clock, api) -> None:
    publish_progress_track()
    history = simulate(_history(), STEPS[:2])
    before = _progress(api, history.path.id)

    simulate(history, [Step((True,), _day(0, 10))])  # a verdict
    after_verdict = _progress(api, history.path.id)
    assert after_verdict["totals"]["completed"] == before["totals"]["completed"] + 1
    assert _compared(after_verdict) == expected_progress(history, NOW.date())

    task = StudyTask.objects.filter(path=history.path, status="pending").order_by("position").first()
    assert api.patch(f"/v1/study-tasks/{task.id}", {"action": "start"}, format="json").status_code == 200
    assert _progress(api, history.path.id)["current_difficulty"] == task.difficulty

    assert api.patch(f"/v1/study-paths/{history.path.id}", {"status": "paused"}, format="json").status_code == 200
    assert _progress(api, history.path.id)["status"] == "paused"


def test_only_the_owner_sees_a_paths_progress(clock, api, learner_client) -> None:
    publish_progress_track()
    history = simulate(_history(), STEPS[:2])
    _progress(api, history.path.id)  # cached for alice

    error = _envelope(learner_client("bob").get(f"/v1/study-paths/{history.path.id}/progress"), 404, "not_found")
    assert str(history.path.id) not in error["message"]
    _envelope(api.get("/v1/study-paths/not-a-uuid/progress"), 404, "not_found")
    _envelope(api.get("/v1/study-paths/00000000-0000-4000-8000-000000000000/progress"), 404, "not_found")
    _envelope(api.get(f"/v1/study-paths/{history.path.id}/progress?compare=everyone"), 400, "validation_error")
    _envelope(api.get(f"/v1/study-paths/{history.path.id}/progress?compare="), 400, "validation_error")
    _envelope(APIClient().get(f"/v1/study-paths/{history.path.id}/progress"), 401, "not_authenticated")
