"""Request bodies are bounded while the ASGI server hands them over: past `CO_REQUEST_MAX_BYTES`
the answer is a 413 in the error envelope, and the rest of the body is never read (so never
spooled to a temporary file), whether the client declared its length or streams it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tracks.models import CoursePack

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 64 * 1024
CHUNK = 16 * 1024


def _call(application: Any, path: str, chunks: int, *, declared: bool) -> tuple[dict[str, Any], bytes, int]:
    """POST `chunks` body chunks of CHUNK bytes; (response start, response body, chunks read)."""
    read = 0
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"limit-test-1")]
    if declared:
        headers.append((b"content-length", str(chunks * CHUNK).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": read < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start, body, read


@pytest.fixture(autouse=True)
def _limit(settings: Any) -> None:
    settings.CO_REQUEST_MAX_BYTES = LIMIT


@pytest.mark.parametrize("path", ["/v1/submissions", "/admin/tracks/coursepack/add/", "/v1/tutor/stream"])
def test_a_streamed_body_past_the_limit_is_refused_and_not_read_further(asgi_handler: Any, path: str) -> None:
    start, body, read = _call(asgi_handler, path, 1024, declared=False)  # 16 MiB offered

    assert start["status"] == 413
    assert (b"X-Request-ID", b"limit-test-1") in start["headers"]
    assert json.loads(body) == {
        "error": {"code": "payload_too_large", "message": f"The request body is larger than {LIMIT} bytes.", "fields": {}},
        "request_id": "limit-test-1",
    }
    assert read == LIMIT // CHUNK + 1
    assert CoursePack.objects.count() == 0


def test_a_declared_length_past_the_limit_is_refused_unread(asgi_handler: Any) -> None:
    start, body, read = _call(asgi_handler, "/admin/tracks/coursepack/add/", 1024, declared=True)

    assert start["status"] == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert read == 0


def test_a_body_within_the_limit_reaches_the_view(asgi_handler: Any) -> None:
    start, body, read = _call(asgi_handler, "/v1/submissions", LIMIT // CHUNK, declared=True)

    assert start["status"] == 401  # the view answered: no token
    assert json.loads(body)["error"]["code"] == "not_authenticated"
    assert read == LIMIT // CHUNK
