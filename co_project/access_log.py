"""The web server's access log never carries a tutor stream token.

`GET /v1/tutor/stream?token=…` is authenticated by its query string (EventSource cannot send a
header), and uvicorn's access log — also under gunicorn's uvicorn workers — writes each request
line with its query string. A log line is read by more people and systems than the API is, and
kept longer than a token lives, so the stream's query string is replaced before any handler
formats the record, and so is a `token` parameter on any other path. The filter sits on the
`uvicorn.access` logger itself: installed when Django starts in the serving process (the app's
`ready()`, for `make run` and gunicorn alike) and by gunicorn.conf.py's worker hook.

No Django imports here: gunicorn.conf.py imports this module in the arbiter.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, unquote_plus

ACCESS_LOGGERS = ("uvicorn.access",)
STREAM_PATH = "/v1/tutor/stream"
REDACTED = "[redacted]"


def _parameter_redacted(parameter: str) -> str:
    name, separator, _ = parameter.partition("=")
    return f"{name}={REDACTED}" if separator and unquote_plus(name).strip().lower() == "token" else parameter


def access_path_redacted(path_with_query: str) -> str:
    """The request target as it may be logged: no query string on the stream, no token anywhere."""
    path, separator, query = path_with_query.partition("?")
    if not separator:
        return path_with_query
    if unquote(path).rstrip("/") == STREAM_PATH:
        return f"{path}?{REDACTED}"
    return f"{path}?{'&'.join(_parameter_redacted(parameter) for parameter in query.split('&'))}"


class StreamTokenRedactingFilter(logging.Filter):
    """Rewrites the request target of an access-log record (uvicorn's arguments: client
    address, method, path with query string, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        arguments = record.args
        if isinstance(arguments, tuple) and len(arguments) >= 3 and isinstance(arguments[2], str):
            redacted = access_path_redacted(arguments[2])
            if redacted != arguments[2]:
                record.args = (*arguments[:2], redacted, *arguments[3:])
        return True


def access_log_redaction_install() -> None:
    """Attach the filter to the access loggers once per process (idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, StreamTokenRedactingFilter) for existing in logger.filters):
            logger.addFilter(StreamTokenRedactingFilter())
