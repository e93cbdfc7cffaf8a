"""`POST /v1/study-tasks/{id}/hint` through the HTTP API: the tutor's own turn, stream and limits;
the hint counted on the task and what was shown kept in its events; no hidden data; ownership."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from co_project.models import TelemetryEvent
from study_paths.models import StudyTask, TaskEvent
from tests.study_paths.factories import events_of
from tests.study_paths.test_attempts import _envelope, _no_hidden_data, _start_path, publish_shout_track
from tests.tutoring.conftest import answer_text, parse_sse, read_stream
from tutoring.models import TutorTurn

# The hint itself writes in one transaction (no queue); the stream's end is recorded by the view.
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_tutor(settings) -> None:
    settings.CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS = 0
    settings.CO_TUTOR_BASE = None


def _shout_task(api) -> dict:
    publish_shout_track()
    return next(t for t in _start_path(api)["upcoming_tasks"] if t["problem"]["slug"] == "shout")


def _stream(url: str) -> list:
    response = Client().get(url.replace("http://testserver", ""))
    assert response.status_code == 200 and response.streaming
    return parse_sse(read_stream(response))


def test_a_hint_is_counted_streamed_and_kept_in_the_tasks_events(api) -> None:
    task = _shout_task(api)

    response = api.post(f"/v1/study-tasks/{task['id']}/hint", {"level": 2, "message": "stuck"}, format="json")

    assert response.status_code == 202, response.content
    started = response.json()
    assert set(started) == {"turn_id", "stream_url", "token", "expires_at"}
    assert started["stream_url"] == f"http://testserver/v1/tutor/stream?token={started['token']}"
    turn = TutorTurn.objects.get()
    assert (turn.learner_id, turn.session_id, turn.origin, str(turn.origin_id), turn.hint_level) == (
        "alice",
        None,
        "study_task",
        task["id"],
        2,
    )
    row = StudyTask.objects.get(id=task["id"])
    assert (row.status, row.hint_count, row.metadata["max_hint_level"]) == ("in_progress", 1, 2)
    assert TelemetryEvent.objects.get(event="hint_request").attrs == {
        "level": 2,
        "turn_id": started["turn_id"],
        "tutor": "builtin",
        "origin": "study_task",
    }

    events = _stream(started["stream_url"])

    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and set(names[1:-1]) == {"token"}
    shown = answer_text(events)
    assert shown.startswith("Hint 2 of 3 (an approach): Look for a case conversion method.")
    history = events_of(row)
    assert [(sequence, kind) for sequence, kind, _ in history] == [
        (1, "created"),
        (2, "started"),
        (3, "hint_requested"),
        (4, "hint_requested"),
    ]
    assert history[1][2] == {"via": "hint"}
    assert history[2][2] == {"stage": "requested", "level": 2, "turn_id": started["turn_id"]}
    assert history[3][2] == {"stage": "shown", "level": 2, "turn_id": started["turn_id"], "outcome": "ok", "content": shown}
    _no_hidden_data(response.content.decode(), json.dumps(list(TaskEvent.objects.values("payload")), default=str))
    _no_hidden_data(json.dumps(TutorTurn.objects.get().context))


def test_the_highest_hint_level_is_what_the_learner_model_hears(api) -> None:
    task = _shout_task(api)
    for level in (1, 3, 2):
        assert api.post(f"/v1/study-tasks/{task['id']}/hint", {"level": level}, format="json").status_code == 202

    row = StudyTask.objects.get(id=task["id"])
    assert (row.hint_count, row.metadata["max_hint_level"]) == (3, 3)


def test_hint_errors_use_the_envelope_and_change_nothing(api, learner_client) -> None:
    task = _shout_task(api)
    url = f"/v1/study-tasks/{task['id']}/hint"

    _envelope(api.post(url, {"level": 4}, format="json"), 400, "validation_error")
    _envelope(api.post(url, {}, format="json"), 400, "validation_error")
    _envelope(learner_client("bob").post(url, {"level": 1}, format="json"), 404, "not_found")
    _envelope(api.post("/v1/study-tasks/nope/hint", {"level": 1}, format="json"), 404, "not_found")
    StudyTask.objects.filter(id=task["id"]).update(status="passed")
    _envelope(api.post(url, {"level": 1}, format="json"), 409, "study_task_finished")

    assert TutorTurn.objects.count() == 0
    assert StudyTask.objects.get(id=task["id"]).hint_count == 0
    assert [kind for _, kind, _ in events_of(StudyTask.objects.get(id=task["id"]))] == ["created"]


def test_hints_share_the_tutors_per_learner_rate(api, settings) -> None:
    settings.CO_TUTOR_HINT_RATE = "2/min"
    task = _shout_task(api)
    url = f"/v1/study-tasks/{task['id']}/hint"

    assert [api.post(url, {"level": 1}, format="json").status_code for _ in range(2)] == [202, 202]
    _envelope(api.post(url, {"level": 1}, format="json"), 429, "throttled")
    assert StudyTask.objects.get(id=task["id"]).hint_count == 2
