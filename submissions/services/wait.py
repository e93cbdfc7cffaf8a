"""A request waits for its submission's verdict, woken when the verdict commits."""

from __future__ import annotations

import time

from submissions.models import Submission
from submissions.waiting import verdict_await

# A wake-up is only lost when Redis loses it, so the row is read again only this rarely; below the
# cache's socket timeout, which bounds a blocking Redis read.
WAIT_SLICE_SECONDS = 1.0


def submission_wait(*, submission: Submission, timeout: float) -> Submission:
    """Wait up to `timeout` seconds for the verdict, waking when it commits (waiting.py) rather
    than polling. The wake-up carries the verdict's final fields (status and result); a slice
    that ends without one reads those again, so a lost wake-up costs one slice. The caller's row
    was just written or read, so the first read follows the first wait."""
    deadline = time.monotonic() + timeout
    while not submission.is_final and (remaining := deadline - time.monotonic()) > 0:
        announced = verdict_await(submission_id=submission.id, timeout=min(WAIT_SLICE_SECONDS, remaining))
        if announced is None:
            submission.refresh_from_db(fields=["status", "result"])
        else:
            submission.status, submission.result = announced["status"], announced["result"]
    return submission
