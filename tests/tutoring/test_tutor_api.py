"""POST /v1/tutor/messages and GET /v1/tutor/stream in-process: the turn, its bookkeeping, the
hint ladder, tokens, ownership, limits, and hidden data kept out of everything."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from co_project.models import TelemetryEvent
from sessions_app.models import Session, SessionProblem
from tests.tracks.factories import add_problem, pack_document, publish
from tests.tutoring.conftest import (
    LONG_INPUT_REMEDIATION,
    SECRET_MARKERS,
    answer_text,
    math_pack,
    open_session,
    parse_sse,
    read_stream,
)
from tutoring.models import TutorTurn
from tutoring.slots import stream_slots
from tutoring.tutors import WITHHELD

pytestmark = pytest.mark.django_db

SHOUT_HINTS = ["Strings have methods.", "Look for a case conversion method.", "Call the upper-casing method on text."]


@pytest.fixture(autouse=True)
def _fast_tutor(settings) -> None:
    settings.CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS = 0
    settings.CO_TUTOR_BASE = None


def _ask(client, session_id: str, level: int = 1, problem: str = "shout", **extra) -> dict:
    response = client.post(
        "/v1/tutor/messages", {"session_id": session_id, "problem_id": problem, "hint_level": level, **extra}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def _stream(url: str, **headers: str) -> tuple[int, list]:
    response = Client().get(url.replace("http://testserver", ""), **headers)
    if not response.streaming:
        return response.status_code, response.json()
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache, no-transform"
    return response.status_code, parse_sse(read_stream(response))


def test_a_hint_turn_is_accepted_counted_and_streamed(published, api) -> None:
    session_id = open_session(api)

    started = _ask(api, session_id, level=2)

    assert set(started) == {"turn_id", "stream_url", "token", "expires_at"}
    assert started["stream_url"] == f"http://testserver/v1/tutor/stream?token={started['token']}"
    turn = TutorTurn.objects.get()
    assert str(turn.id) == started["turn_id"]
    assert (turn.learner_id, turn.hint_level, turn.outcome, turn.tutor, turn.content) == ("alice", 2, "pending", "builtin", "")
    assert started["token"] not in turn.token_digest
    row = SessionProblem.objects.get(session_id=session_id)
    assert (row.hints_used, row.max_hint_level) == (1, 2)
    assert Session.objects.get(id=session_id).last_hint_level == 2
    event = TelemetryEvent.objects.get(event="hint_request")
    assert (event.user_id, str(event.session_id), event.problem_id) == ("alice", session_id, "shout")
    assert event.attrs == {"level": 2, "turn_id": started["turn_id"], "tutor": "builtin"}

    status, events = _stream(started["stream_url"])

    assert status == 200
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"} and len(names) > 5
    assert events[0][1] == {"turn_id": started["turn_id"], "hint_level": 2, "tutor": "builtin"}
    assert events[-1][1] == {"turn_id": started["turn_id"], "hint_level": 2, "tutor": "builtin", "outcome": "ok"}
    turn.refresh_from_db()
    assert turn.outcome == "ok" and turn.finished_at is not None and turn.stream_opened_at is not None
    assert turn.content == answer_text(events)
    assert turn.content.startswith(f"Hint 2 of 3 (an approach): {SHOUT_HINTS[1]}\nIt builds on the nudge: {SHOUT_HINTS[0]}")


def test_levels_one_two_three_are_a_nudge_an_approach_and_a_near_solution(published, api) -> None:
    session_id = open_session(api)
    answers = {}
    for level in (1, 2, 3):
        _, events = _stream(_ask(api, session_id, level=level)["stream_url"])
        answers[level] = answer_text(events)

    assert answers[1].startswith(f"Hint 1 of 3 (a nudge): {SHOUT_HINTS[0]}\n\n")
    assert SHOUT_HINTS[1] not in answers[1] and SHOUT_HINTS[2] not in answers[1]
    assert answers[1].endswith("Think it through and try again before asking for more.")
    assert answers[2].startswith(f"Hint 2 of 3 (an approach): {SHOUT_HINTS[1]}")
    assert SHOUT_HINTS[2] not in answers[2]
    assert answers[3].startswith(f"Hint 3 of 3 (nearly the solution): {SHOUT_HINTS[2]}\nThe approach was: {SHOUT_HINTS[1]}")
    assert answers[3].endswith("Write the code yourself from these steps; the tutor never shows the solution code.")
    assert "return text.upper()" not in answers[3]
    row = SessionProblem.objects.get(session_id=session_id)
    assert (row.hints_used, row.max_hint_level) == (3, 3)


@pytest.mark.django_db(transaction=True)  # the verdict is queued on commit
def test_the_answer_uses_the_last_result_and_the_remediation_of_what_failed(published, api) -> None:
    session_id = open_session(api)
    # Upper-cases only long strings: fails the visible "hi" and the hidden `mixed-case` case only.
    code = "def shout(text):\n    return text.upper() if len(text) > 5 else text\n"
    submitted = api.post(
        "/v1/submissions",
        {"session_id": session_id, "problem_id": "shout", "subject": "coding", "payload": {"language": "python", "code": code}},
        format="json",
    )
    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["hidden"]["categories"] == ["mixed-case"]

    _, events = _stream(_ask(api, session_id, level=1, code=code, language="python")["stream_url"])
    answer = answer_text(events)

    assert "Your last submission ended as failed. Visible tests: 1 of 3 passed." in answer
    assert 'The first failing visible test (wrong_answer): input {"text": "hi"}, expected "HI", got "hi".' in answer
    assert "Hidden tests failed in: mixed-case." in answer
    assert "What to study for what failed:\n- mixed-case: Mixed case strings need care." in answer
    # The remediation of a category the learner did not fail stays unseen.
    assert LONG_INPUT_REMEDIATION not in answer
    assert LONG_INPUT_REMEDIATION not in json.dumps(TutorTurn.objects.get().context)


@pytest.mark.django_db(transaction=True)  # the verdict is queued on commit
def test_hidden_tests_references_and_math_answers_reach_no_event_log_or_stored_turn(published, api, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    publish(math_pack())
    coding_session = open_session(api)
    wrong = "def shout(text):\n    return text\n"
    result = api.post(
        "/v1/submissions",
        {
            "session_id": coding_session,
            "problem_id": "shout",
            "subject": "coding",
            "payload": {"language": "python", "code": wrong},
        },
        format="json",
    ).json()
    assert result["hidden"]["categories"] == ["long-input", "mixed-case"]
    math_session = open_session(api, problem="expand-square", subject="math")
    raw_streams = []
    for session_id, problem in ((coding_session, "shout"), (math_session, "expand-square")):
        for level in (1, 2, 3):
            started = _ask(api, session_id, level=level, problem=problem, message="What is the answer?", code=wrong)
            response = Client().get(started["stream_url"].replace("http://testserver", ""))
            raw_streams.append(read_stream(response).decode())

    turns = list(TutorTurn.objects.values("context", "content", "message", "error_reason"))
    assert len(turns) == 6 and all(t["content"] for t in turns)
    # The learner failed `long-input`, so its remediation is theirs to see; the rest is secret.
    assert LONG_INPUT_REMEDIATION in raw_streams[0]
    haystacks = {
        "sse": "\n".join(raw_streams),
        "stored turns": json.dumps(turns),
        "logs": "\n".join(record.getMessage() + json.dumps(record.__dict__, default=str) for record in caplog.records),
        "telemetry": json.dumps(list(TelemetryEvent.objects.values("attrs", "problem_id"))),
    }
    for where, text in haystacks.items():
        for marker in SECRET_MARKERS:
            assert marker not in text, f"{marker} leaked into {where}"


def test_a_near_solution_hint_quoting_the_reference_is_withheld(db, api) -> None:
    quoting = add_problem(hints=["Think about the plus sign.", "Add them.", "Type exactly: return a + b"])
    publish(pack_document(track_slug="quoting", problems=[quoting]))
    session_id = open_session(api, problem="add-numbers")

    _, events = _stream(_ask(api, session_id, level=3, problem="add-numbers")["stream_url"])
    answer = answer_text(events)

    assert f"Hint 3 of 3 (nearly the solution): Type exactly: {WITHHELD}" in answer
    assert "return a + b" not in answer
    assert "return a + b" not in TutorTurn.objects.get().content


def test_a_stream_token_is_single_use(published, api) -> None:
    started = _ask(api, open_session(api))
    assert _stream(started["stream_url"])[0] == 200

    status, body = _stream(started["stream_url"])

    assert status == 401
    assert body["error"] == {
        "code": "stream_token_invalid",
        "message": "The stream token is unknown, already used or expired; request a new hint turn.",
        "fields": {},
    }
    assert body["request_id"]


def test_missing_unknown_and_expired_tokens_are_401(published, api, settings) -> None:
    settings.CO_TUTOR_STREAM_TOKEN_SECONDS = 0
    expired = _ask(api, open_session(api))

    missing = _stream("/v1/tutor/stream")
    unknown = _stream("/v1/tutor/stream?token=not-a-token")
    too_late = _stream(expired["stream_url"])

    assert missing == (401, missing[1]) and missing[1]["error"]["code"] == "not_authenticated"
    assert unknown[0] == too_late[0] == 401
    assert unknown[1]["error"]["code"] == too_late[1]["error"]["code"] == "stream_token_invalid"
    assert TutorTurn.objects.get().stream_opened_at is None


def test_another_learners_session_is_404_and_changes_nothing(published, api, learner_client) -> None:
    session_id = open_session(api)

    response = learner_client("bob").post(
        "/v1/tutor/messages", {"session_id": session_id, "problem_id": "shout", "hint_level": 1}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert TutorTurn.objects.count() == 0
    assert SessionProblem.objects.get(session_id=session_id).hints_used == 0
    assert not TelemetryEvent.objects.filter(event="hint_request").exists()


def test_a_stream_opened_with_another_learners_authorization_is_404(published, api, make_token) -> None:
    started = _ask(api, open_session(api))

    status, body = _stream(started["stream_url"], HTTP_AUTHORIZATION=f"Bearer {make_token('bob')}")

    assert status == 404 and body["error"]["code"] == "not_found"
    # Refused before redemption: the owner can still open it (with or without their header).
    status, events = _stream(started["stream_url"], HTTP_AUTHORIZATION=f"Bearer {make_token('alice')}")
    assert status == 200 and events[-1][0] == "done"


def test_the_problem_must_be_the_sessions_and_the_session_active(published, api) -> None:
    session_id = open_session(api)

    other_problem = api.post(
        "/v1/tutor/messages", {"session_id": session_id, "problem_id": "add-numbers", "hint_level": 1}, format="json"
    )
    assert api.patch(f"/v1/sessions/{session_id}", {"action": "giveup"}, format="json").status_code == 200
    ended = api.post("/v1/tutor/messages", {"session_id": session_id, "problem_id": "shout", "hint_level": 1}, format="json")

    assert other_problem.status_code == 409
    assert other_problem.json()["error"]["fields"] == {"problem_id": ["Not a problem of this session."]}
    assert ended.status_code == 409 and ended.json()["error"]["code"] == "session_not_active"
    assert TutorTurn.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"hint_level": 0}, 400, "hint_level"),
        ({"hint_level": 4}, 400, "hint_level"),
        ({"hint_level": 1, "last_eval": {"visible": {"passed": -1}}}, 400, "last_eval"),
        ({"hint_level": 1, "language": "cobol"}, 400, "language"),
        ({"hint_level": "2"}, 400, "hint_level"),
        ({"hint_level": 1, "code": 12}, 400, "code"),
        ({"hint_level": 1, "message": ["why?"]}, 400, "message"),
    ],
)
def test_invalid_requests_are_400(published, api, body: dict, status: int, field: str) -> None:
    response = api.post("/v1/tutor/messages", {"session_id": open_session(api), "problem_id": "shout", **body}, format="json")

    assert response.status_code == status
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["fields"]) == [field]
    assert TutorTurn.objects.count() == 0


def test_code_over_64_kib_is_413(published, api) -> None:
    response = api.post(
        "/v1/tutor/messages",
        {"session_id": open_session(api), "problem_id": "shout", "hint_level": 1, "code": "x" * (64 * 1024 + 1)},
        format="json",
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "code_too_large"


def test_hint_requests_are_rate_limited_per_learner(published, api, learner_client, settings) -> None:
    settings.CO_TUTOR_HINT_RATE = "2/min"
    session_id = open_session(api)
    statuses = [
        api.post("/v1/tutor/messages", {"session_id": session_id, "problem_id": "shout", "hint_level": 1}, format="json")
        for _ in range(3)
    ]
    bob = learner_client("bob")
    bob_session = open_session(bob)

    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert statuses[2].json()["error"]["code"] == "throttled"
    assert int(statuses[2]["Retry-After"]) >= 1
    assert TutorTurn.objects.filter(learner_id="alice").count() == 2
    assert SessionProblem.objects.get(session_id=session_id).hints_used == 2
    # Another learner has their own allowance.
    assert _ask(bob, bob_session)["turn_id"]


def test_a_learner_holding_max_streams_gets_429_and_keeps_the_token(published, api, settings) -> None:
    settings.CO_SSE_MAX_STREAMS = 2
    started = _ask(api, open_session(api))
    slots = stream_slots()
    assert async_to_sync(slots.acquire)("alice", "held-1") and async_to_sync(slots.acquire)("alice", "held-2")

    status, body = _stream(started["stream_url"])

    assert status == 429
    assert body["error"]["code"] == "too_many_streams"
    assert TutorTurn.objects.get().stream_opened_at is None
    async_to_sync(slots.release)("alice", "held-1")
    status, events = _stream(started["stream_url"])
    assert status == 200 and events[-1][0] == "done"
    # The finished stream gave its slot back: only the one still held remains.
    assert async_to_sync(slots.held)("alice") == 1
    async_to_sync(slots.release)("alice", "held-2")


def test_heartbeats_are_sent_while_the_answer_is_slow(published, api, settings) -> None:
    settings.CO_TUTOR_HEARTBEAT_SECONDS = 0.05
    settings.CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS = 0.12

    _, events = _stream(_ask(api, open_session(api))["stream_url"])

    assert ("comment", "heartbeat") in events
    assert events[-1][0] == "done"
