"""Fixtures for the tutor tests: a published course pack whose hidden data and reference
solutions carry unique markers, sessions opened through the API, and an SSE parser."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from tests.tracks.factories import HIDDEN_MARKERS, add_problem, math_problem, pack_document, publish, shout_problem

# Strings that exist only in hidden tests, generators, reference solutions and math answers of
# the packs below: none may reach a prompt, an event, a log line or a stored turn.
SECRET_MARKERS = tuple(marker for marker in HIDDEN_MARKERS if "remediation" not in marker and "rubric" not in marker)
# Remediation text of the `long-input` category: learner-facing only once that category failed.
LONG_INPUT_REMEDIATION = "zqx-remediation-5c7d"


def coding_pack() -> dict[str, Any]:
    return pack_document(
        track_slug="tutor-track",
        modules=[{"slug": "basics", "title": "Basics", "outcomes": ["string-methods", "arithmetic"]}],
        problems=[shout_problem(), add_problem()],
    )


def math_pack() -> dict[str, Any]:
    return pack_document(
        track_slug="tutor-math",
        subject="math",
        modules=[{"slug": "algebra", "title": "Algebra", "outcomes": ["expansion"]}],
        problems=[math_problem()],
    )


@pytest.fixture
def published(db) -> None:
    publish(coding_pack())


def open_session(client: APIClient, problem: str = "shout", subject: str = "coding") -> str:
    response = client.post("/v1/sessions", {"subject": subject, "mode": "practice", "problem_id": problem}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def session_of() -> Callable[..., str]:
    return open_session


def parse_sse(raw: bytes | str) -> list[tuple[str, Any]]:
    """Server-Sent Events → [(event, data)], comments as ("comment", text)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    events: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def answer_text(events: Iterable[tuple[str, Any]]) -> str:
    """The text a client shows: token texts, restarted at a `fallback`."""
    text = ""
    for name, data in events:
        if name == "fallback":
            text = ""
        elif name == "token":
            text += data["text"]
    return text


def read_stream(response: Any) -> bytes:
    """The whole body of an in-process streaming response (an async iterator under Django)."""

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()
