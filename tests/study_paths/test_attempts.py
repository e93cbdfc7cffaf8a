"""`POST /v1/study-tasks/{id}/submit` through the HTTP API: real grading (the sandbox) through the
one pipeline, the task's evaluations and events, the plan advancing, the error envelope,
ownership, no hidden test data anywhere, and the same learner model as a session's."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from personalization.models import LearnerState, Mastery, ReviewItem
from study_paths.models import StudyPath, StudyTask, TaskEvaluation, TaskEvent
from submissions.models import Submission
from tests.study_paths.factories import events_of
from tests.tracks.factories import HIDDEN_MARKERS, add_problem, math_problem, pack_document, publish, shout_problem

# Real commits: the evaluation is queued on commit, as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_task_events_cleared")]


WRONG = "def shout(text):\n    return text\n"
RIGHT = "def shout(text):\n    return text.upper()\n"


def _envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    return body["error"]


def publish_shout_track(slug: str = "loud") -> None:
    """One module: the marker-carrying `shout` problem (difficulty 1) and `add-numbers` (2)."""
    problems = [shout_problem(module="basics"), add_problem(module="basics")]
    publish(pack_document(track_slug=slug, problems=problems))


def _start_path(api, track: str = "loud", **config) -> dict:
    response = api.post("/v1/study-paths", {"track": track, "config": {"batch_size": 2, **config}}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _first_task(body: dict) -> dict:
    return body["upcoming_tasks"][0]


# A failed category's remediation is shown with the result (as /v1/submissions shows it); every
# other marker is hidden data.
REMEDIATION_MARKER = "zqx-remediation-5c7d"


def _no_hidden_data(*texts: str, remediation_shown: bool = False) -> None:
    for text in texts:
        for marker in HIDDEN_MARKERS:
            if not (remediation_shown and marker == REMEDIATION_MARKER):
                assert marker not in text, marker


def test_wrong_then_right_code_gives_two_evaluations_a_passed_task_and_an_advanced_plan(api) -> None:
    publish_shout_track()
    path = _start_path(api)
    task = next(t for t in path["upcoming_tasks"] if t["problem"]["slug"] == "shout")
    tasks_before = StudyTask.objects.count()

    wrong = api.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": WRONG}, format="json")
    assert wrong.status_code == 200, wrong.content
    body = wrong.json()
    submission = Submission.objects.get(id=body["id"])
    # The /v1/submissions shape, from the same pipeline.
    assert (body["status"], body["kind"], body["problem_id"], body["session_id"]) == (
        "failed",
        "submit",
        task["problem"]["id"],
        None,
    )
    assert (body["visible"]["passed"], body["visible"]["total"]) == (1, 3)  # only "" is its own upper case
    assert body["hidden"]["total"] == 4 and set(body["hidden"]["categories"]) == {"long-input", "mixed-case"}
    assert (submission.origin, submission.origin_id) == ("study_task", StudyTask.objects.get(id=task["id"]).id)

    row = StudyTask.objects.get(id=task["id"])
    assert (row.status, row.attempt_count) == ("in_progress", 1)

    right = api.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": RIGHT}, format="json")
    assert right.status_code == 200, right.content
    assert right.json()["status"] == "passed"

    row.refresh_from_db()
    assert (row.status, row.attempt_count, row.hint_count) == ("passed", 2, 0)
    assert row.finished_at is not None
    evaluations = list(TaskEvaluation.objects.filter(task=row).order_by("created_at"))
    assert [(e.submission_id, e.visible_passed, e.visible_total, e.hidden_passed, e.hidden_total) for e in evaluations] == [
        (submission.id, 1, 3, 0, 4),
        (Submission.objects.get(id=right.json()["id"]).id, 3, 3, 4, 4),
    ]
    assert evaluations[0].score == pytest.approx(1 / 7)
    assert evaluations[1].score == 1.0
    assert set(evaluations[0].failed_categories) == {"long-input", "mixed-case"}
    assert evaluations[0].visible_details == [
        {"index": 0, "outcome": "wrong_answer", "passed": False},
        {"index": 1, "outcome": "wrong_answer", "passed": False},
        {"index": 2, "outcome": "passed", "passed": True},
    ]
    assert evaluations[0].runtime_ms is not None and evaluations[0].partial is False

    history = events_of(row)
    assert [(sequence, kind) for sequence, kind, _ in history] == [
        (1, "created"),
        (2, "started"),
        (3, "submitted"),
        (4, "evaluated"),
        (5, "submitted"),
        (6, "evaluated"),
        (7, "status_changed"),
    ]
    assert history[2][2] == {"submission_id": body["id"], "attempt": 1, "language": "python"}
    assert history[3][2]["status"] == "failed" and history[3][2]["attempt"] == 1 and history[3][2]["attempts_left"] == 1
    assert history[5][2]["status"] == "passed" and history[5][2]["evaluation_id"] == str(evaluations[1].id)
    assert history[6][2] == {"from": "submitted", "to": "passed", "reason": "verdict"}
    # The plan advanced: the path was replanned at the verdict, and the next task is the other problem.
    assert StudyPath.objects.get().updated_at == row.finished_at
    assert StudyTask.objects.count() >= tasks_before
    assert api.get("/v1/study-tasks/next").json()["task"]["problem"]["slug"] == "add-numbers"

    # A finished task takes no more attempts.
    _envelope(
        api.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": RIGHT}, format="json"),
        409,
        "study_task_finished",
    )
    # Nothing hidden in any evaluation, event or response.
    _no_hidden_data(wrong.content.decode(), right.content.decode(), remediation_shown=True)
    _no_hidden_data(
        json.dumps(list(TaskEvaluation.objects.values()), default=str),
        json.dumps(list(TaskEvent.objects.values("payload")), default=str),
    )


def test_failing_every_allowed_attempt_fails_the_task_and_reshapes_the_plan(api) -> None:
    publish_shout_track()
    path = _start_path(api, attempts_per_task=1)
    task = next(t for t in path["upcoming_tasks"] if t["problem"]["slug"] == "shout")

    response = api.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": WRONG}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "failed"
    row = StudyTask.objects.get(id=task["id"])
    assert (row.status, row.attempt_count) == ("failed", 1)
    assert [kind for _, kind, _ in events_of(row)][-2:] == ["evaluated", "status_changed"]
    assert TaskEvaluation.objects.filter(task=row).count() == 1


def test_a_replanning_failure_never_loses_the_verdict(api, monkeypatch) -> None:
    """A planner that blows up (a bug) rolls back only the replanning: the submission's verdict,
    the learner model, the evaluation and the task's status stand; the next verdict replans."""
    from study_paths import services

    publish_shout_track()
    task = next(t for t in _start_path(api)["upcoming_tasks"] if t["problem"]["slug"] == "shout")
    tasks_before = StudyTask.objects.count()

    def broken_plan(**_: object) -> None:
        raise RuntimeError("planner bug")

    monkeypatch.setattr(services, "study_path_plan", broken_plan)
    response = api.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": RIGHT}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "passed"
    row = StudyTask.objects.get(id=task["id"])
    assert (row.status, row.attempt_count) == ("passed", 1) and row.finished_at is not None
    assert TaskEvaluation.objects.filter(task=row).count() == 1
    assert [kind for _, kind, _ in events_of(row)] == ["created", "started", "submitted", "evaluated", "status_changed"]
    assert StudyTask.objects.count() == tasks_before
    assert Mastery.objects.filter(learner_id="alice").exists()


