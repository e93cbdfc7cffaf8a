"""ASGI entry point (uvicorn in development, gunicorn + uvicorn workers in production).

Two kinds of request, two ways through Django:

- Everything but the tutor stream is sync code (DRF views, the ORM, the admin). Django's async
  middleware chain would hop between the event loop and a thread twice per middleware (every
  `MiddlewareMixin` hook is a `sync_to_async` call), each a thread switch on the request's path. Here
  the whole request — the `request_started` signal, middleware, view, ORM, and for a response
  already in memory its `close()` (`request_finished`) — runs in ONE call in a worker thread,
  through the same sync chain a WSGI server uses, like a threaded WSGI server would run it; the
  event loop only reads the body and sends the answer. (Django's own ASGI path adds three more
  hops: a per-request sync context thread for the signals and for `close()`.) The pool is
  `CO_ASGI_THREADS` threads; each thread keeps its database connection as `CONN_MAX_AGE` says,
  and the signals check it before and after every request in the thread that holds it. A fixed
  pool also bounds the connections a process holds: Django's own handler runs each request in a
  thread of its own, and with persistent connections those pile up until PostgreSQL refuses more.
- The tutor stream (`/v1/tutor/stream`) is an async view through Django's async chain, outside a
  `ThreadSensitiveContext` (which would keep a thread for the stream's whole life): its few sync
  calls share asgiref's one sync thread, and an open stream holds no thread while it waits.
"""

import asyncio
import gc
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpResponseBase, JsonResponse
from django.urls import set_script_prefix

from co_project.beat import in_process_beat_start
from co_project.checks import startup_checks_log
from co_project.middleware import request_id_for
from co_project.tracing import tracing_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

STREAM_PATHS = frozenset({"/v1/tutor/stream"})


class StreamingASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._sync = BaseHandler()
        self._sync.load_middleware(is_async=False)
        self._executor = ThreadPoolExecutor(max_workers=settings.CO_ASGI_THREADS, thread_name_prefix="request")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # refuses it
            return
        body = _BoundedBody(receive, settings.CO_REQUEST_MAX_BYTES)
        if body.declared_length(scope) > body.limit:
            await self._refuse_body(scope, send, body.limit)
        elif scope.get("path") in STREAM_PATHS:
            await self.handle(scope, body.receive, send)
        else:
            await self._handle_in_thread(scope, body.receive, send)
        if body.exceeded:
            await self._refuse_body(scope, send, body.limit)

    async def _refuse_body(self, scope, send, limit: int) -> None:
        """413 in the error envelope, sent here: Django never saw the request."""
        supplied = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = request_id_for(supplied)
        response = JsonResponse(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"The request body is larger than {limit} bytes.",
                    "fields": {},
                },
                "request_id": request_id,
            },
            status=413,
        )
        response["X-Request-ID"] = request_id
        response["Connection"] = "close"
        await self.send_response(response, send)

    async def _handle_in_thread(self, scope, receive, send) -> None:
        """A sync request: the body is read and the answer sent here, all the rest in one thread."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            respond = sync_to_async(self._respond, thread_sensitive=False, executor=self._executor)
            response = await respond(scope, body_file)
            if response.streaming and not response.is_async:
                await self._send_sync_stream(response, send)  # closes it, in the thread that produced it
                return
            await self.send_response(response, send)
        finally:
            body_file.close()
        if response.streaming:  # its content was produced while it was sent
            await sync_to_async(response.close, thread_sensitive=False, executor=self._executor)()

    async def _send_sync_stream(self, response, send) -> None:
        """A streaming response with synchronous content (an export), produced piece by piece in a
        worker thread as it is sent. Django's own `send_response` would first collect all of it in
        a list (`sync_to_async(list)`), holding the whole file in memory. Each piece waits for its
        `send` to return, so the server's flow control holds the producer back when the client
        reads slowly; the stream keeps a worker thread as long as it lasts, as under WSGI."""
        loop = asyncio.get_running_loop()
        await send({"type": "http.response.start", "status": response.status_code, "headers": _headers_of(response)})

        def produce() -> None:
            try:
                for part in response:
                    for chunk, _ in self.chunk_bytes(part):
                        message = {"type": "http.response.body", "body": chunk, "more_body": True}
                        asyncio.run_coroutine_threadsafe(send(message), loop).result()
            finally:
                # `request_finished` here: the database connection the content was read on is
                # this thread's, and it is checked (CONN_MAX_AGE) where it was used.
                response.close()

        try:
            await sync_to_async(produce, thread_sensitive=False, executor=self._executor)()
        except OSError:  # the client went away (uvicorn's ClientDisconnected): stop producing
            return
        await send({"type": "http.response.body"})

    def _respond(self, scope, body_file) -> HttpResponseBase:
        """The whole request in this worker thread, as under WSGI."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self._sync.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # `request_finished`, in the thread that holds the connections
        return response


def _headers_of(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    """The response's headers and cookies as ASGI wants them (as `ASGIHandler.send_response`)."""
    headers = [
        (
            header.encode("ascii") if isinstance(header, str) else header,
            value.encode("latin1") if isinstance(value, str) else value,
        )
        for header, value in response.items()
    ]
    headers += [(b"Set-Cookie", cookie.OutputString().encode("ascii")) for cookie in response.cookies.values()]
    return headers


class _BoundedBody:
    """Counts a request's body while the server hands it over. Past the limit it reports a
    disconnect, so Django stops reading (and spooling to disk) and answers nothing; the handler
    then sends the 413 itself. A declared Content-Length over the limit is refused unread."""

    def __init__(self, receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.exceeded = False

    @staticmethod
    def declared_length(scope) -> int:
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0  # the server refuses a malformed length itself
        return 0

    async def receive(self):
        if self.exceeded:
            return {"type": "http.disconnect"}
        message = await self._receive()
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            self.exceeded = True
            return {"type": "http.disconnect"}
        return message


django.setup(set_prefix=False)
startup_checks_log()  # the servers run no system checks: say what is risky where operators look
tracing_install("co-web", web=True)  # before the handler loads the middleware chains
application = StreamingASGIHandler()
in_process_beat_start()  # without a broker, this process runs the periodic tasks (sweeper) itself
# What start-up loaded (Django, the apps, the URL and middleware chains) lives as long as the
# process: keep it out of the garbage collector's full collections, which otherwise walk all of
# it — a pause on some request every few hundred.
gc.freeze()
