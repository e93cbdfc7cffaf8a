"""ASGI entry point (uvicorn in development, gunicorn + uvicorn workers in production).

Django runs every ASGI request inside its own `ThreadSensitiveContext`, which keeps a thread for
the request's sync parts (middleware hooks, ORM calls) until the response ends — for a tutor
stream, its whole life, so N open streams would hold N threads. Stream paths run outside such a
context: their few sync calls share asgiref's one sync thread, and an open stream holds no
thread at all while it waits for the next chunk.
"""

import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

STREAM_PATHS = frozenset({"/v1/tutor/stream"})


class StreamingASGIHandler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path") in STREAM_PATHS:
            await self.handle(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


django.setup(set_prefix=False)
application = StreamingASGIHandler()
