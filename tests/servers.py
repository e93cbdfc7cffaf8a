"""Small real HTTP servers that stand in for services we do not run, started by the tests.

`FakeProblemBank` speaks the remote problem bank's protocol (seeds/000 §5):
`GET /internal/problems/{id}/bundle` → 200 with the bundle as JSON, 404 when it has no such
problem; `GET /internal/modules/{module}/problems?difficulty_min=&difficulty_max=&limit=` → 200
with `{"items": [...]}` filtered by the query (unless told to ignore it), 404 for an unknown module.
Its behaviour can be switched per test (404 for everything, 500 for the first N
requests, answering slower than the client's timeout, invalid JSON), and it logs every request
it receives (method, path, headers) so tests can count attempts and inspect headers.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote

BUNDLE_PREFIX = "/internal/problems/"
BUNDLE_SUFFIX = "/bundle"
MODULE_PREFIX = "/internal/modules/"
MODULE_SUFFIX = "/problems"


class LocalServer(ABC):
    """Serving on a free loopback port, stopping, and counting requests: shared by the fakes
    below, each of which defines its handler (in `start`) and what it records (`recorded`)."""

    def _init_server(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    @abstractmethod
    def start(self) -> Self:
        """Serve this fake's handler (with `_serve`)."""

    @abstractmethod
    def recorded(self) -> list[Any]:
        """What the fake recorded, one entry per request."""

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def request_count(self) -> int:
        with self._lock:
            return len(self.recorded())


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


@dataclass
class ProblemBankBehaviour:
    """What the fake bank does with the next requests; tests flip these fields."""

    always_status: int | None = None  # answer every request with this status (e.g. 404, 500)
    fail_first: int = 0  # answer the first N requests with 500, then behave normally
    delay_seconds: float = 0.0  # wait this long before answering (interrupted on shutdown)
    invalid_json: bool = False  # answer 200 with a body that is not JSON
    ignore_listing_filters: bool = False  # list a module's problems whatever the query asks


@dataclass
class FakeProblemBank(LocalServer):
    """A real HTTP problem bank on 127.0.0.1:<free port>, served from a thread."""

    bundles: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # module key → listing items
    behaviour: ProblemBankBehaviour = field(default_factory=ProblemBankBehaviour)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._init_server()

    def start(self) -> Self:
        bank = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                bank._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return self._serve(Handler)

    def recorded(self) -> list[RecordedRequest]:
        return self.requests

    def requested_paths(self) -> list[str]:
        with self._lock:
            return [request.path for request in self.requests]

    # --- the protocol ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=handler.command,
                    path=handler.path,
                    headers={name.lower(): value for name, value in handler.headers.items()},
                )
            )
            number = len(self.requests)
        behaviour = self.behaviour
        if behaviour.delay_seconds and self._stopping.wait(behaviour.delay_seconds):
            return  # shutting down: the client gave up long ago
        if behaviour.always_status is not None:
            self._send(handler, behaviour.always_status, {"detail": f"status {behaviour.always_status}"})
            return
        if number <= behaviour.fail_first:
            self._send(handler, 500, {"detail": "internal error"})
            return
        path, _, query = handler.path.partition("?")
        if path.startswith(MODULE_PREFIX) and path.endswith(MODULE_SUFFIX):
            self._list_module(handler, unquote(path[len(MODULE_PREFIX) : -len(MODULE_SUFFIX)]), parse_qs(query))
            return
        if not (path.startswith(BUNDLE_PREFIX) and path.endswith(BUNDLE_SUFFIX)):
            self._send(handler, 404, {"detail": "no such route"})
            return
        problem_id = unquote(path[len(BUNDLE_PREFIX) : -len(BUNDLE_SUFFIX)])
        if problem_id not in self.bundles:
            self._send(handler, 404, {"detail": "no such problem"})
            return
        if behaviour.invalid_json:
            self._send_raw(handler, 200, b'{"id": "truncated', "application/json")
            return
        self._send(handler, 200, self.bundles[problem_id])

    def _list_module(self, handler: BaseHTTPRequestHandler, module: str, query: dict[str, list[str]]) -> None:
        if module not in self.modules:
            self._send(handler, 404, {"detail": "no such module"})
            return
        items = self.modules[module]
        if not self.behaviour.ignore_listing_filters:
            low, high = int(query["difficulty_min"][0]), int(query["difficulty_max"][0])
            items = [item for item in items if low <= item["difficulty"] <= high][: int(query["limit"][0])]
        self._send(handler, 200, {"items": items})

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        self._send_raw(handler, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send_raw(handler: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away


@dataclass
class FakeEvalService(LocalServer):
    """A real HTTP eval service (seeds/000 §7): `POST /code/eval` → the `answer` dict, after
    `fail_first` 500s. Records every request body; `stop()` makes it unreachable."""

    answer: dict[str, Any] = field(default_factory=lambda: {"status": "passed"})
    fail_first: int = 0
    delay_seconds: float = 0.0  # answer this much later (interrupted by stop())
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._init_server()

    def recorded(self) -> list[dict[str, Any]]:
        return self.bodies

    def start(self) -> FakeEvalService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with service._lock:
                    service.bodies.append(body)
                    number = len(service.bodies)
                if service.delay_seconds and service._stopping.wait(service.delay_seconds):
                    return
                if self.path != "/code/eval":
                    FakeProblemBank._send_raw(self, 404, b'{"detail": "no such route"}', "application/json")
                elif number <= service.fail_first:
                    FakeProblemBank._send_raw(self, 500, b'{"detail": "boom"}', "application/json")
                else:
                    FakeProblemBank._send_raw(self, 200, json.dumps(service.answer).encode(), "application/json")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return self._serve(Handler)


@dataclass
class FakeChatCompletions(LocalServer):
    """A real OpenAI-compatible chat-completions server: `POST /v1/chat/completions` with
    `stream: true` answers `data: {chunk}` lines (one per `deltas` item, `delay_seconds` apart)
    and `data: [DONE]`. `status` answers an error instead, `first_delay_seconds` stalls before the
    first byte, `drop_after` closes the connection after that many deltas without `[DONE]`.
    Records every request's JSON body and headers."""

    deltas: list[str] = field(default_factory=lambda: ["Look at ", "the string ", "methods."])
    status: int = 200
    first_delay_seconds: float = 0.0
    delay_seconds: float = 0.0
    drop_after: int | None = None
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._init_server()

    def recorded(self) -> list[dict[str, Any]]:
        return self.bodies

    def start(self) -> FakeChatCompletions:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with fake._lock:
                    fake.bodies.append(json.loads(raw or b"{}"))
                    fake.headers.append({name.lower(): value for name, value in self.headers.items()})
                if self.path != "/v1/chat/completions":
                    FakeProblemBank._send_raw(self, 404, b'{"error": "no such route"}', "application/json")
                    return
                if fake.first_delay_seconds and fake._stopping.wait(fake.first_delay_seconds):
                    return
                if fake.status != 200:
                    FakeProblemBank._send_raw(self, fake.status, b'{"error": {"message": "boom"}}', "application/json")
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for index, delta in enumerate(fake.deltas):
                        if fake.drop_after is not None and index >= fake.drop_after:
                            return
                        if index and fake.delay_seconds and fake._stopping.wait(fake.delay_seconds):
                            return
                        chunk = {
                            "id": "chatcmpl-1",
                            "object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": {"content": delta}}],
                        }
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return self._serve(Handler)
