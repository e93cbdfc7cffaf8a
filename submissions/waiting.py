"""Waking a request that waits for a verdict the moment it commits (worker mode).

With Redis configured (`CO_REDIS_URL`), the evaluation pushes a token onto a short-lived list
per submission once its verdict has committed, and the waiting request blocks on that list
(`BLPOP`) instead of sleeping between polls. The list outlives a notification sent before the
request started waiting, and every wait is bounded, so a lost notification (Redis restarted, a
second waiter took the token) only means the next database read finds the verdict. Without Redis
there is nothing to wait on and the caller polls.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.conf import settings

logger = logging.getLogger("co.submissions")

# Long enough for any request still waiting (CO_SUBMISSION_WAIT_SECONDS), short enough not to pile up.
TOKEN_SECONDS = 60


def _key(submission_id: uuid.UUID) -> str:
    return f"co:verdict:{submission_id}"


def _redis() -> Any:
    """The cache's Redis client (the cache is django-redis whenever CO_REDIS_URL is set)."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def verdict_wake_up_configured() -> bool:
    return bool(settings.REDIS_URL)


def verdict_announce(*, submission_id: uuid.UUID) -> None:
    """The verdict is committed: wake whoever waits. Best effort; never raises."""
    if not verdict_wake_up_configured():
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.rpush(_key(submission_id), 1)
        pipe.expire(_key(submission_id), TOKEN_SECONDS)
        pipe.execute()
    except Exception:  # the waiter's bounded wait and database read cover a lost token
        logger.warning("could not announce the verdict of %s", submission_id, exc_info=True)


def verdict_await(*, submission_id: uuid.UUID, timeout: float) -> bool:
    """Block up to `timeout` seconds (more than 0, less than the cache's 2 s socket timeout) for
    the announcement; True when one arrived."""
    if not verdict_wake_up_configured():
        return False
    try:
        return _redis().blpop([_key(submission_id)], timeout=max(timeout, 0.01)) is not None
    except Exception:  # Redis unreachable: wait out the slice, then the caller reads the database
        logger.warning("could not wait for the verdict of %s", submission_id, exc_info=True)
        time.sleep(timeout)
        return False
