"""The verdict's wake-up carries its final fields, so a woken request answers without reading the
row again; anything else on the wake-up list (an older process's bare token) only means the row
is read, as after a slice without a wake-up."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.conf import settings

from submissions import waiting
from submissions.waiting import Announcement, verdict_announce, verdict_await

ANNOUNCEMENT: Announcement = {"status": "passed", "result": {"status": "passed", "kind": "submit", "exec_ms": 4}}


def test_in_process_a_waiter_gets_the_announcement_made_before_or_during_its_wait(settings) -> None:
    settings.REDIS_URL = ""
    before = uuid.uuid4()
    verdict_announce(submission_id=before, announcement=ANNOUNCEMENT)
    assert verdict_await(submission_id=before, timeout=0.01) == ANNOUNCEMENT
    assert verdict_await(submission_id=before, timeout=0.01) is None  # taken once

    during = uuid.uuid4()
    timer = threading.Timer(0.05, verdict_announce, kwargs={"submission_id": during, "announcement": ANNOUNCEMENT})
    timer.start()
    try:
        assert verdict_await(submission_id=during, timeout=5) == ANNOUNCEMENT
    finally:
        timer.cancel()
    assert verdict_await(submission_id=uuid.uuid4(), timeout=0.01) is None


def test_in_process_only_the_newest_announcements_are_kept(settings, monkeypatch) -> None:
    settings.REDIS_URL = ""
    monkeypatch.setattr(waiting, "KEPT_MAX", 3)
    waiting._announced.clear()
    ids = [uuid.uuid4() for _ in range(5)]
    for submission_id in ids:
        verdict_announce(submission_id=submission_id, announcement=ANNOUNCEMENT)
    assert list(waiting._announced) == ids[2:]
    assert verdict_await(submission_id=ids[0], timeout=0.01) is None  # its waiter reads the row
    assert verdict_await(submission_id=ids[4], timeout=0.01) == ANNOUNCEMENT


@pytest.mark.requires_services
def test_through_redis_the_announcement_arrives_whole_and_a_bare_token_is_no_announcement() -> None:
    assert settings.REDIS_URL
    announced, bare = uuid.uuid4(), uuid.uuid4()
    verdict_announce(submission_id=announced, announcement=ANNOUNCEMENT)
    waiting._announced.clear()  # as in another process: only Redis carries it
    assert verdict_await(submission_id=announced, timeout=1) == ANNOUNCEMENT

    waiting._redis().rpush(waiting._key(bare), 1)  # what a process of the previous release pushes
    assert verdict_await(submission_id=bare, timeout=1) is None
    assert waiting._redis().llen(waiting._key(bare)) == 0
