"""Shared fixtures: learner tokens signed with a per-run RSA key, authenticated API clients,
a clean cache per test. The database is the real one (SQLite, or PostgreSQL with CO_DB_URL)."""

from __future__ import annotations

import importlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from rest_framework.test import APIClient

ISSUER = "https://api.scimigo.com"


def services_required() -> bool:
    """PostgreSQL + Redis tests run when configured; in CI's PostgreSQL run they must run."""
    return bool(os.environ.get("CO_DB_URL", "").startswith("postgres") and os.environ.get("CO_REDIS_URL"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if services_required():
        return
    skip = pytest.mark.skip(reason="needs CO_DB_URL=postgres://… and CO_REDIS_URL (the PostgreSQL run of .ci/run)")
    for item in items:
        if "requires_services" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def jwt_keys() -> tuple[str, str]:
    """(private PEM, public PEM) for this test run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(autouse=True)
def _jwt_settings(settings, jwt_keys: tuple[str, str]) -> None:
    settings.CO_JWT_PRIVATE_KEY, settings.CO_JWT_PUBLIC_KEY = jwt_keys
    settings.CO_JWT_ISSUER = ISSUER
    settings.CO_JWT_AUDIENCE = None


@pytest.fixture(autouse=True)
def _eager_celery(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tasks run in-process unless a test uses a real worker (marker `real_worker`). Set under the
    name the app reads its settings by (namespace CELERY, co_project/celery.py): Celery 5.6 looks
    that name up in Django's settings before an unprefixed `task_always_eager` set here."""
    from co_project.celery import app

    app.conf["CELERY_TASK_ALWAYS_EAGER"] = "real_worker" not in request.keywords
    yield
    app.conf.changes.pop("CELERY_TASK_ALWAYS_EAGER", None)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_token(jwt_keys: tuple[str, str]) -> Callable[..., str]:
    """make_token(sub="alice", ttl=3600, **extra_claims) → an RS256 token like the upstream API issues."""

    def make(sub: str = "alice", ttl: int = 3600, **claims: object) -> str:
        now = int(time.time())
        payload = {"sub": sub, "iss": ISSUER, "iat": now, "exp": now + ttl, **claims}
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, jwt_keys[0], algorithm="RS256")

    return make


class LearnerClient(APIClient):
    """An APIClient with a learner's token.

    A submission needs the learner's active session that holds the problem. Tests about grading
    do not care which session, so a `POST /v1/submissions` body without `session_id` gets one:
    a practice session for that problem, opened through the API once per client and problem.
    Tests of the session rule itself send `session_id` explicitly. When no session can be opened
    (the problem does not exist), a random id is sent and the API decides what that means.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.practice_sessions: dict[tuple[str, str], str] = {}

    def practice_session(self, problem: str, subject: str) -> str:
        key = (problem, subject)
        if key not in self.practice_sessions:
            response = super().post(
                "/v1/sessions", {"subject": subject, "mode": "practice", "problem_id": problem}, format="json"
            )
            if response.status_code != 201:
                return str(uuid.uuid4())
            self.practice_sessions[key] = response.json()["id"]
        return self.practice_sessions[key]

    def post(self, path: str, data: object = None, *args: object, **kwargs: object):  # type: ignore[override]
        if path == "/v1/submissions" and isinstance(data, dict) and "session_id" not in data:
            problem, subject = data.get("problem_id"), data.get("subject")
            if isinstance(problem, str) and subject in {"coding", "math", "systems"}:
                data = {**data, "session_id": self.practice_session(problem, subject)}
        return super().post(path, data, *args, **kwargs)


@pytest.fixture
def learner_client(make_token: Callable[..., str]) -> Callable[[str], LearnerClient]:
    """learner_client("alice") → an APIClient sending alice's bearer token."""

    def make(sub: str = "alice", ttl: int = 3600) -> LearnerClient:
        client = LearnerClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(sub, ttl=ttl)}")
        return client

    return make


@pytest.fixture
def api(learner_client: Callable[[str], LearnerClient]) -> LearnerClient:
    return learner_client("alice")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Uploaded course pack files go to a temporary folder, never the checkout's var/media."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture
def fake_grader(settings) -> Iterator[object]:
    """A real HTTP eval service (tests/servers.py) as CO_EVAL_BASE: tests set `.answer` to decide
    each verdict, so learner histories are quick to build and still go through the whole pipeline."""
    from tests.servers import FakeEvalService

    with FakeEvalService(answer={"status": "passed"}) as service:
        settings.CO_EVAL_BASE = service.url
        settings.CO_EVAL_RETRIES = 0
        settings.CO_EVAL_TIMEOUT_SECONDS = 5
        yield service


# The task-event triggers as the latest migration that changed them leaves them.
_task_event_triggers = importlib.import_module("study_paths.migrations.0005_session_migration_batch")


@pytest.fixture
def asgi_handler() -> Iterator[Any]:
    """The production ASGI handler (co_project/asgi.py), run in this process for one test. Its
    request threads keep their database connections between requests (CONN_MAX_AGE), and the test
    database is dropped at the end of the run: afterwards each thread closes its connections, then
    its pool stops."""
    from co_project.asgi import StreamingASGIHandler

    handler = StreamingASGIHandler()
    yield handler
    request_pool_closed(handler._executor)


def request_pool_closed(executor: ThreadPoolExecutor) -> None:
    """Each thread of a request pool closes its database connections, then the pool stops. The
    barrier puts one call in each thread the pool may have."""
    from django.db import connections

    size = executor._max_workers
    barrier = threading.Barrier(size)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout=30)

    for closing in [executor.submit(close) for _ in range(size)]:
        closing.result()
    executor.shutdown(wait=True)


@pytest.fixture
def _task_events_cleared() -> Iterator[None]:
    """Task events are append-only (triggers): on SQLite the flush between transactional tests
    deletes rows, which the triggers refuse, so the test's events are removed here with the
    triggers lifted for that moment (PostgreSQL flushes with TRUNCATE, which they allow)."""
    yield
    from django.db import connection

    from study_paths.models import TaskEvent

    if connection.vendor != "sqlite":
        return
    with connection.schema_editor() as editor:
        _task_event_triggers.drop_triggers(None, editor)
        TaskEvent.objects.all().delete()
        _task_event_triggers.create_triggers(None, editor)
