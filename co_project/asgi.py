"""ASGI entry point (uvicorn in development, gunicorn + uvicorn workers in production).

Two kinds of request, two ways through Django:

- Everything but the tutor stream is sync code (DRF views, the ORM, the admin). Django's async
  middleware chain would hop between the event loop and a thread twice per middleware (every
  `MiddlewareMixin` hook is a `sync_to_async` call): ~0.5 ms a hop, over 10 ms a request. Here
  the whole request — middleware, view, ORM — runs in ONE call in a worker thread, through the
  same sync chain a WSGI server uses, like a threaded WSGI server would run it. The pool is
  `CO_ASGI_THREADS` threads; each thread keeps its database connection as `CONN_MAX_AGE` says
  and checks it before and after every request (what `request_started` / `request_finished`
  do under WSGI).
- The tutor stream (`/v1/tutor/stream`) is an async view through Django's async chain, outside a
  `ThreadSensitiveContext` (which would keep a thread for the stream's whole life): its few sync
  calls share asgiref's one sync thread, and an open stream holds no thread while it waits.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections
from django.http import FileResponse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

STREAM_PATHS = frozenset({"/v1/tutor/stream"})


class StreamingASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._sync = BaseHandler()
        self._sync.load_middleware(is_async=False)
        self._executor = ThreadPoolExecutor(max_workers=settings.CO_ASGI_THREADS, thread_name_prefix="request")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path") in STREAM_PATHS:
            await self.handle(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def run_get_response(self, request):
        if request.path in STREAM_PATHS:
            return await super().run_get_response(request)
        response = await sync_to_async(self._respond, thread_sensitive=False, executor=self._executor)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response

    def _respond(self, request):
        """The whole request in this worker thread, as under WSGI."""
        close_old_connections()
        try:
            return self._sync.get_response(request)
        finally:
            close_old_connections()


django.setup(set_prefix=False)
application = StreamingASGIHandler()
