"""Sessions through the HTTP API: shapes, validation that changes nothing, ownership (404 for
anyone else), state conflicts (409), submissions tied to the caller's active session, and mock
interviews that end on their own at the deadline with a report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from co_project.models import TelemetryEvent
from personalization.models import ReviewItem
from sessions_app.models import Session, SessionProblem
from sessions_app.services import session_finish_expired_mocks
from submissions.models import Submission
from tests.personalization.factories import LADDER, SimulatedLearner, publish_ladder

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CODE = {"language": "python", "code": "def add(a, b):\n    return a + b\n"}


@pytest.fixture
def ladder() -> None:
    publish_ladder()


def learner(learner_client, fake_grader, name: str) -> SimulatedLearner:
    return SimulatedLearner(learner_client(name, ttl=90 * 86400), fake_grader, name)


def test_practice_session_shape_and_problem_open_event(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    body = alice.start(mode="practice", problem_id="a2")
    assert set(body) == {
        "id",
        "user_id",
        "subject",
        "mode",
        "status",
        "track_id",
        "problem_id",
        "current_problem",
        "attempts",
        "total_attempts",
        "last_hint_level",
        "problems",
        "deadline_at",
        "seconds_remaining",
        "duration_minutes",
        "problem_count",
        "report",
        "created_at",
        "started_at",
        "updated_at",
        "ended_at",
    }
    assert (body["user_id"], body["subject"], body["mode"], body["status"]) == ("alice", "coding", "practice", "active")
    assert body["current_problem"]["slug"] == "a2"
    assert body["problem_id"] == body["current_problem"]["id"]
    assert (body["attempts"], body["last_hint_level"], body["deadline_at"], body["report"]) == (0, 0, None, None)
    assert [p["state"] for p in body["problems"]] == ["open"]
    event = TelemetryEvent.objects.get(event="problem_open")
    assert (event.user_id, str(event.session_id), event.problem_id) == ("alice", body["id"], "a2")

    alice.submit(passed=False)
    session = alice.submit(passed=True) and alice.session
    assert (session["attempts"], session["total_attempts"]) == (2, 2)
    assert session["problems"][0]["state"] == "passed" and session["problems"][0]["last_status"] == "passed"
    assert alice.act("advance")["status"] == "completed"


def test_practice_without_a_problem_is_recommended(learner_client, fake_grader, ladder) -> None:
    body = learner(learner_client, fake_grader, "alice").start(mode="practice")
    assert LADDER[body["current_problem"]["slug"]][1] <= 2
    recommendation = body["problems"][0]["recommendation"]
    assert recommendation["kind"] == "new" and recommendation["reasons"]
    assert TelemetryEvent.objects.filter(event="recommendation_served").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "fields"),
    [
        ({"subject": "coding", "mode": "track"}, 400, "validation_error", {"track_id": ["Required for mode 'track'."]}),
        ({"subject": "coding", "mode": "track", "track_id": "nope"}, 404, "not_found", {"track_id": ["No such track."]}),
        ({"subject": "math", "mode": "track", "track_id": "ladder"}, 400, "validation_error", None),
        ({"subject": "coding", "problem_id": "nope"}, 404, "not_found", {"problem_id": ["No such problem."]}),
        ({"subject": "coding", "mode": "practice", "duration_minutes": 30}, 400, "validation_error", None),
        ({"subject": "coding", "mode": "mock", "duration_minutes": 0}, 400, "validation_error", None),
        ({"subject": "coding", "mode": "mock", "duration_minutes": 181}, 400, "validation_error", None),
        ({"subject": "coding", "mode": "mock", "problem_count": 9}, 400, "validation_error", None),
        ({"subject": "coding", "mode": "speedrun"}, 400, "validation_error", None),
        ({"mode": "practice"}, 400, "validation_error", {"subject": ["This field is required."]}),
        ({"subject": "coding", "problem_id": 7}, 400, "validation_error", {"problem_id": ["Not a valid string."]}),
        ({"subject": "coding", "mode": "mock", "problem_count": "2"}, 400, "validation_error", None),
        ({"subject": "coding", "mode": "mock", "duration_minutes": True}, 400, "validation_error", None),
    ],
)
def test_bad_session_requests_are_4xx_and_change_nothing(api, ladder, body, status, code, fields) -> None:
    response = api.post("/v1/sessions", body, format="json")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    if fields is not None:
        assert response.json()["error"]["fields"] == fields
    assert Session.objects.count() == 0
    assert TelemetryEvent.objects.count() == 0


def test_another_learner_gets_404_on_every_object(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="practice", problem_id="a1")
    submission = alice.submit(passed=False)
    bob = learner_client("bob")
    session_id = alice.session["id"]

    assert bob.get(f"/v1/sessions/{session_id}").status_code == 404
    assert bob.patch(f"/v1/sessions/{session_id}", {"action": "giveup"}, format="json").status_code == 404
    assert bob.get(f"/v1/submissions/{submission['id']}").status_code == 404
    stolen = bob.post(
        "/v1/submissions", {"session_id": session_id, "problem_id": "a1", "subject": "coding", "payload": CODE}, format="json"
    )
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
    assert bob.get("/v1/review-queue").json() == {"items": [], "next": None}
    assert bob.get("/v1/mastery").json() == {"items": [], "next": None}
    assert bob.get("/v1/sessions/not-a-uuid").status_code == 404
    # Nothing of alice's changed.
    assert alice.refresh()["status"] == "active" and Submission.objects.count() == 1


def test_actions_that_do_not_fit_the_state_are_409(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="practice", problem_id="a1")
    alice.submit(passed=True)
    retry = alice.client.patch(f"/v1/sessions/{alice.session['id']}", {"action": "retry"}, format="json")
    assert retry.status_code == 409
    giveup = alice.client.patch(f"/v1/sessions/{alice.session['id']}", {"action": "giveup"}, format="json")
    assert giveup.status_code == 409
    alice.act("advance")
    again = alice.client.patch(f"/v1/sessions/{alice.session['id']}", {"action": "advance"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "session_not_active",
        "message": "This session is completed; 'advance' needs an active session.",
        "fields": {},
    }
    late = alice.client.post(
        "/v1/submissions",
        {"session_id": alice.session["id"], "problem_id": "a1", "subject": "coding", "payload": CODE},
        format="json",
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "session_not_active"
    bad = alice.client.patch(f"/v1/sessions/{alice.session['id']}", {"action": "pause"}, format="json")
    assert bad.status_code == 400
    empty = alice.client.patch(f"/v1/sessions/{alice.session['id']}", {}, format="json")
    assert empty.status_code == 400
    assert empty.json()["error"]["fields"] == {"action": ["This field is required."]}
    assert Submission.objects.count() == 1


def test_retry_reopens_a_given_up_problem_in_a_track_session(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="track", track_id="ladder")
    slug = alice.current["slug"]
    assert alice.act("giveup")["status"] == "active"
    assert alice.session["problems"][-1]["state"] == "given_up"
    session = alice.act("retry")
    assert (session["current_problem"]["slug"], session["problems"][-1]["state"], session["problems"][-1]["retries"]) == (
        slug,
        "open",
        1,
    )
    alice.submit(passed=True)
    assert alice.session["problems"][-1]["state"] == "passed"


def test_submissions_must_name_the_sessions_current_problem(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="practice", problem_id="a1")
    other = alice.client.post(
        "/v1/submissions",
        {"session_id": alice.session["id"], "problem_id": "a2", "subject": "coding", "payload": CODE},
        format="json",
    )
    assert other.status_code == 409
    assert other.json()["error"]["fields"] == {"problem_id": ["Not a problem of this session."]}
    missing = alice.client.post(
        "/v1/submissions",
        {"session_id": str(uuid.uuid4()), "problem_id": "a1", "subject": "coding", "payload": CODE},
        format="json",
    )
    assert missing.status_code == 404
    no_session = alice.client.post(
        "/v1/submissions", {"session_id": None, "problem_id": "a1", "subject": "coding", "payload": CODE}, format="json"
    )
    assert no_session.status_code == 400
    assert Submission.objects.count() == 0


def test_session_detail_query_count_does_not_grow_with_its_length(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="track", track_id="ladder")
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert alice.client.get(f"/v1/sessions/{alice.session['id']}").status_code == 200
        counts.append(len(queries))
        for _ in range(4):
            alice.submit(passed=True)
            alice.act("advance")
    assert len(alice.refresh()["problems"]) == 9
    assert counts[0] == counts[1] == 2


# --- mock interviews -------------------------------------------------------------------------------


def test_mock_defaults_and_bounds(learner_client, fake_grader, ladder) -> None:
    with time_machine.travel(START, tick=False):
        body = learner(learner_client, fake_grader, "alice").start(mode="mock")
    assert (body["duration_minutes"], body["problem_count"]) == (45, 2)
    assert body["deadline_at"] == "2026-11-02T09:45:00+00:00"
    assert len(body["problems"]) == 2 and len({p["problem"]["slug"] for p in body["problems"]}) == 2
    assert TelemetryEvent.objects.filter(event="problem_open").count() == 2

    custom = learner(learner_client, fake_grader, "bob").start(mode="mock", duration_minutes=20, problem_count=3)
    assert (custom["duration_minutes"], custom["problem_count"], len(custom["problems"])) == (20, 3, 3)


def test_mock_refuses_submissions_after_its_deadline_and_ends_on_its_own_with_a_report(
    learner_client, fake_grader, ladder
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        alice = learner(learner_client, fake_grader, "alice")
        alice.start(mode="mock", duration_minutes=30, problem_count=2)
        first, second = (p["problem"]["slug"] for p in alice.session["problems"])
        clock.shift(timedelta(minutes=4))
        alice.hint(1)
        alice.submit(passed=False)
        clock.shift(timedelta(minutes=6))
        alice.submit(passed=True)  # solved after 10 minutes with one hint
        alice.act("advance")
        assert alice.current["slug"] == second
        clock.shift(timedelta(minutes=5))
        alice.submit(passed=False, problem=second)
        assert alice.session["seconds_remaining"] == 15 * 60

        clock.shift(timedelta(minutes=16))  # past the deadline
        late = alice.client.post(
            "/v1/submissions",
            {"session_id": alice.session["id"], "problem_id": second, "subject": "coding", "payload": CODE},
            format="json",
        )
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "mock_finished"
        assert Submission.objects.count() == 3

    # No request closed it (the 409 path finishes it too), so check the sweeper on a second mock.
    session = Session.objects.get(id=alice.session["id"])
    assert session.status == "completed"
    report = session.report
    assert (report["ended_by"], report["solved"], report["total"], report["duration_minutes"]) == ("deadline", 1, 2, 30)
    assert report["problems"] == [
        {
            "problem_id": report["problems"][0]["problem_id"],
            "slug": first,
            "title": f"Problem {first}",
            "difficulty": LADDER[first][1],
            "result": "passed",
            "attempts": 2,
            "time_used_seconds": 600,
            "hints_used": 1,
            "max_hint_level": 1,
            "gaps": [],
        },
        {
            "problem_id": report["problems"][1]["problem_id"],
            "slug": second,
            "title": f"Problem {second}",
            "difficulty": LADDER[second][1],
            "result": "failed",
            "attempts": 1,
            "time_used_seconds": 900,
            "hints_used": 0,
            "max_hint_level": 0,
            "gaps": ["negatives"],
        },
    ]
    gap = ReviewItem.objects.get(learner_id="alice", reason="mock-gap")
    assert (gap.problem.slug, gap.bucket, gap.next_due_at) == (second, 0, START + timedelta(minutes=30, days=1))
    finish = TelemetryEvent.objects.get(event="mock_finish")
    assert finish.attrs == {"solved": 1, "total": 2, "ended_by": "deadline", "gaps": {second: ["negatives"]}}
    shown = alice.client.get(f"/v1/sessions/{alice.session['id']}").json()
    assert shown["status"] == "completed" and shown["report"] == report and shown["seconds_remaining"] == 0


def test_expired_mocks_are_finished_by_the_beat_task_without_any_request(learner_client, fake_grader, ladder, capsys) -> None:
    with time_machine.travel(START, tick=False) as clock:
        alice = learner(learner_client, fake_grader, "alice")
        alice.start(mode="mock", duration_minutes=10, problem_count=1)
        assert session_finish_expired_mocks() == 0
        clock.shift(timedelta(minutes=10))
        call_command("finish_expired_mocks")
        assert capsys.readouterr().out.strip() == "1 mock interview(s) finished."
        assert session_finish_expired_mocks() == 0  # once only
    session = Session.objects.get(id=alice.session["id"])
    assert session.status == "completed" and session.ended_at == START + timedelta(minutes=10)
    assert session.report["problems"][0]["result"] == "not_attempted"
    assert session.report["problems"][0]["gaps"] == ["not attempted"]
    assert TelemetryEvent.objects.filter(event="mock_finish").count() == 1
    assert ReviewItem.objects.get(learner_id="alice").reason == "mock-gap"
    assert SessionProblem.objects.filter(session=session).count() == 1


def test_finishing_a_mock_early_by_advancing_past_the_last_problem(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="mock", problem_count=1)
    alice.submit(passed=True)
    session = alice.act("advance")
    assert session["status"] == "completed"
    assert (session["report"]["ended_by"], session["report"]["solved"]) == ("learner", 1)
    assert not ReviewItem.objects.filter(reason="mock-gap").exists()


def test_beat_schedule_runs_the_learner_model_tasks(settings) -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"sessions.finish_expired_mocks", "personalization.surface_due_reviews", "submissions.sweep"} <= tasks
    from co_project.celery import app

    app.loader.import_default_modules()
    assert {"sessions.finish_expired_mocks", "personalization.surface_due_reviews"} <= set(app.tasks)
