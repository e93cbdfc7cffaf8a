"""OpenTelemetry traces (co_project/tracing.py): one submission is one trace — its request
through the real ASGI handler, its SQL, its evaluation task and the eval service call — and so
is a tutor stream with its LLM call; no answer, hidden test or stream token is in any span; a
real Celery worker continues the request's trace over the broker and exports it over OTLP/HTTP;
without an OTLP endpoint no process imports opentelemetry at all."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from co_project.tracing import tracing_install, tracing_uninstall
from tests.conftest import request_pool_closed
from tests.servers import FakeChatCompletions, FakeEvalService
from tests.tracks.factories import HIDDEN_MARKERS, pack_document, publish
from tests.tutoring.conftest import coding_pack, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
CODE_MARKER = "zqx-learner-answer-5e6f"
CODE = f"def shout(text):\n    return text.upper()  # {CODE_MARKER}\n"
DB_SYSTEM = {"sqlite": "sqlite", "postgresql": "postgresql"}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """This process's traces into memory, through the install the servers use."""
    exporter = InMemorySpanExporter()
    assert tracing_install("co-web", web=True, span_exporter=exporter)
    try:
        yield exporter
    finally:
        tracing_uninstall()


@pytest.fixture
def through_asgi(spans: InMemorySpanExporter) -> Iterator[Callable[..., httpx.Response]]:
    """Requests through the project's ASGI handler, built after tracing was installed as asgi.py
    builds it: sync requests run in its request thread pool, the tutor stream on the event loop."""
    from co_project.asgi import StreamingASGIHandler

    handler = StreamingASGIHandler()

    def request(method: str, path: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=handler)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, path, **options)

        return asyncio.run(send())

    yield request
    request_pool_closed(handler._executor)
    asyncio.run(sync_to_async(connections.close_all)())  # asgiref's thread, where the stream's SQL ran


@pytest.fixture
def learner(through_asgi, make_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('alice')}"}


def _practice_session(through_asgi, learner: dict[str, str]) -> str:
    body = {"subject": "coding", "mode": "practice", "problem_id": "shout"}
    response = through_asgi("POST", "/v1/sessions", json=body, headers=learner)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _submit(through_asgi, learner: dict[str, str], session_id: str) -> httpx.Response:
    body = {"problem_id": "shout", "subject": "coding", "session_id": session_id, "payload": {"language": "python", "code": CODE}}
    return through_asgi("POST", "/v1/submissions", json=body, headers=learner)


def _one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, f"{what}: {[(span.name, dict(span.attributes or {})) for span in found]}"
    return found[0]


