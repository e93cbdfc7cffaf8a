"""`GET/PATCH /v1/study-paths…`: list, read, the active path (cached), config and status changes —
through the HTTP API, with ownership, the error envelope and pinned query counts."""

from __future__ import annotations

import pytest

from study_paths.models import StudyPath, StudyTask, TaskEvent
from study_paths.services import study_path_advance, study_path_create
from tests.study_paths.factories import events_of, publish_ladder, publish_wide_track
from tests.study_paths.test_api import _envelope
from tests.study_paths.test_services import _pending
from tracks.selectors import track_outline

pytestmark = pytest.mark.django_db


def test_list_pages_with_a_cursor_and_shows_only_your_paths(api) -> None:
    publish_wide_track("one", modules=1, per_module=3)
    publish_wide_track("two", modules=1, per_module=3)
    publish_wide_track("three", modules=1, per_module=3)
    made = [
        study_path_create(learner_id="alice", track=slug, config={"batch_size": 2}, seed=1) for slug in ("one", "two", "three")
    ]
    study_path_create(learner_id="bob", track="one", seed=2)

    first = api.get("/v1/study-paths?limit=2").json()
    second = api.get(first["next"]).json()

    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == [str(p.id) for p in reversed(made)]
    assert second["next"] is None
    summary = {"id", "track", "status", "config", "algorithm_version", "created_at", "updated_at", "completed_at"}
    assert set(first["items"][0]) == summary
    _envelope(api.get("/v1/study-paths?limit=0"), 400, "validation_error")
    _envelope(api.get("/v1/study-paths?cursor=nonsense"), 400, "validation_error")


def test_detail_has_upcoming_tasks_and_counts_and_is_404_for_anyone_else(api, learner_client) -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)
    study_path_advance(task=_pending(path)[0], verdict="passed")

    body = api.get(f"/v1/study-paths/{path.id}").json()

    assert [t["id"] for t in body["upcoming_tasks"]] == [str(t.id) for t in _pending(path)]
    assert body["task_counts"]["passed"] == 1
    assert body["task_counts"]["pending"] == len(_pending(path))
    assert sum(body["task_counts"].values()) == StudyTask.objects.filter(path=path).count()
    error = _envelope(learner_client("bob").get(f"/v1/study-paths/{path.id}"), 404, "not_found")
    assert str(path.id) not in error["message"]
    _envelope(api.get("/v1/study-paths/not-a-uuid"), 404, "not_found")


def test_active_says_why_when_there_is_none_and_filters_by_track(api) -> None:
    publish_wide_track("one", modules=1, per_module=3)
    publish_wide_track("two", modules=1, per_module=3)
    assert api.get("/v1/study-paths/active").json() == {
        "path": None,
        "reason": "You have no active study path. Start one with POST /v1/study-paths.",
    }
    one = study_path_create(learner_id="alice", track="one", config={"batch_size": 2}, seed=1)
    two = study_path_create(learner_id="alice", track="two", config={"batch_size": 2}, seed=1)

    assert api.get("/v1/study-paths/active").json()["path"]["id"] == str(two.id)
    assert api.get("/v1/study-paths/active?track=one").json()["path"]["id"] == str(one.id)
    assert api.get(f"/v1/study-paths/active?track={one.track_id}").json()["path"]["id"] == str(one.id)
    assert api.get("/v1/study-paths/active?track=none").json() == {
        "path": None,
        "reason": "You have no active study path on track 'none'. Start one with POST /v1/study-paths.",
    }
    _envelope(api.get("/v1/study-paths/active?track="), 400, "validation_error")


def test_active_is_cached_and_every_write_is_visible_at_once(api, django_assert_num_queries) -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)
    first = api.get("/v1/study-paths/active").json()
    with django_assert_num_queries(0):
        assert api.get("/v1/study-paths/active").json() == first

    # A verdict (through the services), a task action and a status change (through the API).
    study_path_advance(task=_pending(path)[0], verdict="passed")
    after_verdict = api.get("/v1/study-paths/active").json()
    assert [t["id"] for t in after_verdict["path"]["upcoming_tasks"]] == [str(t.id) for t in _pending(path)]

    task = _pending(path)[0]
    assert api.patch(f"/v1/study-tasks/{task.id}", {"action": "start"}, format="json").status_code == 200
    started = api.get("/v1/study-paths/active").json()["path"]["upcoming_tasks"]
    assert [t["status"] for t in started if t["id"] == str(task.id)] == ["in_progress"]

    assert api.patch(f"/v1/study-paths/{path.id}", {"status": "paused"}, format="json").status_code == 200
    assert api.get("/v1/study-paths/active").json()["path"] is None


def test_pause_resume_archive_and_archived_is_final(api) -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)
    url = f"/v1/study-paths/{path.id}"

    assert api.patch(url, {"status": "paused"}, format="json").json()["status"] == "paused"
    assert api.patch(url, {"status": "paused"}, format="json").json()["status"] == "paused"  # no change, no error
    # Another path on the track may start while this one is paused; resuming this one then conflicts.
    other = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2}, seed=8)
    _envelope(api.patch(url, {"status": "active"}, format="json"), 409, "study_path_active_exists")
    api.patch(f"/v1/study-paths/{other.id}", {"status": "archived"}, format="json")
    assert api.patch(url, {"status": "active"}, format="json").json()["status"] == "active"

    assert api.patch(url, {"status": "archived"}, format="json").json()["status"] == "archived"
    _envelope(api.patch(url, {"status": "active"}, format="json"), 409, "study_path_archived")
    _envelope(api.patch(url, {"config": {"batch_size": 2}}, format="json"), 409, "study_path_archived")
    assert StudyPath.objects.get(id=path.id).status == "archived"


