"""The ASGI entry point: sync requests run whole in one thread of the request pool (no hop per
middleware), with the full middleware chain (sessions, CSRF, the admin) working as under WSGI."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core import signals

from co_project import health

pytestmark = pytest.mark.django_db(transaction=True)


def _through_asgi(application: Any, calls: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send the requests in order through the ASGI application (one client, cookies kept)."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.request(method, path, **options) for method, path, options in calls]

    return asyncio.run(send())


def test_a_request_runs_in_one_thread_of_the_request_pool(asgi_handler: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    report = health.health_report

    def recording_report() -> Any:
        seen.append(threading.current_thread().name)
        return report()

    monkeypatch.setattr(health, "health_report", recording_report)
    responses = _through_asgi(asgi_handler, [("GET", "/health", {})] * 3)

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert responses[0].headers["X-Request-ID"]  # the middleware chain ran around the view
    assert len(seen) == 3 and all(name.startswith("request") for name in seen), seen


def test_request_signals_fire_once_each_in_the_thread_of_the_request(asgi_handler: Any) -> None:
    """`request_started` / `request_finished` check the database connection of the thread that
    uses it (CONN_MAX_AGE, health checks), as under WSGI."""
    fired: list[tuple[str, str]] = []

    def started(**kwargs: Any) -> None:
        fired.append(("started", threading.current_thread().name))

    def finished(**kwargs: Any) -> None:
        fired.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        responses = _through_asgi(asgi_handler, [("GET", "/health", {}), ("GET", "/v1/no-such-thing", {})])
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)

    assert [response.status_code for response in responses] == [200, 404]
    assert [event for event, _ in fired] == ["started", "finished", "started", "finished"]
    assert fired[0][1] == fired[1][1] and fired[2][1] == fired[3][1]
    assert all(thread.startswith("request") for _, thread in fired), fired


def test_the_admin_signs_in_through_asgi_with_its_session_and_csrf_middleware(asgi_handler: Any) -> None:
    get_user_model().objects.create_superuser("staff", "staff@example.com", "a-long-password-1")
    page = _through_asgi(asgi_handler, [("GET", "/admin/login/", {})])[0]

    async def sign_in() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=asgi_handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            login = await client.get("/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
            forged = await client.post(
                "/admin/login/", data={"username": "staff", "password": "a-long-password-1"}, headers={"Referer": "x"}
            )
            signed_in = await client.post(
                "/admin/login/?next=/admin/",
                data={"username": "staff", "password": "a-long-password-1", "csrfmiddlewaretoken": token},
            )
            index = await client.get("/admin/")
            return forged, signed_in, index

    forged, signed_in, index = asyncio.run(sign_in())
    assert page.status_code == 200
    assert forged.status_code == 403  # no CSRF token: refused
    assert (signed_in.status_code, signed_in.headers["location"]) == (302, "/admin/")
    assert index.status_code == 200 and "Curriculum authoring" in index.text and "Log out" in index.text