def _statements(found: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [span for span in found if str((span.attributes or {}).get("db.statement", "")).startswith(prefix)]


def _span_text(span: ReadableSpan) -> str:
    return json.dumps([span.name, {key: str(value) for key, value in (span.attributes or {}).items()}])


def test_a_submission_is_one_trace_from_its_request_to_its_evaluation(
    spans: InMemorySpanExporter, through_asgi, learner, settings
) -> None:
    publish(pack_document())
    session_id = _practice_session(through_asgi, learner)
    with FakeEvalService(answer={"status": "passed"}) as eval_service:
        settings.CO_EVAL_BASE = eval_service.url
        settings.CO_EVAL_RETRIES = 0
        spans.clear()
        response = _submit(through_asgi, learner, session_id)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "passed"

    finished = spans.get_finished_spans()
    request = _one([s for s in finished if s.kind == SpanKind.SERVER], "the request span")
    assert request.parent is None
    assert request.name == "POST v1/submissions$"
    route = [request.attributes[name] for name in ("http.method", "http.route", "http.status_code")]
    assert route == ["POST", "v1/submissions$", 200]
    # Everything this request caused is in its trace: nothing started a trace of its own.
    assert {span.context.trace_id for span in finished} == {request.context.trace_id}

    # The evaluation task (eager here: it ran on the commit, inside the request) ...
    task = _one([s for s in finished if s.kind == SpanKind.CONSUMER], "the evaluation task span")
    assert task.name == "run/submissions.evaluate" and task.parent.span_id == request.context.span_id
    assert task.attributes["celery.state"] == "SUCCESS"
    # ... called the eval service from inside the task ...
    call = _one([s for s in finished if s.kind == SpanKind.CLIENT and "http.url" in s.attributes], "the eval service call")
    assert call.attributes["http.url"] == f"{eval_service.url}/code/eval" and call.attributes["http.status_code"] == 200
    assert call.parent.span_id == task.context.span_id
    # ... and the SQL of each is under it: the insert under the request, the claim under the task.
    sql = [s for s in finished if s.kind == SpanKind.CLIENT and "db.statement" in s.attributes]
    assert {s.attributes["db.system"] for s in sql} == {DB_SYSTEM[connection.vendor]}
    insert = _one(_statements(sql, 'INSERT INTO "submissions_submission"'), "the insert")
    claim = _one(_statements(sql, 'UPDATE "submissions_submission" SET "status" = %s, "claim_token"'), "the claim")
    assert insert.parent.span_id == request.context.span_id and claim.parent.span_id == task.context.span_id
    # Statements carry placeholders, never the values: no answer, no hidden test in any span.
    assert "VALUES (%s, %s" in insert.attributes["db.statement"]
    leaked = [(marker, _span_text(s)) for s in finished for marker in (CODE_MARKER, *HIDDEN_MARKERS) if marker in _span_text(s)]
    assert leaked == []


def test_a_tutor_stream_and_its_llm_call_are_one_trace_without_the_stream_token(
    spans: InMemorySpanExporter, through_asgi, learner, settings
) -> None:
    """The stream's body is produced after the request span ended (the answer has started): its
    `stream` span holds the LLM call and the turn's final write in the request's trace."""
    publish(coding_pack())
    session_id = _practice_session(through_asgi, learner)
    with FakeChatCompletions() as model:
        model.deltas = ["Which ", "string method?"]
        settings.CO_TUTOR_BASE, settings.CO_TUTOR_MODEL, settings.CO_TUTOR_API_KEY = model.url, "tutor-small", "sk-test-key"
        body = {"session_id": session_id, "problem_id": "shout", "hint_level": 1}
        started = through_asgi("POST", "/v1/tutor/messages", json=body, headers=learner)
        assert started.status_code == 202, started.text
        token = started.json()["token"]
        spans.clear()
        stream = through_asgi("GET", f"/v1/tutor/stream?token={token}")
    assert stream.status_code == 200
    assert [name for name, _ in parse_sse(stream.content)] == ["start", "token", "done"]

    finished = spans.get_finished_spans()
    request = _one([s for s in finished if s.kind == SpanKind.SERVER], "the request span")
    assert request.name == "GET v1/tutor/stream" and request.parent is None
    assert {span.context.trace_id for span in finished} == {request.context.trace_id}
    produced = _one([s for s in finished if s.name == "stream"], "the stream span")
    assert produced.parent.span_id == request.context.span_id
    llm = _one([s for s in finished if s.kind == SpanKind.CLIENT and "http.url" in s.attributes], "the LLM call")
    assert llm.attributes["http.url"] == f"{model.url}/v1/chat/completions" and llm.parent.span_id == produced.context.span_id
    final_write = _one(_statements(finished, 'UPDATE "tutoring_tutorturn" SET "outcome"'), "the turn's final write")
    assert final_write.parent.span_id == produced.context.span_id
    assert request.attributes["http.url"] == "http://testserver/v1/tutor/stream?[redacted]"
    assert [_span_text(s) for s in finished if token in _span_text(s)] == []


# --- across processes: the web process queues, a real worker evaluates ---------------------------


class OtlpCollector:
    """A real OTLP/HTTP trace receiver on a free loopback port: `POST /v1/traces` with an
    ExportTraceServiceRequest (protobuf); keeps every span it is sent with its service name."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                export = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
                collector._receive(self.path, export)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _receive(self, path: str, export: ExportTraceServiceRequest) -> None:
        for resource_spans in export.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with self._lock:
                        self.spans.append(
                            {
                                "path": path,
                                "service": resource.get("service.name"),
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                            }
                        )

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.spans)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(value: Any) -> Any:
    """An OTLP AnyValue as Python (the scalar kinds the instrumentations set)."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in {"string_value", "bool_value", "int_value", "double_value"} else str(value)


@pytest.mark.requires_services
def test_the_production_stack_exports_one_trace_per_submission_across_its_processes(settings) -> None:
    """Gunicorn's uvicorn workers, the Celery worker's pool and beat, started as in production
    (deploy/stack.py) with an OTLP endpoint: the request's trace goes on in the worker, through
    the task's headers over Redis, and beat's periodic tasks are traced from their enqueue."""
    from deploy.smoke import PROBLEM, PYTHON_CORRECT
    from deploy.stack import ProductionStack

    code = f"{PYTHON_CORRECT}# {CODE_MARKER}\n"
    db_url = settings.DATABASES["default"]
    postgres_url = f"postgres://{db_url['USER']}@{db_url['HOST']}:{db_url['PORT']}/postgres"
    redis_db = int(settings.REDIS_URL.rsplit("/", 1)[1])
    collector = OtlpCollector()
    try:
        with FakeEvalService(answer={"status": "passed"}) as eval_service:
            extra_env = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_BSP_SCHEDULE_DELAY": "100",  # the SDK's standard variable: export within 0.1 s
                "CO_EVAL_BASE": eval_service.url,
                "CO_SUBMISSION_SWEEP_SECONDS": "1",  # beat enqueues the sweeper every second
            }
            if os.environ.get("CO_SANDBOX_UID"):
                extra_env["CO_SANDBOX_UID"] = os.environ["CO_SANDBOX_UID"]
            with (
                ProductionStack(redis_db=redis_db, postgres_url=postgres_url, extra_env=extra_env, worker_concurrency=1) as stack,
                httpx.Client(base_url=stack.base_url, timeout=60) as client,
            ):
                auth = {"Authorization": f"Bearer {stack.token('traced-learner')}"}
                session = client.post(
                    "/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": PROBLEM}, headers=auth
                )
                assert session.status_code == 201, session.text
                body = {"session_id": session.json()["id"], "problem_id": PROBLEM, "subject": "coding",
                        "payload": {"language": "python", "code": code}}  # fmt: skip
                response = client.post("/v1/submissions", json=body, headers=auth)
                assert response.status_code in {200, 202}, response.text
                submission_id = response.json()["id"]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not _stack_traced(collector.received()):
                    time.sleep(0.2)
                verdict = client.get(f"/v1/submissions/{submission_id}", headers=auth).json()
        received = collector.received()
    finally:
        collector.stop()
    assert verdict["status"] == "passed"
    assert {s["path"] for s in received} == {"/v1/traces"}

    request = _one_record([s for s in received if s["service"] == "co-web" and s["name"] == "POST v1/submissions$"], "request")
    enqueue = _one_record(
        [s for s in received if s["name"] == "apply_async/submissions.evaluate" and s["trace_id"] == request["trace_id"]],
        "the enqueue",
    )
    assert enqueue["service"] == "co-web" and enqueue["parent_span_id"] == request["span_id"]
    run = _one_record([s for s in received if s["name"] == "run/submissions.evaluate"], "the worker's task span")
    assert run["service"] == "co-worker" and run["attributes"]["celery.state"] == "SUCCESS"
    assert run["trace_id"] == request["trace_id"] and run["parent_span_id"] == enqueue["span_id"]
    in_worker = [s for s in received if s["parent_span_id"] == run["span_id"]]
    assert any(s["attributes"].get("db.system") == "postgresql" for s in in_worker)
    assert any(s["attributes"].get("http.url") == f"{eval_service.url}/code/eval" for s in in_worker)
    sweeps = [s for s in received if s["service"] == "co-beat" and s["name"] == "apply_async/submissions.sweep"]
    swept = {s["trace_id"] for s in received if s["service"] == "co-worker" and s["name"] == "run/submissions.sweep"}
    assert sweeps and swept & {s["trace_id"] for s in sweeps}
    assert [s for s in received if CODE_MARKER in json.dumps(s)] == []


