"""Request id: echoed from `X-Request-ID` (when well-formed) or generated, on every response.

The id lives in a context variable so log lines and error envelopes carry it without threading
the request through every call. The middleware works in both sync and async stacks, so ASGI
streams (SSE) are not forced onto a worker thread.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

from co_project.metrics import http_request_observe

_request_id: ContextVar[str | None] = ContextVar("co_request_id", default=None)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ERROR_MESSAGES = {405: ("method_not_allowed", "Method not allowed."), 404: ("not_found", "Not found.")}


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_bind(request_id: str | None) -> Token[str | None]:
    """Work done for a request elsewhere (a Celery task it queued) logs with the request's id;
    `request_id_reset` with the token ends it."""
    return _request_id.set(request_id)


def request_id_reset(token: Token[str | None]) -> None:
    _request_id.reset(token)


def request_id_for(supplied: str) -> str:
    """The id of a request: the client's `X-Request-ID` when well-formed, else a new one."""
    return supplied if _VALID_REQUEST_ID.match(supplied) else uuid.uuid4().hex


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class _SyncAndAsyncMiddleware:
    """A middleware that runs in the chain it is given: sync (`_call`) in a request thread, async
    (`_acall`) for the tutor stream — never adapted, which would cost a thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        return self._acall(request) if iscoroutinefunction(self) else self._call(request)

    def _call(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError


class RequestIdMiddleware(_SyncAndAsyncMiddleware):
    def _call(self, request: HttpRequest) -> HttpResponseBase:
        token = self._begin(request)
        try:
            return self._finish(request, self.get_response(request))
        finally:
            _request_id.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        token = self._begin(request)
        try:
            return self._finish(request, await self.get_response(request))
        finally:
            _request_id.reset(token)

    @staticmethod
    def _begin(request: HttpRequest):
        request_id = request_id_for(request.headers.get("X-Request-ID", ""))
        request.request_id = request_id  # type: ignore[attr-defined]
        return _request_id.set(request_id)

    @staticmethod
    def _finish(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        # Django answers some errors itself (405 from a plain view, 404 from a static route)
        # with an empty or HTML body: give API clients the envelope instead.
        if (
            response.status_code in _ERROR_MESSAGES
            and not request.path.startswith("/admin")
            and "json" not in response.get("Content-Type", "")
            and not getattr(response, "streaming", False)
        ):
            code, message = _ERROR_MESSAGES[response.status_code]
            response.content = json.dumps(  # type: ignore[attr-defined]
                {"error": {"code": code, "message": message, "fields": {}}, "request_id": request.request_id}
            ).encode()
            response["Content-Type"] = "application/json"
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, usable in an async middleware chain.

    WhiteNoise's middleware is sync-only; one sync middleware makes Django run the whole async
    stack through a thread per request — including every open tutor stream. Static files are a
    dictionary lookup (or a file-system check in development), so serving them on the event
    loop is cheap, and every other request passes straight through to the async chain.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable, settings: object = django_settings) -> None:
        super().__init__(get_response, settings)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if iscoroutinefunction(self):
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)


class RequestMetricsMiddleware(_SyncAndAsyncMiddleware):
    """Counts and times every request by its route pattern (co_project/metrics.py), in the sync
    chain a request thread runs and in the async one of the tutor stream. Outermost, so it sees
    the status the client gets; a stream is timed to its headers, not to its end."""

    def _call(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        http_request_observe(request, response.status_code, time.perf_counter() - started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = await self.get_response(request)
        http_request_observe(request, response.status_code, time.perf_counter() - started)
        return response
