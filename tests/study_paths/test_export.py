"""`GET /v1/study-tasks/export` through the HTTP API: exact CSV and JSON against a generated
history, the date range, ownership, bad parameters, the export's own rate and the query count
per chunk."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from personalization.models import ReviewItem
from study_paths.models import StudyTask, TaskEvaluation, TaskEvent
from study_paths.services import study_path_create
from submissions.models import Submission
from tests.personalization.test_scheduler_revlog import attempt
from tests.study_paths.factories import publish_ladder, publish_wide_track
from tests.study_paths.test_api import _envelope

pytestmark = pytest.mark.django_db

HEADER = (
    "record,task_id,path_id,track,module,problem,kind,difficulty,topics,position,status,attempt_count,hint_count,"
    "due_at,started_at,finished_at,at,sequence,event_type,payload,evaluation_id,submission_id,score,runtime_ms,"
    "peak_memory_kb,visible_passed,visible_total,hidden_passed,hidden_total,failed_categories,visible_details,partial"
)
HIDDEN_INPUT = "HIDDEN-INPUT-7731"
DAY = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _history(learner: str = "alice", *, tasks: int = 4, track: str = "wide") -> list[StudyTask]:
    """A path whose tasks were created one a day from DAY, the first two started (one event
    each) and graded once (an evaluation of a submission whose stored result names a hidden input)."""
    path = study_path_create(learner_id=learner, track=track, config={"batch_size": tasks}, seed=3)
    rows = list(StudyTask.objects.filter(path=path).order_by("position"))
    for index, task in enumerate(rows):
        StudyTask.objects.filter(id=task.id).update(created_at=DAY + timedelta(days=index))
    for index, task in enumerate(rows[:2]):
        submission = Submission.objects.create(
            learner_id=learner,
            problem_id=task.problem_id,
            problem_ref=task.problem_ref,
            subject="coding",
            payload={"language": "python", "code": "pass"},
            payload_sha256="0" * 64,
            hidden_passed=1,
            hidden_total=2,
            result={"hidden": {"input": HIDDEN_INPUT}},
        )
        TaskEvaluation.objects.create(
            task=task,
            submission=submission,
            score=0.5 + index / 2,
            runtime_ms=10 + index,
            visible_passed=1,
            visible_total=1,
            hidden_passed=1,
            hidden_total=2,
            failed_categories=["duplicates"],
            visible_details=[{"index": 0, "outcome": "passed", "passed": True}],
            created_at=DAY + timedelta(days=index, hours=1),
        )
        TaskEvent.objects.create(
            task=task,
            path=path,
            sequence=2,
            event_type="started",
            payload={"via": "test"},
            created_at=DAY + timedelta(days=index),
        )
    return [StudyTask.objects.select_related("path__track", "module").get(id=t.id) for t in rows]


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


JSON_COLUMNS = (8, 19, 29, 30)  # topics, payload, failed_categories, visible_details: JSON text


def _parsed(rows: list[list[str]]) -> list[list[object]]:
    """CSV rows with their JSON cells read (their text is the database's JSON, whose key order varies)."""
    return [[json.loads(cell) if i in JSON_COLUMNS and cell else cell for i, cell in enumerate(row)] for row in rows]


def _expected_csv(tasks: list[StudyTask]) -> list[list[object]]:
    rows = []
    for t in tasks:
        rows.append(
            [
                "task", str(t.id), str(t.path_id), t.path.track.slug, t.module.slug, t.problem_ref, t.kind,
                str(t.difficulty), t.topics, str(t.position), t.status,
                str(t.attempt_count), str(t.hint_count), _iso(t.due_at), _iso(t.started_at), _iso(t.finished_at),
                _iso(t.created_at), *[""] * 15,
            ]
        )  # fmt: skip
        for e in TaskEvaluation.objects.filter(task=t).order_by("created_at"):
            rows.append(
                [
                    "evaluation", str(t.id), str(t.path_id), *[""] * 13, _iso(e.created_at), "", "", "", str(e.id),
                    str(e.submission_id), str(e.score), str(e.runtime_ms), "", "1", "1", "1", "2", ["duplicates"],
                    [{"index": 0, "outcome": "passed", "passed": True}], "false",
                ]
            )  # fmt: skip
        for ev in TaskEvent.objects.filter(task=t).order_by("sequence"):
            payload = ev.payload
            rows.append(
                ["event", str(t.id), str(t.path_id), *[""] * 13, _iso(ev.created_at), str(ev.sequence), ev.event_type, payload,
                 *[""] * 12]
            )  # fmt: skip
    return rows


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_csv_has_every_task_then_its_evaluations_then_its_events(api) -> None:
    publish_wide_track("wide", modules=2, per_module=3)
    tasks = _history()

    response = api.get("/v1/study-tasks/export?format=csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = datetime.now(UTC).date().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="study-tasks-start-{today}.csv"'
    text = _body(response).decode()
    assert text.split("\r\n")[0] == HEADER
    assert _parsed(list(csv.reader(io.StringIO(text)))[1:]) == _expected_csv(tasks)
    assert HIDDEN_INPUT not in text


def test_json_has_every_task_with_its_evaluations_and_events(api) -> None:
    publish_wide_track("wide", modules=2, per_module=3)
    tasks = _history()

    response = api.get("/v1/study-tasks/export?format=json&from=2026-03-02")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="study-tasks-2026-03-02-')
    body = json.loads(_body(response))
    assert HIDDEN_INPUT not in json.dumps(body)
    assert set(body) == {"format", "version", "exported_at", "from", "to", "tasks"}
    assert (body["format"], body["version"], body["from"], body["to"]) == (
        "study-tasks",
        1,
        "2026-03-02T00:00:00+00:00",
        None,
    )
    expected = []
    for t in tasks[1:]:
        expected.append(
            {
                "id": str(t.id),
                "path_id": str(t.path_id),
                "track": "wide",
                "module": t.module.slug,
                "problem": t.problem_ref,
                "kind": t.kind,
                "difficulty": t.difficulty,
                "topics": t.topics,
                "position": t.position,
                "status": t.status,
                "attempt_count": 0,
                "hint_count": 0,
                "due_at": _iso(t.due_at) or None,
                "created_at": _iso(t.created_at),
                "started_at": None,
                "finished_at": None,
                "evaluations": [
                    {
                        "id": str(e.id),
                        "submission_id": str(e.submission_id),
                        "score": e.score,
                        "runtime_ms": e.runtime_ms,
                        "peak_memory_kb": None,
                        "visible_passed": 1,
                        "visible_total": 1,
                        "hidden_passed": 1,
                        "hidden_total": 2,
                        "failed_categories": ["duplicates"],
                        "visible_details": [{"index": 0, "outcome": "passed", "passed": True}],
                        "partial": False,
                        "created_at": _iso(e.created_at),
                    }
                    for e in TaskEvaluation.objects.filter(task=t)
                ],
                "events": [
                    {
                        "sequence": ev.sequence,
                        "event_type": ev.event_type,
                        "payload": ev.payload,
                        "created_at": _iso(ev.created_at),
                    }
                    for ev in TaskEvent.objects.filter(task=t).order_by("sequence")
                ],
            }
        )
    assert body["tasks"] == expected
    assert [len(t["evaluations"]) for t in body["tasks"]] == [1, 0, 0]
    assert [[e["event_type"] for e in t["events"]] for t in body["tasks"]] == [["created", "started"], ["created"], ["created"]]


@pytest.mark.parametrize(
    ("query", "positions"),
    [
        ("", [1, 2, 3, 4]),
        ("from=2026-03-02", [2, 3, 4]),
        ("to=2026-03-02", [1, 2]),  # a day: the whole day
        ("from=2026-03-02&to=2026-03-03", [2, 3]),
        ("from=2026-03-02T08:00:00Z&to=2026-03-03T08:00:00Z", [2]),  # times: `to` exclusive
        ("from=2026-03-02T08:00:01", [3, 4]),  # no offset: UTC
        ("from=2026-03-02T09:00:00%2B01:00", [2, 3, 4]),
        ("to=2026-02-28", []),
    ],
)
def test_the_range_is_on_the_tasks_creation(api, learner_client, query: str, positions: list[int]) -> None:
    publish_wide_track("wide", modules=2, per_module=3)
    _history()
    _history("bob")  # the same days: never in alice's file

    body = json.loads(_body(api.get(f"/v1/study-tasks/export?format=json&{query}")))
    rows = list(csv.DictReader(io.StringIO(_body(api.get(f"/v1/study-tasks/export?format=csv&{query}")).decode())))

    by_id = dict(StudyTask.objects.filter(learner_id="alice").values_list("id", "position"))
    assert [by_id.get(uuid.UUID(t["id"])) for t in body["tasks"]] == positions
    assert [int(r["position"]) for r in rows if r["record"] == "task"] == positions
    assert {r["task_id"] for r in rows} <= {str(i) for i in by_id}


def test_an_empty_history_is_a_valid_file(api) -> None:
    text = _body(api.get("/v1/study-tasks/export?format=csv")).decode()
    assert text == HEADER + "\r\n"
    body = json.loads(_body(api.get("/v1/study-tasks/export?format=json")))
    assert body["tasks"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "format"),
        ("format=xml", "format"),
        ("format=", "format"),
        ("format=csv&from=yesterday", "from"),
        ("format=csv&to=2026-13-01", "to"),
        ("format=csv&from=2026-03-02&to=2026-03-01", "to"),
        ("format=json&from=2026-03-02T10:00:00Z&to=2026-03-02T10:00:00Z", "to"),
    ],
)
def test_a_bad_parameter_is_a_400_and_uses_no_export(api, settings, query: str, field: str) -> None:
    settings.CO_EXPORT_RATE = "1/hour"
    error = _envelope(api.get(f"/v1/study-tasks/export?{query}"), 400, "validation_error")
    assert list(error["fields"]) == [field]
    assert api.get("/v1/study-tasks/export?format=csv").status_code == 200


