"""`GET /health`: in-process, and against real server processes (uvicorn) with a working and
with an unreachable database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).parents[2]
STARTUP_DEADLINE_SECONDS = 60


def _without_latency(check: dict) -> dict:
    """The check without its (variable) latency, after asserting the latency is a number."""
    check = dict(check)
    latency = check.pop("latency_ms")
    assert isinstance(latency, int | float) and latency >= 0
    return check


@pytest.mark.django_db
def test_health_without_authentication_is_ok(client) -> None:
    response = client.get("/health")

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert len(response["X-Request-ID"]) == 32
    body = response.json()
    assert set(body) == {"status", "environment", "checks"}
    assert body["status"] == "ok"
    assert body["environment"] == settings.CO_ENV == "test"
    assert set(body["checks"]) == {"database", "cache", "broker", "sandbox"}
    assert _without_latency(body["checks"]["database"]) == {"status": "ok", "engine": connection.vendor}
    assert _without_latency(body["checks"]["cache"]) == {
        "status": "ok",
        "backend": "redis" if settings.REDIS_URL else "local-memory",
    }
    expected_mode = "eager" if settings.CELERY_TASK_ALWAYS_EAGER else "broker"
    assert _without_latency(body["checks"]["broker"]) == {"status": "ok", "mode": expected_mode}
    # bubblewrap is installed here and in CI (.ci/run installs it); both run as root, where
    # Python runs fork from the helper.
    assert _without_latency(body["checks"]["sandbox"]) == {"status": "ok", "isolation": "bubblewrap", "python": "zygote"}


@pytest.mark.django_db
def test_health_echoes_the_request_id(client) -> None:
    response = client.get("/health", HTTP_X_REQUEST_ID="probe-42")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "probe-42"


@pytest.mark.django_db
def test_health_ignores_a_bad_token(client) -> None:
    response = client.get("/health", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


# --- real server processes -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(**overrides: str) -> dict[str, str]:
    return {**os.environ, "CO_ENV": "test", **overrides}


@contextmanager
def running_server(env: dict[str, str], log_dir: Path) -> Iterator[str]:
    """uvicorn serving the project in a separate process; yields its base URL once it answers."""
    port = _free_port()
    log_path = log_dir / f"uvicorn-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "co_project.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--lifespan",
                "off",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
            while True:
                if process.poll() is not None:
                    pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
                try:
                    httpx.get(f"{base_url}/v1/schema-does-not-exist", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"server did not answer within {STARTUP_DEADLINE_SECONDS}s:\n{log_path.read_text()}")
                    time.sleep(0.1)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_real_server_with_unreachable_database_is_503_without_internals(tmp_path: Path) -> None:
    env = _server_env(CO_DB_URL="postgres://nobody@127.0.0.1:1/none")

    with running_server(env, tmp_path) as base_url:
        response = httpx.get(f"{base_url}/health", timeout=30)

    assert response.status_code == 503, response.text
    assert response.headers["X-Request-ID"]
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["environment"] == "test"
    assert body["checks"]["database"]["status"] == "unavailable"
    assert set(body["checks"]["database"]) == {"status", "error", "latency_ms"}
    assert body["checks"]["cache"]["status"] == "ok"
    assert "127.0.0.1" not in response.text
    assert "nobody" not in response.text


def test_real_server_with_a_migrated_database(tmp_path: Path) -> None:
    database = tmp_path / "health.sqlite3"
    env = _server_env(CO_DB_URL=f"sqlite:///{database}")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert database.is_file()

    with running_server(env, tmp_path) as base_url:
        health = httpx.get(f"{base_url}/health", timeout=30)
        tracks = httpx.get(f"{base_url}/v1/tracks", timeout=30)

    assert health.status_code == 200, health.text
    health_body = health.json()
    assert health_body["status"] == "ok"
    assert health_body["checks"]["database"]["status"] == "ok"
    assert health_body["checks"]["database"]["engine"] == "sqlite"

    assert tracks.status_code == 401, tracks.text
    assert tracks.headers["Content-Type"] == "application/json"
    assert tracks.headers["WWW-Authenticate"] == 'Bearer realm="co"'
    assert tracks.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "fields": {},
        },
        "request_id": tracks.headers["X-Request-ID"],
    }
