"""The evaluation pipeline through the HTTP API, with the remote eval service (a real HTTP server
the test starts): create → commit → enqueue on commit → grade → persist → emit; idempotency;
bad input changes nothing; retries, the sweeper, and exactly one verdict."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from co_project.models import TelemetryEvent
from submissions import services
from submissions.models import Submission, SubmissionStatus
from submissions.services import evaluate, wait
from tests.servers import FakeEvalService
from tests.tracks.factories import HIDDEN_MARKERS, math_problem, pack_document, publish

pytestmark = pytest.mark.django_db(transaction=True)

PASSED_ANSWER = {
    "status": "passed",
    "visible": {
        "passed": 3,
        "total": 3,
        "details": [{"index": 0, "input": {"text": "hi"}, "expected": "HI", "actual": "HI", "outcome": "passed", "secret": "x"}],
    },
    "hidden": {"passed": 4, "total": 4, "categories": []},
    "exec_ms": 12,
}


@pytest.fixture
def eval_service(settings) -> Iterator[FakeEvalService]:
    with FakeEvalService(answer=dict(PASSED_ANSWER)) as service:
        settings.CO_EVAL_BASE = service.url
        settings.CO_EVAL_RETRIES = 2
        settings.CO_EVAL_RETRY_BACKOFF_SECONDS = 0.01
        settings.CO_EVAL_TIMEOUT_SECONDS = 2
        yield service


@pytest.fixture
def published() -> None:
    publish(pack_document())


def coding(problem: str = "shout", code: str = "def shout(text):\n    return text.upper()\n", **extra) -> dict:
    return {"problem_id": problem, "subject": "coding", "payload": {"language": "python", "code": code}, **extra}


def submission_counts() -> tuple[int, int]:
    return Submission.objects.count(), TelemetryEvent.objects.filter(event__in=["attempt_submit", "attempt_run"]).count()


def test_remote_eval_verdict_is_mapped_and_stored(api, eval_service, published) -> None:
    response = api.post("/v1/submissions", coding(), format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    submission = Submission.objects.get()
    assert body["id"] == str(submission.id)
    assert body["status"] == "passed"
    assert body["kind"] == "submit"
    assert body["visible"]["passed"] == 3 and body["visible"]["total"] == 3
    # Only known detail fields are relayed.
    assert body["visible"]["details"] == [
        {
            "index": 0,
            "input": {"text": "hi"},
            "expected": "HI",
            "actual": "HI",
            "outcome": "passed",
            "time_ms": None,
            "error": None,
        }
    ]
    assert body["hidden"] == {"passed": 4, "total": 4, "categories": []}
    assert body["remediation"] == [] and body["error"] is None and body["isolation"] == "remote"
    assert submission.status == SubmissionStatus.PASSED and submission.attempts == 1
    # The eval service got the harness and the hidden tests (server to server) ...
    sent = eval_service.bodies[0]
    assert sent["language"] == "python" and sent["harness"]["entrypoint"] == "shout"
    assert sent["harness"]["parameters"] == ["text"]
    assert len(sent["hidden_spec"]["tests"]) == 4
    # ... which never come back to the learner.
    for marker in HIDDEN_MARKERS:
        if "remediation" not in marker:
            assert marker.lower() not in response.content.decode().lower()
    event = TelemetryEvent.objects.exclude(event="problem_open").get()
    assert (event.event, event.user_id, event.problem_id) == ("attempt_submit", "alice", "shout")
    assert event.attrs["status"] == "passed" and event.attrs["submission_id"] == str(submission.id)
    assert api.get(f"/v1/submissions/{submission.id}").json() == body


def test_failed_categories_come_with_remediation_and_unknown_categories_are_dropped(api, eval_service, published) -> None:
    eval_service.answer = {
        **PASSED_ANSWER,
        "status": "failed",
        "hidden": {"passed": 2, "total": 4, "categories": ["long-input", "made-up"]},
    }
    body = api.post("/v1/submissions", coding(), format="json").json()
    assert body["status"] == "failed"
    assert body["hidden"] == {"passed": 2, "total": 4, "categories": ["long-input"]}
    assert body["remediation"] == [{"category": "long-input", "text": "zqx-remediation-5c7d"}]


def test_run_kind_sends_no_hidden_tests_and_is_not_graded(api, eval_service, published) -> None:
    body = api.post("/v1/submissions", coding(kind="run"), format="json").json()
    assert body["kind"] == "run" and body["hidden"] is None
    assert eval_service.bodies[0]["hidden_spec"]["tests"] == []
    assert TelemetryEvent.objects.exclude(event="problem_open").get().event == "attempt_run"


def test_eval_service_errors_are_retried_with_backoff(api, eval_service, published) -> None:
    eval_service.fail_first = 2
    body = api.post("/v1/submissions", coding(), format="json").json()
    assert body["status"] == "passed"
    assert len(eval_service.bodies) == 3


def test_eval_service_down_ends_in_error_with_the_reason(api, eval_service, published) -> None:
    eval_service.fail_first = 100
    body = api.post("/v1/submissions", coding(), format="json").json()
    assert len(eval_service.bodies) == 3  # first try + 2 retries
    assert body["status"] == "error"
    assert body["error"] == {
        "kind": "eval_service",
        "message": "The evaluation service could not be reached: eval service unreachable after 3 attempts (HTTP 500).",
    }
    submission = Submission.objects.get()
    assert submission.status == SubmissionStatus.ERROR
    assert submission.error_reason.startswith("The evaluation service could not be reached")


def test_unreachable_eval_service_ends_in_error_never_pending(api, eval_service, published) -> None:
    eval_service.stop()
    body = api.post("/v1/submissions", coding(), format="json").json()
    assert body["status"] == "error"
    assert body["error"]["kind"] == "eval_service"
    assert "ConnectError" in body["error"]["message"]


def test_same_idempotency_key_returns_the_first_submission(api, eval_service, published) -> None:
    first = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert submission_counts() == (1, 1)
    assert len(eval_service.bodies) == 1


def test_a_replay_answers_the_first_submission_after_its_session_ended(api, eval_service, published) -> None:
    first = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="k-ended")
    session_id = api.practice_sessions[("shout", "coding")]
    assert api.patch(f"/v1/sessions/{session_id}", {"action": "advance"}, format="json").json()["status"] == "completed"
    replay = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="k-ended")
    assert (replay.status_code, replay.json()) == (200, first.json())
    other = api.post("/v1/submissions", coding(code="x = 1\n" * 11000), format="json", HTTP_IDEMPOTENCY_KEY="k-ended")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert submission_counts() == (1, 1)
    assert len(eval_service.bodies) == 1


def test_a_verdict_that_cannot_be_recorded_leaves_the_submission_stored_for_the_sweeper(
    api, eval_service, published, settings, monkeypatch
) -> None:
    settings.CO_SUBMISSION_WAIT_SECONDS = 0.05

    def broken(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(evaluate, "submission_finish", broken)
    response = api.post("/v1/submissions", coding(), format="json")
    assert response.status_code == 202
    assert response.json() == {"id": response.json()["id"], "status": "running"}
    assert Submission.objects.get().status == SubmissionStatus.RUNNING


def test_idempotency_key_is_per_learner(learner_client, eval_service, published) -> None:
    alice = learner_client("alice").post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    bob = learner_client("bob").post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert alice.json()["id"] != bob.json()["id"]


def test_reusing_an_idempotency_key_for_another_request_is_409(api, eval_service, published) -> None:
    api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post(
        "/v1/submissions", coding(code="def shout(text):\n    return text\n"), format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert submission_counts() == (1, 1)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (coding(problem="no-such-problem"), 409, "problem_repository_not_ready"),
        (coding(session_id=str(uuid.uuid4())), 404, "not_found"),
        ({**coding(), "subject": "math"}, 400, "validation_error"),
        ({"problem_id": "shout", "subject": "coding", "payload": {"language": "cobol", "code": "x"}}, 400, "validation_error"),
        ({"problem_id": "shout", "subject": "coding", "payload": {"language": "python"}}, 400, "validation_error"),
        ({"problem_id": "shout", "subject": "coding"}, 400, "validation_error"),
        (coding(code="x = 1\n" * 11000), 413, "code_too_large"),
        ({**coding(), "kind": "later"}, 400, "validation_error"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_changes_nothing(api, eval_service, published, body, status, code) -> None:
    response = api.post("/v1/submissions", body, format="json")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert submission_counts() == (0, 0)
    assert eval_service.bodies == []


def test_code_with_a_lone_surrogate_is_400_and_changes_nothing(api, eval_service, published) -> None:
    code = "def shout(text):\n    return '\udfff'\n"  # JSON carries it as the escape \udfff
    body = json.dumps(coding(code=code, session_id=api.practice_session("shout", "coding")))
    response = api.post("/v1/submissions", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"payload": {"code": ["Surrogate characters are not allowed: U+DFFF."]}}
    assert submission_counts() == (0, 0)


def test_language_the_problem_does_not_offer_is_400(api, eval_service) -> None:
    from tests.tracks.factories import add_problem

    only_python = add_problem()
    del only_python["languages"]["javascript"]
    publish(pack_document(problems=[only_python]))
    response = api.post(
        "/v1/submissions",
        {"problem_id": "add-numbers", "subject": "coding", "payload": {"language": "javascript", "code": "function add(){}"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"payload": {"language": ["Must be one of: python."]}}
    assert submission_counts() == (0, 0)


def test_run_is_for_code_only(api) -> None:
    publish(pack_document(track_slug="m", subject="math", modules=[{"slug": "algebra", "title": "A"}], problems=[math_problem()]))
    body = {"problem_id": "expand-square", "subject": "math", "kind": "run", "payload": {"expression": "x"}}
    response = api.post("/v1/submissions", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"kind": ["Use 'submit'."]}


def test_another_learners_submission_is_404(learner_client, eval_service, published) -> None:
    submission_id = learner_client("alice").post("/v1/submissions", coding(), format="json").json()["id"]
    assert learner_client("bob").get(f"/v1/submissions/{submission_id}").status_code == 404
    assert learner_client("alice").get(f"/v1/submissions/{submission_id}").status_code == 200
    assert learner_client("alice").get("/v1/submissions/not-a-uuid").status_code == 404


def _pending_submission() -> Submission:
    """A submission whose enqueue was lost: its on-commit enqueue never ran."""
    submission, _ = services.submission_create(
        learner_id="alice", problem_ref="shout", subject="coding", payload=coding()["payload"]
    )
    Submission.objects.filter(id=submission.id).update(
        status=SubmissionStatus.PENDING, enqueued_at=None, finished_at=None, started_at=None, claim_token=None, attempts=0
    )
    TelemetryEvent.objects.all().delete()
    return Submission.objects.get(id=submission.id)


def test_sweeper_requeues_a_lost_enqueue(eval_service, published) -> None:
    submission = _pending_submission()  # committed, but its enqueue never reached the broker
    assert services.submission_sweep() == {"requeued": 1, "expired": 0}
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.PASSED
    assert submission.enqueued_at is not None
    assert TelemetryEvent.objects.count() == 1


def test_sweeper_leaves_recently_enqueued_work_alone(eval_service, published) -> None:
    submission = _pending_submission()
    Submission.objects.filter(id=submission.id).update(enqueued_at=timezone.now())
    assert services.submission_sweep() == {"requeued": 0, "expired": 0}


def test_sweeper_reclaims_a_submission_whose_worker_died(eval_service, published, settings) -> None:
    submission = _pending_submission()
    stale = timezone.now() - timedelta(seconds=settings.CO_SUBMISSION_STALE_SECONDS + 1)
    Submission.objects.filter(id=submission.id).update(
        status=SubmissionStatus.RUNNING, claim_token=uuid.uuid4(), started_at=stale, attempts=1
    )
    assert services.submission_sweep() == {"requeued": 1, "expired": 0}
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.PASSED
    assert submission.attempts == 2
    assert TelemetryEvent.objects.count() == 1


def test_a_running_evaluation_that_is_not_stale_is_not_taken_over(eval_service, published) -> None:
    submission = _pending_submission()
    Submission.objects.filter(id=submission.id).update(
        status=SubmissionStatus.RUNNING, claim_token=uuid.uuid4(), started_at=timezone.now(), attempts=1
    )
    assert services.submission_evaluate(submission_id=submission.id) == "skipped"
    assert Submission.objects.get(id=submission.id).status == SubmissionStatus.RUNNING


def test_sweeper_ends_submissions_past_the_deadline_as_error(eval_service, published, settings) -> None:
    submission = _pending_submission()
    old = timezone.now() - timedelta(seconds=settings.CO_SUBMISSION_DEADLINE_SECONDS + 1)
    Submission.objects.filter(id=submission.id).update(created_at=old)
    assert services.submission_sweep() == {"requeued": 0, "expired": 1}
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.ERROR
    assert submission.result["error"] == {
        "kind": "pipeline",
        "message": "Evaluation did not finish in time; please submit again.",
    }
    assert TelemetryEvent.objects.count() == 1


def test_a_duplicated_task_grades_at_most_once(eval_service, published) -> None:
    submission = _pending_submission()
    assert services.submission_evaluate(submission_id=submission.id) == "graded"
    assert services.submission_evaluate(submission_id=submission.id) == "skipped"
    assert len(eval_service.bodies) == 2  # the create-time evaluation and this one
    submission.refresh_from_db()
    assert submission.attempts == 1 and submission.status == SubmissionStatus.PASSED
    assert TelemetryEvent.objects.count() == 1


def test_too_many_attempts_give_up_with_an_error(eval_service, published, settings) -> None:
    submission = _pending_submission()
    Submission.objects.filter(id=submission.id).update(attempts=settings.CO_SUBMISSION_MAX_ATTEMPTS)
    assert services.submission_evaluate(submission_id=submission.id) == "gave-up"
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.ERROR


# --- cost per submission, and waiting --------------------------------------------------------------


def _statements(api, key: str, status: str = "passed") -> list[str]:
    """The SQL of one graded submission, without transaction control (which differs by database)."""
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 200 and response.json()["status"] == status, response.json()
    return [q["sql"] for q in queries if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]


def test_a_graded_submission_costs_the_same_statements_however_long_the_history(api, eval_service, published) -> None:
    api.post("/v1/submissions", coding(), format="json")  # opens the practice session
    first = _statements(api, "key-first")
    for index in range(15):
        api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY=f"key-{index}")
    later = _statements(api, "key-later")
    # Session, the learner's evaluations under way (PostgreSQL: and their lock), insert | claim
    # (returning its row) | verdict, event, session problem (read, write), learner state (lock, write), mastery
    # (read, upsert), review item. The problem comes from the memo, a replay of the key is only
    # looked for when the insert meets it, and the waiting request answers from the verdict's
    # wake-up, without reading the row again.
    expected = 13 + (connection.vendor == "postgresql")
    assert len(first) == len(later) == expected, later
    assert sum(sql.startswith("SELECT") and 'FROM "submissions_submission"' in sql for sql in later) == 1
    assert sum(sql.startswith('UPDATE "submissions_submission"') and "RETURNING" in sql for sql in later) == 1


def test_a_failed_submission_reviews_its_review_item_with_one_read(api, eval_service, published) -> None:
    eval_service.answer = {**PASSED_ANSWER, "status": "failed", "hidden": {"passed": 2, "total": 4, "categories": []}}
    api.post("/v1/submissions", coding(), format="json")  # opens the practice session, creates the review item
    statements = _statements(api, "key-failed", status="failed")
    # As a pass, plus the review: the item is read (the scheduler needs its memory state and
    # predicts recall from it), restarted by one UPDATE, and the review appended to the log.
    assert len(statements) == 15 + (connection.vendor == "postgresql"), statements
    assert sum(sql.startswith("SELECT") and 'FROM "personalization_reviewitem"' in sql for sql in statements) == 1
    assert sum(sql.startswith('UPDATE "personalization_reviewitem"') for sql in statements) == 1
    assert sum(sql.startswith('INSERT INTO "personalization_reviewlog"') for sql in statements) == 1


def test_a_lost_wake_up_only_means_the_next_read_finds_the_verdict(eval_service, published, settings, monkeypatch) -> None:
    settings.REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:9/0"  # wake-ups on (unreachable without Redis)
    submission = _pending_submission()
    waits: list[float] = []

    def lost(*, submission_id: uuid.UUID, timeout: float) -> None:
        waits.append(timeout)
        if len(waits) == 1:  # the worker grades while the request waits ...
            assert services.submission_evaluate(submission_id=submission_id) == "graded"
        return None  # ... but its wake-up never arrives

    monkeypatch.setattr(wait, "verdict_await", lost)
    waited = services.submission_wait(submission=submission, timeout=30)
    assert waited.status == SubmissionStatus.PASSED
    assert waits == [services.WAIT_SLICE_SECONDS]
