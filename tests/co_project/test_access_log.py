"""The access log's redaction of stream tokens, on the record uvicorn logs (real servers:
tests/tutoring/test_stream_server.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from co_project.access_log import access_log_redaction_install, access_path_redacted

TOKEN = "zqx-stream-token-8f3b"


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """What uvicorn's access logger writes, formatted by uvicorn's own access formatter."""
    logger = logging.getLogger("uvicorn.access")
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    previous = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield output
    logger.removeHandler(handler)
    logger.setLevel(previous[0])
    logger.propagate = previous[1]


def log_request(path_with_query: str, status: int = 200) -> None:
    """The call uvicorn's HTTP protocols make once a response is sent."""
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "203.0.113.7:50412", "GET", path_with_query, "1.1", status
    )


def test_the_filter_is_installed_when_django_starts_and_redacts_the_stream_query(access_log: io.StringIO) -> None:
    log_request(f"/v1/tutor/stream?token={TOKEN}")
    log_request(f"/v1/tutor/stream?x=1&token={TOKEN}", 401)

    assert access_log.getvalue().splitlines() == [
        '203.0.113.7:50412 - "GET /v1/tutor/stream?[redacted] HTTP/1.1" 200 OK',
        '203.0.113.7:50412 - "GET /v1/tutor/stream?[redacted] HTTP/1.1" 401 Unauthorized',
    ]


def test_installing_twice_adds_one_filter() -> None:
    access_log_redaction_install()
    access_log_redaction_install()

    names = [type(f).__name__ for f in logging.getLogger("uvicorn.access").filters]
    assert names.count("StreamTokenRedactingFilter") == 1


@pytest.mark.parametrize(
    ("logged", "written"),
    [
        (f"/v1/tutor/stream?token={TOKEN}", "/v1/tutor/stream?[redacted]"),
        (f"/v1/tutor/stream/?token={TOKEN}", "/v1/tutor/stream/?[redacted]"),
        (f"/v1/tutor/%73tream?token={TOKEN}", "/v1/tutor/%73tream?[redacted]"),
        (f"/v1/tutor/stream?%74oken={TOKEN}", "/v1/tutor/stream?[redacted]"),
        (f"/v1/tracks?page=2&token={TOKEN}", "/v1/tracks?page=2&token=[redacted]"),
        (f"/v1/tracks?TOKEN={TOKEN}&page=2", "/v1/tracks?TOKEN=[redacted]&page=2"),
        (f"/v1/tracks?t%6Fken={TOKEN}", "/v1/tracks?t%6Fken=[redacted]"),
        ("/v1/tracks?page=2&tokens=3", "/v1/tracks?page=2&tokens=3"),
        ("/v1/tutor/stream", "/v1/tutor/stream"),
        ("/health", "/health"),
    ],
)
def test_what_a_request_target_is_logged_as(logged: str, written: str) -> None:
    assert access_path_redacted(logged) == written


def test_records_of_another_shape_pass_unchanged(access_log: io.StringIO) -> None:
    logger = logging.getLogger("uvicorn.access")
    record = logger.makeRecord("uvicorn.access", logging.INFO, __file__, 1, "plain %s", ("text",), None)

    assert logger.filter(record)
    assert record.args == ("text",)
