"""Waking a request that waits for a verdict the moment the verdict commits.

An announcement carries the verdict's final fields (`status`, `result`: all a learner is shown
besides what the waiter's row already holds), so the woken request answers without reading the
row again. Every announcement is kept in this process for a short while, so a verdict graded in the process
that waits for it (the in-process queue: Celery eager, or a worker's own request) wakes the
waiter at once, even when it was announced before the wait began. With Redis configured
(`CO_REDIS_URL`) the evaluation also pushes it onto a short-lived list per submission and a
waiter in another process blocks on that list (`BLPOP`). Every wait is bounded, so a lost
notification (Redis restarted, a second waiter took the token) only means the next database read
finds the verdict.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, TypedDict

from django.conf import settings

logger = logging.getLogger("co.submissions")

# Long enough for any request still waiting (CO_SUBMISSION_WAIT_SECONDS), short enough not to pile up.
TOKEN_SECONDS = 60
# Announcements kept in this process at most: a worker announces every verdict it grades and almost
# none has a waiter here; one pushed out only costs its waiter a read of the row.
KEPT_MAX = 1000


class Announcement(TypedDict):
    """A committed verdict's final fields."""

    status: str
    result: dict[str, Any]


# submission id → (when it lapses, the announcement)
_announced: OrderedDict[uuid.UUID, tuple[float, Announcement]] = OrderedDict()
_changed = threading.Condition()


def _key(submission_id: uuid.UUID) -> str:
    return f"co:verdict:{submission_id}"


def _redis() -> Any:
    """The cache's Redis client (the cache is django-redis whenever CO_REDIS_URL is set)."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def verdict_announce(*, submission_id: uuid.UUID, announcement: Announcement) -> None:
    """The verdict is committed: wake whoever waits. Best effort; never raises."""
    now = time.monotonic()
    with _changed:
        while _announced and (next(iter(_announced.values()))[0] < now or len(_announced) >= KEPT_MAX):
            _announced.popitem(last=False)
        _announced[submission_id] = (now + TOKEN_SECONDS, announcement)
        _changed.notify_all()
    if not settings.REDIS_URL:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.rpush(_key(submission_id), json.dumps(announcement, separators=(",", ":")))
        pipe.expire(_key(submission_id), TOKEN_SECONDS)
        pipe.execute()
    except Exception:  # the waiter's bounded wait and database read cover a lost token
        logger.warning("could not announce the verdict of %s", submission_id, exc_info=True)


def verdict_await(*, submission_id: uuid.UUID, timeout: float) -> Announcement | None:
    """Block up to `timeout` seconds (more than 0, less than the cache's socket timeout) for the
    announcement; None when none arrived."""
    with _changed:
        if (kept := _announced.pop(submission_id, None)) is not None:
            return kept[1]
        if not settings.REDIS_URL:
            _changed.wait_for(lambda: submission_id in _announced, timeout=timeout)
            kept = _announced.pop(submission_id, None)
            return None if kept is None else kept[1]
    try:
        popped = _redis().blpop([_key(submission_id)], timeout=max(timeout, 0.01))
    except Exception:  # Redis unreachable: wait out the slice, then the caller reads the database
        logger.warning("could not wait for the verdict of %s", submission_id, exc_info=True)
        time.sleep(timeout)
        return None
    if popped is None:
        return None
    try:
        announced = json.loads(popped[1])
    except ValueError:  # not one of ours (an older process's bare token): the caller reads the row
        return None
    return announced if isinstance(announced, dict) and {"status", "result"} <= announced.keys() else None