def _stack_traced(received: list[dict[str, Any]]) -> bool:
    """The spans the test above looks at have arrived (each process exports on its own)."""
    names = {(s["service"], s["name"]) for s in received}
    return {
        ("co-web", "POST v1/submissions$"),
        ("co-web", "apply_async/submissions.evaluate"),
        ("co-worker", "run/submissions.evaluate"),
        ("co-beat", "apply_async/submissions.sweep"),
        ("co-worker", "run/submissions.sweep"),
    } <= names


def _one_record(found: list[dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(found) == 1, f"{what}: {found}"
    return found[0]


# --- without an endpoint ---------------------------------------------------------------------------

STARTS_EVERY_PROCESS = """
import json, sys
import co_project.asgi  # the web process (gunicorn's workers, uvicorn, make run)
import co_project.wsgi  # manage.py runserver
from co_project import celery
celery._tracing_worker()  # what each Celery pool process runs at worker_process_init
celery._tracing_beat()  # and beat at beat_init
from django.conf import settings
print(json.dumps({
    "loaded": sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry"),
    "middleware": [name for name in settings.MIDDLEWARE if "opentelemetry" in name],
}))
"""


def _started(**otel: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CO_"))}
    env.update(CO_ENV="test", CO_JWT_PUBLIC_KEY="unused", **otel)
    done = subprocess.run(
        [sys.executable, "-c", STARTS_EVERY_PROCESS], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_an_endpoint_no_process_imports_opentelemetry() -> None:
    assert _started() == {"loaded": [], "middleware": []}


def test_with_an_endpoint_the_web_process_traces_its_requests() -> None:
    """The counterpart of the test above, so that one can fail: the same start with the variable."""
    started = _started(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert "opentelemetry.sdk.trace" in started["loaded"]
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in started["loaded"]
    assert started["middleware"] == ["opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"]