def test_a_math_task_takes_the_math_payload(api) -> None:
    publish(
        pack_document(
            track_slug="algebra", subject="math", modules=[{"slug": "algebra", "title": "Algebra"}], problems=[math_problem()]
        )
    )
    task = _first_task(_start_path(api, track="algebra"))

    bad = api.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": "x"}, format="json")
    error = _envelope(bad, 400, "validation_error")
    assert "expression" in error["fields"]
    response = api.post(
        f"/v1/study-tasks/{task['id']}/submit", {"steps": ["(x + 1)*(x + 1)"], "expression": "x**2 + 2*x + 1"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["subject"], body["language"]) == ("passed", "math", "")
    row = StudyTask.objects.get(id=task["id"])
    evaluation = TaskEvaluation.objects.get(task=row)
    assert (row.status, row.attempt_count, evaluation.score, evaluation.visible_total) == ("passed", 1, 1.0, 0)
    _no_hidden_data(response.content.decode(), json.dumps(list(TaskEvent.objects.values("payload")), default=str))


def test_another_learners_task_is_not_found_and_nothing_is_written(api, learner_client) -> None:
    publish_shout_track()
    task = _first_task(_start_path(api))
    bob = learner_client("bob")

    _envelope(
        bob.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": RIGHT}, format="json"), 404, "not_found"
    )
    _envelope(
        bob.post("/v1/study-tasks/not-a-uuid/submit", {"language": "python", "code": RIGHT}, format="json"), 404, "not_found"
    )
    assert Submission.objects.count() == 0
    assert StudyTask.objects.get(id=task["id"]).status == "pending"


def test_bad_bodies_are_400_in_the_envelope_and_write_nothing(api) -> None:
    publish_shout_track()
    task = _first_task(_start_path(api))
    events_before = TaskEvent.objects.count()
    url = f"/v1/study-tasks/{task['id']}/submit"

    assert "language" in _envelope(api.post(url, {"code": RIGHT}, format="json"), 400, "validation_error")["fields"]
    assert (
        "code" in _envelope(api.post(url, {"language": "python", "code": ""}, format="json"), 400, "validation_error")["fields"]
    )
    _envelope(api.post(url, {"language": "cobol", "code": RIGHT}, format="json"), 400, "validation_error")
    _envelope(
        api.post(url, {"language": "python", "code": RIGHT}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256),
        400,
        "validation_error",
    )
    _envelope(api.post(url, {"language": "python", "code": "x" * (64 * 1024 + 1)}, format="json"), 413, "code_too_large")

    assert (Submission.objects.count(), TaskEvent.objects.count()) == (0, events_before)
    assert StudyTask.objects.get(id=task["id"]).status == "pending"


def test_a_task_that_is_not_open_is_a_conflict(api) -> None:
    publish_shout_track()
    path = _start_path(api)
    first, second = path["upcoming_tasks"][:2]
    StudyTask.objects.filter(id=first["id"]).update(status="skipped")
    StudyTask.objects.filter(id=second["id"]).update(status="submitted")

    _envelope(
        api.post(f"/v1/study-tasks/{first['id']}/submit", {"language": "python", "code": RIGHT}, format="json"),
        409,
        "study_task_finished",
    )
    _envelope(
        api.post(f"/v1/study-tasks/{second['id']}/submit", {"language": "python", "code": RIGHT}, format="json"),
        409,
        "study_task_awaiting_verdict",
    )
    StudyTask.objects.filter(id=second["id"]).update(status="in_progress")
    StudyPath.objects.update(status="paused")
    _envelope(
        api.post(f"/v1/study-tasks/{second['id']}/submit", {"language": "python", "code": RIGHT}, format="json"),
        409,
        "study_path_not_active",
    )
    assert Submission.objects.count() == 0


def test_an_idempotency_key_returns_the_first_submission_and_grades_once(api) -> None:
    publish_shout_track()
    task = next(t for t in _start_path(api)["upcoming_tasks"] if t["problem"]["slug"] == "shout")
    url = f"/v1/study-tasks/{task['id']}/submit"

    first = api.post(url, {"language": "python", "code": RIGHT}, format="json", HTTP_IDEMPOTENCY_KEY="try-1")
    again = api.post(url, {"language": "python", "code": RIGHT}, format="json", HTTP_IDEMPOTENCY_KEY="try-1")
    other = api.post(url, {"language": "python", "code": WRONG}, format="json", HTTP_IDEMPOTENCY_KEY="try-1")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    _envelope(other, 409, "idempotency_key_reused")
    assert (Submission.objects.count(), TaskEvaluation.objects.count()) == (1, 1)
    assert StudyTask.objects.get(id=task["id"]).attempt_count == 1


# A failed attempt graded in the request (the in-process queue): the submit, the pipeline's
# claim (which returns the row), grading reads, verdict, learner model (with the review item read and its review logged),
# and the task's evaluation and event; the request answers from the verdict's wake-up (no read-back).
# PostgreSQL adds the per-learner advisory lock of the evaluation cap.
QUERIES_PER_FAILED_SUBMIT = {"sqlite": 31, "postgresql": 32}


def test_submit_query_count_is_pinned_and_does_not_grow_with_the_tasks_history(api, django_assert_num_queries) -> None:
    publish_shout_track()
    task = next(t for t in _start_path(api, attempts_per_task=5)["upcoming_tasks"] if t["problem"]["slug"] == "shout")
    url = f"/v1/study-tasks/{task['id']}/submit"
    api.post(url, {"language": "python", "code": WRONG}, format="json")  # warm the problem bank's memo

    for _ in range(3):
        with django_assert_num_queries(QUERIES_PER_FAILED_SUBMIT[connection.vendor]):
            response = api.post(url, {"language": "python", "code": WRONG}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "failed"
    assert StudyTask.objects.get(id=task["id"]).attempt_count == 4


# --- both front doors: one learner model --------------------------------------------------------------


def _learner_model(learner_id: str) -> tuple[list, list, list]:
    mastery = sorted(Mastery.objects.filter(learner_id=learner_id).values_list("key_type", "key_id", "score", "ema", "attempts"))
    reviews = sorted(
        ReviewItem.objects.filter(learner_id=learner_id).values_list(
            "problem_id", "reason", "bucket", "next_due_at", "last_reviewed_at", "retired_at"
        )
    )
    state = list(
        LearnerState.objects.filter(learner_id=learner_id).values_list(
            "level", "fail_streak", "fail_streak_difficulty", "attempts", "recent"
        )
    )
    return mastery, reviews, state


def test_the_same_attempts_through_a_session_and_a_study_task_give_the_same_learner_model(learner_client) -> None:
    publish_shout_track()
    alice, bob = learner_client("alice"), learner_client("bob")
    start = timezone.now().replace(microsecond=0)

    with time_machine.travel(start, tick=False):
        session = alice.post("/v1/sessions", {"subject": "coding", "mode": "practice", "problem_id": "shout"}, format="json")
        assert session.status_code == 201, session.content
        path = _start_path(bob)
    task = next(t for t in path["upcoming_tasks"] if t["problem"]["slug"] == "shout")

    for code in (WRONG, RIGHT):
        with time_machine.travel(start, tick=False):
            if code == RIGHT:  # a hint before the right answer: a pass after hints counts for less
                hint = {"session_id": session.json()["id"], "problem_id": "shout", "hint_level": 3}
                assert alice.post("/v1/tutor/messages", hint, format="json").status_code == 202
                assert bob.post(f"/v1/study-tasks/{task['id']}/hint", {"level": 3}, format="json").status_code == 202
            via_session = alice.post(
                "/v1/submissions",
                {
                    "session_id": session.json()["id"],
                    "problem_id": "shout",
                    "subject": "coding",
                    "payload": {"language": "python", "code": code},
                },
                format="json",
            )
            via_task = bob.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": code}, format="json")
        assert via_session.status_code == via_task.status_code == 200
        assert via_session.json()["status"] == via_task.json()["status"]

    alice_model, bob_model = _learner_model("alice"), _learner_model("bob")
    assert alice_model == bob_model
    assert alice_model[0] and alice_model[2]  # a miss then a pass after a hint were recorded
    assert [reason for _, reason, *_ in alice_model[1]] == ["fail"]


# --- two submits at once (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.requires_services
def test_two_concurrent_submits_of_a_task_grade_each_accepted_submission_once(learner_client, fake_grader) -> None:
    """A task takes one submission at a time: the submit locks the task row, so the second
    request waits for the first to commit and then finds the task `submitted` (409
    `study_task_awaiting_verdict`) — or, had the first verdict already arrived, is a second
    attempt of its own. Either way every accepted submission has exactly one evaluation and the
    counts agree. The slow grader makes the first case the usual one."""
    import threading

    from tests.personalization.factories import FAIL

    publish_shout_track()
    fake_grader.answer = dict(FAIL)
    fake_grader.delay_seconds = 2
    alice = learner_client("alice")
    task = next(t for t in _start_path(alice, attempts_per_task=3)["upcoming_tasks"] if t["problem"]["slug"] == "shout")
    barrier = threading.Barrier(2)
    responses: list = []

    def submit(code: str) -> None:
        try:
            client = learner_client("alice")
            barrier.wait(timeout=10)
            responses.append(
                client.post(f"/v1/study-tasks/{task['id']}/submit", {"language": "python", "code": code}, format="json")
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(code,)) for code in (WRONG, WRONG + "# again\n")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(responses) == 2
    accepted = [r for r in responses if r.status_code in (200, 202)]
    refused = [r for r in responses if r.status_code == 409]
    assert len(accepted) + len(refused) == 2 and accepted
    for response in refused:
        assert response.json()["error"]["code"] == "study_task_awaiting_verdict"
    submissions = Submission.objects.filter(origin="study_task", origin_id=task["id"])
    assert sorted(str(s.id) for s in submissions) == sorted(r.json()["id"] for r in accepted)
    for submission in submissions:
        submission.refresh_from_db()
    row = StudyTask.objects.get(id=task["id"])
    evaluations = TaskEvaluation.objects.filter(task=row)
    assert sorted(e.submission_id for e in evaluations) == sorted(s.id for s in submissions)
    assert row.attempt_count == len(accepted) and row.status == "in_progress"
    kinds = [kind for _, kind, _ in events_of(row)]
    assert kinds == ["created", "started", *(["submitted", "evaluated"] * len(accepted))]