def test_exports_past_the_rate_are_429_per_learner(api, learner_client, settings) -> None:
    settings.CO_EXPORT_RATE = "2/hour"
    assert [api.get("/v1/study-tasks/export?format=csv").status_code for _ in range(2)] == [200, 200]
    response = api.get("/v1/study-tasks/export?format=json")
    _envelope(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert learner_client("bob").get("/v1/study-tasks/export?format=csv").status_code == 200


def test_needs_a_token(client) -> None:
    _envelope(client.get("/v1/study-tasks/export?format=csv"), 401, "not_authenticated")


@pytest.mark.parametrize(("tasks", "queries"), [(5, 9), (6, 10), (11, 18)])
def test_three_queries_a_chunk_whatever_the_history(api, settings, django_assert_num_queries, tasks, queries) -> None:
    """Chunks of 2 tasks: 3 queries a chunk (tasks, evaluations, events), plus one empty read
    when the history fills its last chunk."""
    settings.CO_EXPORT_CHUNK_SIZE = 2
    publish_wide_track("wide", modules=2, per_module=6)
    _history(tasks=tasks)
    for export_format in ("csv", "json"):
        response = api.get(f"/v1/study-tasks/export?format={export_format}")
        with django_assert_num_queries(queries):
            body = _body(response)
        marker = b"\r\ntask," if export_format == "csv" else b'"sequence": 1,'
        assert body.count(marker) == tasks


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_task_events_cleared")
def test_under_asgi_the_file_is_sent_chunk_by_chunk_as_it_is_read(asgi_handler, make_token, settings, recwarn) -> None:
    """Through the ASGI application the production server runs: each chunk is its own body message,
    and Django's fallback that first collects a synchronous stream in a list (and warns) is not used."""
    settings.CO_EXPORT_CHUNK_SIZE = 2
    publish_wide_track("wide", modules=2, per_module=3)
    _history(tasks=5)
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/study-tasks/export",
        "raw_path": b"/v1/study-tasks/export",
        "query_string": b"format=csv",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {make_token('alice')}".encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    asyncio.run(asgi_handler(scope, receive, send))

    assert messages[0]["type"] == "http.response.start" and messages[0]["status"] == 200
    bodies = [m for m in messages[1:] if m.get("body")]
    assert len(bodies) == 4  # the header, then 3 chunks of tasks (2, 2, 1)
    assert messages[-1] == {"type": "http.response.body"}
    text = b"".join(m["body"] for m in bodies).decode()
    assert text.count("\r\ntask,") == 5
    assert not [w for w in recwarn if "must consume synchronous iterators" in str(w.message)]


def test_the_revlog_format_is_the_learners_review_log_in_the_optimizers_columns(api, learner_client) -> None:
    publish_ladder()
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    attempt("alice", "a3", start, passed=False)
    attempt("alice", "a3", start + timedelta(days=1), passed=True)
    attempt("bob", "a4", start, passed=False)
    card = ReviewItem.objects.get(learner_id="alice").id

    response = api.get("/v1/study-tasks/export", {"format": "revlog", "from": "2026-11-01", "to": "2026-11-30"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="revlog-2026-11-01-2026-11-30.csv"'
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "card_id,review_time,review_rating,review_state,review_duration",
        f"{card},{int(start.timestamp() * 1000)},1,0,600000",
        f"{card},{int((start + timedelta(days=1)).timestamp() * 1000)},3,2,600000",
    ]


def test_an_empty_bound_is_no_bound(api) -> None:
    """`?to=` (as an HTML form sends an empty field) is the same as leaving `to` out."""
    response = api.get("/v1/study-tasks/export", {"format": "csv", "from": "", "to": ""})
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"].startswith('attachment; filename="study-tasks-start-')
