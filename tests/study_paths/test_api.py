"""`POST /v1/study-paths` and `GET /v1/study-tasks/next` through the HTTP API: shapes, the error
envelope, ownership, and query counts that do not grow with the track or the history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from personalization.models import ReviewItem
from study_paths.models import StudyPath, StudyTask, TaskEvent
from study_paths.services import study_path_advance, study_path_create
from tests.study_paths.factories import publish_ladder, publish_wide_track
from tests.study_paths.test_services import _pending, _solve

pytestmark = pytest.mark.django_db


def _envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    return body["error"]


def test_create_returns_the_path_with_its_upcoming_tasks(api) -> None:
    publish_ladder()

    response = api.post("/v1/study-paths", {"track": "ladder", "config": {"batch_size": 3}}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    path = StudyPath.objects.get()
    assert (path.learner_id, str(path.id)) == ("alice", body["id"])
    assert body["track"] == {"id": str(path.track_id), "slug": "ladder", "title": "Track ladder"}
    assert (body["status"], body["algorithm_version"], body["completed_at"]) == ("active", "v2", None)
    assert body["config"]["batch_size"] == 3 and body["config"]["daily_task_target"] == 3
    tasks = list(StudyTask.objects.filter(path=path).select_related("problem", "module").order_by("position"))
    assert [t["id"] for t in body["upcoming_tasks"]] == [str(t.id) for t in tasks]
    first, task = body["upcoming_tasks"][0], tasks[0]
    assert first == {
        "id": str(task.id),
        "path_id": str(path.id),
        "position": 1,
        "kind": task.kind,
        "status": "pending",
        "problem": {"id": task.problem_ref, "slug": task.problem.slug, "title": task.problem.title},
        "module": task.module.slug,
        "difficulty": task.difficulty,
        "topics": task.topics,
        "due_at": task.due_at.isoformat(),
        "expires_at": task.expires_at.isoformat(),
        "attempt_count": 0,
        "hint_count": 0,
        "reasons": task.metadata["reasons"],
        "review_source": None,
        "created_at": task.created_at.isoformat(),
    }
    assert "seed" not in body and "learner_start" not in body
    # The answer is built from what was written, not read back: a read shows exactly the same.
    read = api.get(f"/v1/study-paths/{body['id']}").json()
    assert {key: read[key] for key in body} == body


def test_create_errors_use_the_envelope_and_write_nothing(api) -> None:
    publish_ladder()

    error = _envelope(
        api.post("/v1/study-paths", {"track": "ladder", "config": {"batch_size": 99}}, format="json"),
        400,
        "study_path_config_invalid",
    )
    assert error["fields"] == {"config": ["batch_size: 99 is greater than the maximum of 50"]}
    _envelope(api.post("/v1/study-paths", {"track": 7}, format="json"), 400, "validation_error")
    _envelope(api.post("/v1/study-paths", {}, format="json"), 400, "validation_error")
    _envelope(api.post("/v1/study-paths", {"track": "nope"}, format="json"), 404, "not_found")
    assert (StudyPath.objects.count(), StudyTask.objects.count(), TaskEvent.objects.count()) == (0, 0, 0)

    assert api.post("/v1/study-paths", {"track": "ladder"}, format="json").status_code == 201
    _envelope(api.post("/v1/study-paths", {"track": "ladder"}, format="json"), 409, "study_path_active_exists")
    assert StudyPath.objects.count() == 1


def test_endpoints_need_a_token(client) -> None:
    assert client.post("/v1/study-paths", {"track": "ladder"}, content_type="application/json").status_code == 401
    assert client.get("/v1/study-tasks/next").status_code == 401


def test_next_follows_the_plan_says_when_a_review_is_due_and_never_another_learners(api, learner_client) -> None:
    publish_ladder()
    now = timezone.now()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)
    study_path_create(learner_id="bob", track="ladder", seed=8)

    body = api.get("/v1/study-tasks/next").json()
    assert (body["task"]["id"], body["reason"]) == (str(_pending(path)[0].id), "Next in your study path.")

    # The plan's order decides (the planner puts due reviews first wherever they fit the +1
    # rule); the reason says when the task is a due review from the review queue.
    study_path_advance(task=_pending(path)[0], verdict="passed")
    review = _pending(path)[0]
    StudyTask.objects.filter(id=review.id).update(kind="review", metadata={"review_source": {"source": "climb"}})
    body = api.get("/v1/study-tasks/next").json()
    assert (body["task"]["id"], body["reason"]) == (str(review.id), "Next in your study path.")
    StudyTask.objects.filter(id=review.id).update(
        due_at=now - timedelta(minutes=1), metadata={"review_source": {"source": "review_queue", "key": "k"}}
    )
    body = api.get("/v1/study-tasks/next").json()
    assert (body["task"]["id"], body["reason"]) == (str(review.id), "A review is due.")

    # A started task goes before everything.
    started = _pending(path)[1]
    StudyTask.objects.filter(id=started.id).update(status="in_progress")
    body = api.get("/v1/study-tasks/next").json()
    assert (body["task"]["id"], body["reason"]) == (str(started.id), "You have started this task.")

    bob = learner_client("bob").get("/v1/study-tasks/next").json()
    assert bob["task"]["path_id"] != str(path.id)


def test_next_without_a_task_says_why(api, settings) -> None:
    # v1 ends a path once each problem is passed; the passes here do not go through the learner
    # model, so v2 would go on practising until mastery (test_whole_path.py covers that).
    settings.CO_STUDY_PATH_ALGORITHM = "v1"
    publish_ladder()
    assert api.get("/v1/study-tasks/next").json() == {
        "task": None,
        "reason": "You have no active study path. Start one with POST /v1/study-paths.",
    }
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=5)
    for _ in range(20):
        if not _pending(path):
            break
        study_path_advance(task=_pending(path)[0], verdict="passed")
    assert api.get("/v1/study-tasks/next").json() == {
        "task": None,
        "reason": "You have completed your study path. Start a new one with POST /v1/study-paths.",
    }
    StudyPath.objects.filter(id=path.id).update(status="paused", completed_at=None)
    assert api.get("/v1/study-tasks/next").json()["reason"] == "Your study path is paused. Resume it to get tasks."


# --- query counts ---------------------------------------------------------------------------

NEXT_QUERIES = 1  # the task with its problem and module; the token is verified without a query


@pytest.mark.parametrize("verdicts", [0, 40])
def test_next_costs_one_query_whatever_the_history(api, django_assert_num_queries, verdicts: int) -> None:
    publish_wide_track("wide", modules=4, per_module=12)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 5}, seed=1)
    for index in range(verdicts):
        study_path_advance(task=_pending(path)[0], verdict="failed" if index % 3 else "passed")

    with django_assert_num_queries(NEXT_QUERIES):
        response = api.get("/v1/study-tasks/next")

    assert response.json()["task"]["id"] == str(_pending(path)[0].id)


# Create (services.CREATE_QUERIES): nothing is read back, the answer shows the track outline and
# the tasks the create planned and wrote.
CREATE_API_QUERIES = 13


@pytest.mark.parametrize(("modules", "per_module", "history"), [(2, 3, 0), (5, 10, 25)])
def test_create_costs_the_same_queries_on_any_track_and_history(
    api, django_assert_num_queries, modules, per_module, history
) -> None:
    slug = f"api-{modules}-{per_module}"
    publish_wide_track(slug, modules=modules, per_module=per_module)
    for index in range(history):
        _solve("alice", f"{slug}-m{index % modules}-p{index % per_module}", passed=index % 2 == 0)
    ReviewItem.objects.filter(learner_id="alice").update(next_due_at=timezone.now() - timedelta(days=1))

    with django_assert_num_queries(CREATE_API_QUERIES):
        response = api.post("/v1/study-paths", {"track": slug}, format="json")

    assert response.status_code == 201, response.content
    assert len(response.json()["upcoming_tasks"]) == min(10, modules * per_module)


def test_a_path_reads_back_only_for_its_learner() -> None:
    from co_project.errors import NotFound
    from study_paths.selectors import study_path_with_upcoming

    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2}, seed=1)
    assert len(study_path_with_upcoming(learner_id="alice", path_id=path.id).upcoming_tasks) == 2
    with pytest.raises(NotFound):
        study_path_with_upcoming(learner_id="bob", path_id=path.id)
