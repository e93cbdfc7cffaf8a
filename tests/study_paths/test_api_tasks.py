"""`GET /v1/study-tasks`, `GET/PATCH /v1/study-tasks/{id}` through the HTTP API: filters, cursor
pages, events and evaluations, start and skip, ownership, and pinned query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from study_paths.models import StudyPath, StudyTask, TaskEvaluation, TaskEvent
from study_paths.services import study_path_advance, study_path_create
from submissions.models import Submission
from tests.study_paths.factories import events_of, publish_ladder, publish_wide_track
from tests.study_paths.test_api import _envelope
from tests.study_paths.test_services import _pending

pytestmark = pytest.mark.django_db


def _ids(items: list[dict]) -> list[str]:
    return [item["id"] for item in items]


def test_list_filters_combine_and_pages_follow_plan_order(api, learner_client) -> None:
    publish_wide_track("wide", modules=2, per_module=6)
    publish_ladder()
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 6}, seed=4)
    other = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2}, seed=4)
    study_path_create(learner_id="bob", track="wide", seed=5)
    study_path_advance(task=_pending(path)[0], verdict="passed")
    mine = list(StudyTask.objects.filter(path=path).order_by("created_at", "position"))

    pages, url = [], f"/v1/study-tasks?path={path.id}&limit=4"
    while url:
        body = api.get(url).json()
        pages.append(_ids(body["items"]))
        url = body["next"]
    assert [i for page in pages for i in page] == [str(t.id) for t in mine]
    assert len(pages[0]) == 4

    everything = _ids(api.get("/v1/study-tasks?limit=100").json()["items"])
    assert set(everything) == {str(t.id) for t in StudyTask.objects.filter(learner_id="alice")}

    passed = api.get("/v1/study-tasks?status=passed").json()["items"]
    assert _ids(passed) == [str(t.id) for t in mine if t.status == "passed"]
    module = mine[0].module.slug
    in_module = api.get(f"/v1/study-tasks?path={path.id}&module={module}&status=pending").json()["items"]
    assert _ids(in_module) == [str(t.id) for t in mine if t.module.slug == module and t.status == "pending"]
    kinds = {t.kind for t in mine}
    for kind in kinds:
        assert _ids(api.get(f"/v1/study-tasks?path={path.id}&kind={kind}").json()["items"]) == [
            str(t.id) for t in mine if t.kind == kind
        ]

    due = sorted(t.due_at for t in mine)
    cut = due[len(due) // 2]
    before = api.get("/v1/study-tasks", {"path": str(path.id), "due_before": cut.isoformat()}).json()["items"]
    after = api.get("/v1/study-tasks", {"path": str(path.id), "due_after": cut.isoformat()}).json()["items"]
    assert _ids(before) == [str(t.id) for t in mine if t.due_at < cut]
    assert _ids(after) == [str(t.id) for t in mine if t.due_at >= cut]
    assert _ids(api.get(f"/v1/study-tasks?path={other.id}").json()["items"]) == [
        str(t.id) for t in StudyTask.objects.filter(path=other).order_by("position")
    ]
    # Bob's filter on Alice's path finds nothing.
    assert learner_client("bob").get(f"/v1/study-tasks?path={path.id}").json() == {"items": [], "next": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("status=", "status"),
        ("kind=easy", "kind"),
        ("path=42", "path"),
        ("due_before=yesterday", "due_before"),
        ("due_after=2026-13-01", "due_after"),
        ("due_after=2026-12-02T00:00:00Z&due_before=2026-12-01T00:00:00Z", "due_after"),
        ("limit=101", "limit"),
        ("cursor=abc", "cursor"),
    ],
)
def test_bad_filters_are_a_400_naming_the_parameter(api, query: str, field: str) -> None:
    error = _envelope(api.get(f"/v1/study-tasks?{query}"), 400, "validation_error")
    assert field in error["fields"]


def test_detail_has_events_in_order_and_evaluations_and_is_404_for_anyone_else(api, learner_client) -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)
    task = _pending(path)[0]
    api.patch(f"/v1/study-tasks/{task.id}", {"action": "start"}, format="json")
    submission = Submission.objects.create(
        learner_id="alice",
        problem_id=task.problem_id,
        problem_ref=task.problem_ref,
        subject="coding",
        payload={},
        payload_sha256="0" * 64,
    )
    evaluation = TaskEvaluation.objects.create(
        task=task,
        submission=submission,
        score=0.5,
        visible_passed=1,
        visible_total=2,
        visible_details=[{"name": "t1", "passed": True}],
    )

    body = api.get(f"/v1/study-tasks/{task.id}").json()

    assert [(e["sequence"], e["event_type"]) for e in body["events"]] == [(1, "created"), (2, "started")]
    assert body["status"] == "in_progress" and body["started_at"] is not None and body["finished_at"] is None
    assert body["evaluations"] == [
        {
            "id": str(evaluation.id),
            "submission_id": str(submission.id),
            "score": 0.5,
            "runtime_ms": None,
            "peak_memory_kb": None,
            "visible_passed": 1,
            "visible_total": 2,
            "hidden_passed": 0,
            "hidden_total": 0,
            "failed_categories": [],
            "visible_details": [{"name": "t1", "passed": True}],
            "partial": False,
            "created_at": evaluation.created_at.isoformat(),
        }
    ]
    _envelope(learner_client("bob").get(f"/v1/study-tasks/{task.id}"), 404, "not_found")
    _envelope(learner_client("bob").patch(f"/v1/study-tasks/{task.id}", {"action": "skip"}, format="json"), 404, "not_found")
    _envelope(api.get("/v1/study-tasks/12"), 404, "not_found")
    assert StudyTask.objects.get(id=task.id).status == "in_progress"


def test_start_then_skip_records_events_and_advances_the_plan(api) -> None:
    publish_wide_track("wide", modules=2, per_module=8)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 4}, seed=2)
    task = _pending(path)[0]
    url = f"/v1/study-tasks/{task.id}"

    body = api.patch(url, {"action": "start"}, format="json").json()
    assert body["status"] == "in_progress"
    assert api.patch(url, {"action": "start"}, format="json").json()["status"] == "in_progress"
    assert [e[1] for e in events_of(task)] == ["created", "started"]  # starting again adds nothing

    body = api.patch(url, {"action": "skip"}, format="json").json()
    assert body["status"] == "skipped" and body["finished_at"] is not None
    assert events_of(task)[-1][1:] == ("status_changed", {"from": "in_progress", "to": "skipped", "reason": "verdict"})
    assert StudyTask.objects.filter(path=path, status="pending").count() >= 1  # the plan went on

    _envelope(api.patch(url, {"action": "start"}, format="json"), 409, "study_task_finished")
    _envelope(api.patch(url, {"action": "finish"}, format="json"), 400, "validation_error")
    _envelope(api.patch(url, {}, format="json"), 400, "validation_error")

    submitted = _pending(path)[0]
    StudyTask.objects.filter(id=submitted.id).update(status="submitted")
    _envelope(api.patch(f"/v1/study-tasks/{submitted.id}", {"action": "skip"}, format="json"), 409, "study_task_awaiting_verdict")

    StudyPath.objects.filter(id=path.id).update(status="paused")
    paused = _pending(path)[0]
    _envelope(api.patch(f"/v1/study-tasks/{paused.id}", {"action": "start"}, format="json"), 409, "study_path_not_active")
    assert StudyTask.objects.get(id=paused.id).status == "pending"


# --- query counts ---------------------------------------------------------------------------

LIST_QUERIES = 1  # a page of tasks with problem and module
DETAIL_QUERIES = 3  # the task with problem and module, its events, its evaluations
START_QUERIES = 10  # ownership read, the lock and save, the events' numbers and insert (in savepoints), the detail (3)


@pytest.mark.parametrize("verdicts", [0, 30])
def test_task_endpoints_cost_the_same_queries_whatever_the_history(api, django_assert_num_queries, verdicts) -> None:
    publish_wide_track("wide", modules=4, per_module=12)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 5}, seed=1)
    for index in range(verdicts):
        study_path_advance(task=_pending(path)[0], verdict="failed" if index % 3 else "passed")
    task = _pending(path)[0]
    since = task.due_at - timedelta(days=30)

    with django_assert_num_queries(LIST_QUERIES):
        assert api.get("/v1/study-tasks", {"status": "pending", "due_after": since.isoformat()}).status_code == 200
    with django_assert_num_queries(DETAIL_QUERIES):
        assert api.get(f"/v1/study-tasks/{task.id}").status_code == 200
    with django_assert_num_queries(START_QUERIES):
        assert api.patch(f"/v1/study-tasks/{task.id}", {"action": "start"}, format="json").status_code == 200
    assert TaskEvent.objects.filter(task=task).count() == 2


# Ownership read, then study_path_advance: locks, the path's rows, the track outline, due reviews,
# the topic mastery, the reshaped tail (a retype, a drop and an insert each only when the new plan needs it), the
# events, the path; then the detail (3). What varies is what the plan does, never the history.
SKIP_QUERIES = 20


@pytest.mark.parametrize("verdicts", [0, 30])
def test_skip_costs_the_same_queries_whatever_the_history(api, django_assert_max_num_queries, verdicts) -> None:
    publish_wide_track("wide", modules=4, per_module=12)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 5}, seed=1)
    for index in range(verdicts):
        study_path_advance(task=_pending(path)[0], verdict="failed" if index % 3 else "passed")
    api.get("/v1/study-tasks/next")  # the problem bank's per-catalogue memo is warm, as in a serving process
    task = _pending(path)[0]

    with django_assert_max_num_queries(SKIP_QUERIES):
        assert api.patch(f"/v1/study-tasks/{task.id}", {"action": "skip"}, format="json").json()["status"] == "skipped"