def test_change_validation_and_ownership(api, learner_client) -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)
    url = f"/v1/study-paths/{path.id}"
    events_before = TaskEvent.objects.count()

    assert api.patch(url, {}, format="json").json()["status"] == "active"  # nothing to change
    _envelope(api.patch(url, {"status": "completed"}, format="json"), 400, "validation_error")
    error = _envelope(api.patch(url, {"config": {"batch_size": 0}}, format="json"), 400, "study_path_config_invalid")
    assert error["fields"] == {"config": ["batch_size: 0 is less than the minimum of 1"]}
    error = _envelope(api.patch(url, {"config": {"modules": ["nope"]}}, format="json"), 400, "study_path_config_invalid")
    assert error["fields"] == {"config": ["modules: no published module 'nope' in this track."]}
    _envelope(api.patch(url, {"config": [1]}, format="json"), 400, "study_path_config_invalid")
    _envelope(learner_client("bob").patch(url, {"status": "paused"}, format="json"), 404, "not_found")
    assert (StudyPath.objects.get(id=path.id).status, TaskEvent.objects.count()) == ("active", events_before)


def test_config_change_regenerates_only_the_pending_tail(api) -> None:
    publish_wide_track("wide", modules=2, per_module=8)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 6}, seed=3)
    done = _pending(path)[0]
    study_path_advance(task=done, verdict="passed")
    started = _pending(path)[0]
    api.patch(f"/v1/study-tasks/{started.id}", {"action": "start"}, format="json")
    pending_before = _pending(path)

    body = api.patch(f"/v1/study-paths/{path.id}", {"config": {"batch_size": 2}}, format="json").json()

    assert body["config"]["batch_size"] == 2 and body["config"]["daily_task_target"] == 3
    statuses = dict(StudyTask.objects.filter(path=path).values_list("id", "status"))
    assert (statuses[done.id], statuses[started.id]) == ("passed", "in_progress")
    pending_after = _pending(path)
    assert len(pending_after) <= 2
    dropped = [t for t in pending_before if statuses[t.id] == "skipped"]
    kept = [t for t in pending_before if statuses[t.id] == "pending"]
    assert len(dropped) + len(kept) == len(pending_before) and dropped
    for task in dropped:
        assert StudyTask.objects.get(id=task.id).metadata["replanned"] is True
        assert events_of(task)[-1][1:] == ("status_changed", {"from": "pending", "to": "skipped", "reason": "config_changed"})
    for task in pending_after:
        if task not in kept:
            assert [e[1] for e in events_of(task)] == ["created"]
    assert [t["id"] for t in body["upcoming_tasks"]] == [str(started.id), *(str(t.id) for t in pending_after)]


# --- query counts ---------------------------------------------------------------------------

LIST_QUERIES = 1  # a page of paths with their tracks
DETAIL_QUERIES = 3  # the path with its track, its upcoming tasks, the counts per status
ACTIVE_QUERIES = 2  # the active path with its track, its upcoming tasks (then cached)
PAUSE_QUERIES = 9  # the lock and the save inside two savepoints (6), then the detail (3)


@pytest.mark.parametrize("verdicts", [0, 30])
def test_path_endpoints_cost_the_same_queries_whatever_the_history(api, django_assert_num_queries, verdicts) -> None:
    publish_wide_track("wide", modules=4, per_module=12)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 5}, seed=1)
    for index in range(verdicts):
        study_path_advance(task=_pending(path)[0], verdict="failed" if index % 3 else "passed")

    with django_assert_num_queries(LIST_QUERIES):
        assert api.get("/v1/study-paths").status_code == 200
    with django_assert_num_queries(DETAIL_QUERIES):
        assert api.get(f"/v1/study-paths/{path.id}").status_code == 200
    with django_assert_num_queries(ACTIVE_QUERIES):
        assert api.get("/v1/study-paths/active").json()["path"]["id"] == str(path.id)
    with django_assert_num_queries(PAUSE_QUERIES):
        assert api.patch(f"/v1/study-paths/{path.id}", {"status": "paused"}, format="json").status_code == 200


# The lock, the path's rows, due reviews, the topic mastery, the dropped and new tasks with their
# events, the save; then the detail (3). The track outline (validation and replanning) comes from
# the process memo (read once per catalogue version).
CONFIG_CHANGE_QUERIES = 15


@pytest.mark.parametrize("verdicts", [0, 30])
def test_config_change_costs_the_same_queries_whatever_the_history(api, django_assert_num_queries, verdicts) -> None:
    publish_wide_track("wide", modules=4, per_module=12)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 5}, seed=1)
    for index in range(verdicts):
        study_path_advance(task=_pending(path)[0], verdict="failed" if index % 3 else "passed")
    track_outline(reference=str(path.track_id))  # the memo as any request after a process's first finds it

    with django_assert_num_queries(CONFIG_CHANGE_QUERIES):
        response = api.patch(f"/v1/study-paths/{path.id}", {"config": {"batch_size": 3, "daily_task_target": 1}}, format="json")
    assert response.status_code == 200, response.content
