"""The LLM tutor against a real OpenAI-compatible streaming server started by the test: deltas
relayed as `token` events, level-keeping system prompts, the allow-listed context as the prompt,
and the built-in fallback (with a `fallback` event) on errors, stalls and broken streams."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.test import Client

from tests.servers import FakeChatCompletions
from tests.tutoring.conftest import LONG_INPUT_REMEDIATION, SECRET_MARKERS, answer_text, open_session, parse_sse, read_stream
from tutoring.models import TutorTurn

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(settings) -> Iterator[FakeChatCompletions]:
    with FakeChatCompletions() as server:
        settings.CO_TUTOR_BASE = server.url
        settings.CO_TUTOR_MODEL = "tutor-small"
        settings.CO_TUTOR_API_KEY = "sk-test-key"
        settings.CO_TUTOR_READ_TIMEOUT_SECONDS = 0.5
        settings.CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS = 0
        yield server


def _turn(api, session_id: str, level: int = 1, **extra) -> list:
    started = api.post(
        "/v1/tutor/messages", {"session_id": session_id, "problem_id": "shout", "hint_level": level, **extra}, format="json"
    )
    assert started.status_code == 202, started.content
    response = Client().get(started.json()["stream_url"].replace("http://testserver", ""))
    assert response.status_code == 200
    return parse_sse(read_stream(response))


def test_the_models_deltas_are_relayed_as_tokens(published, api, model: FakeChatCompletions) -> None:
    model.deltas = ["Which ", "string method ", "changes case?"]
    session_id = open_session(api)

    events = _turn(api, session_id, level=1, message="I am stuck", code="def shout(text):\n    return text\n", language="python")

    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and set(names[1:-1]) == {"token"}
    assert events[0][1]["tutor"] == "llm"
    assert answer_text(events) == "Which string method changes case?"
    assert events[-1][1]["outcome"] == "ok" and events[-1][1]["tutor"] == "llm"
    turn = TutorTurn.objects.get()
    assert (turn.outcome, turn.tutor, turn.content) == ("ok", "llm", "Which string method changes case?")

    (body,) = model.bodies
    assert model.headers[0]["authorization"] == "Bearer sk-test-key"
    assert body["model"] == "tutor-small" and body["stream"] is True and body["max_tokens"] == 400
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert "level 1 of 3 (nudge)" in system["content"] and "Never write code" in system["content"]
    assert "Return `text` in upper case." in user["content"]
    assert "def shout(text):\n    return text\n" in user["content"]
    assert "I am stuck" in user["content"]
    assert "1. (nudge) Strings have methods." in user["content"]
    assert "Look for a case conversion method." not in user["content"]  # level 2's hint is not given at level 1


def test_each_level_has_its_own_instructions(published, api, model: FakeChatCompletions) -> None:
    session_id = open_session(api)
    for level in (1, 2, 3):
        _turn(api, session_id, level=level)

    systems = [body["messages"][0]["content"] for body in model.bodies]
    assert "NUDGE" in systems[0] and "APPROACH" in systems[1] and "NEAR-SOLUTION" in systems[2]
    assert len(set(systems)) == 3
    assert "3. (near-solution) Call the upper-casing method on text." in model.bodies[2]["messages"][1]["content"]


@pytest.mark.django_db(transaction=True)  # the verdict is queued on commit
def test_the_prompt_holds_no_hidden_test_reference_or_generator(published, api, model: FakeChatCompletions) -> None:
    session_id = open_session(api)
    wrong = "def shout(text):\n    return text\n"
    api.post(
        "/v1/submissions",
        {"session_id": session_id, "problem_id": "shout", "subject": "coding", "payload": {"language": "python", "code": wrong}},
        format="json",
    )
    for level in (1, 2, 3):
        _turn(api, session_id, level=level, code=wrong, language="python")

    sent = json.dumps(model.bodies)
    assert len(model.bodies) == 3
    prompt = model.bodies[0]["messages"][1]["content"]
    assert '"failed_categories": ["long-input", "mixed-case"]' in prompt
    assert LONG_INPUT_REMEDIATION in sent  # failed, so the learner may see it
    for marker in SECRET_MARKERS:
        assert marker not in sent


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ({"status": 500}, "answered HTTP 500"),
        ({"first_delay_seconds": 5.0}, "timed out"),
        ({"drop_after": 1}, "ended without [DONE]"),
    ],
)
def test_a_failing_model_falls_back_to_the_builtin_tutor_and_says_so(
    published, api, model: FakeChatCompletions, caplog, behaviour: dict, reason: str
) -> None:
    for name, value in behaviour.items():
        setattr(model, name, value)
    session_id = open_session(api)

    events = _turn(api, session_id, level=2)

    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done"
    assert names.count("fallback") == 1
    fallback = dict(events)["fallback"]
    assert fallback == {
        "reason": "tutor_unavailable",
        "message": "The tutor model did not answer in time; here is the built-in hint instead.",
        "tutor": "builtin",
    }
    assert events[-1][1]["outcome"] == "fallback" and events[-1][1]["tutor"] == "builtin"
    answer = answer_text(events)
    assert answer.startswith("Hint 2 of 3 (an approach): Look for a case conversion method.")
    turn = TutorTurn.objects.get()
    assert (turn.outcome, turn.tutor, turn.content) == ("fallback", "builtin", answer)
    assert reason in turn.error_reason
    assert any(reason in str(getattr(record, "reason", "")) for record in caplog.records)


def test_a_model_that_stalls_past_the_total_bound_falls_back(published, api, model: FakeChatCompletions, settings) -> None:
    settings.CO_TUTOR_TOTAL_TIMEOUT_SECONDS = 0.3
    model.deltas = ["one ", "two ", "three ", "four "]
    model.delay_seconds = 0.2  # each chunk within the read timeout, the whole answer past the bound

    events = _turn(api, open_session(api))

    assert "fallback" in [name for name, _ in events]
    assert TutorTurn.objects.get().error_reason == "the tutor model took too long"
