"""Shared fixtures: learner tokens signed with a per-run RSA key, authenticated API clients,
a clean cache per test. The database is the real one (SQLite, or PostgreSQL with CO_DB_URL)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

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
    """Tasks run in-process unless a test uses a real worker (marker `real_worker`)."""
    from co_project.celery import app

    eager = "real_worker" not in request.keywords
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


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


@pytest.fixture
def learner_client(make_token: Callable[..., str]) -> Callable[[str], APIClient]:
    """learner_client("alice") → an APIClient sending alice's bearer token."""

    def make(sub: str = "alice") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(sub)}")
        return client

    return make


@pytest.fixture
def api(learner_client: Callable[[str], APIClient]) -> APIClient:
    return learner_client("alice")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Uploaded course pack files go to a temporary folder, never the checkout's var/media."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
