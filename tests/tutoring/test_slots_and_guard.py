"""Stream slot leases (in-process, and Redis in the PostgreSQL + Redis run) and the solution
redactor."""

from __future__ import annotations

import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from tutoring.slots import InProcessStreamSlots, RedisStreamSlots
from tutoring.tutors import WITHHELD, SolutionRedactor, chunk_text

DEADLINE_SECONDS = 10


def _until(predicate, deadline: float = DEADLINE_SECONDS) -> bool:
    """Poll `predicate` until it holds or the deadline passes (a bound, not a timing assertion)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _in_process(limit: int = 2, lease: float = 30.0) -> InProcessStreamSlots:
    return InProcessStreamSlots(limit=limit, lease_seconds=lease)


def _redis(limit: int = 2, lease: float = 30.0) -> RedisStreamSlots:
    return RedisStreamSlots(settings.REDIS_URL, limit=limit, lease_seconds=lease)


BACKENDS = [
    pytest.param(_in_process, id="in-process"),
    pytest.param(_redis, id="redis", marks=pytest.mark.requires_services),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_learner_holds_at_most_the_limit(backend) -> None:
    slots = backend()
    learner, other = f"learner-{uuid.uuid4()}", f"learner-{uuid.uuid4()}"
    acquire = async_to_sync(slots.acquire)

    assert [acquire(learner, "a"), acquire(learner, "b"), acquire(learner, "c")] == [True, True, False]
    assert acquire(other, "a") is True  # per learner
    assert acquire(learner, "a") is True  # a stream re-acquiring its own lease is not a new slot
    async_to_sync(slots.release)(learner, "a")
    assert async_to_sync(slots.held)(learner) == 1
    assert acquire(learner, "c") is True


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lease_nobody_renews_lapses_and_a_renewed_one_does_not(backend) -> None:
    slots = backend(limit=1, lease=0.3)
    learner = f"learner-{uuid.uuid4()}"
    assert async_to_sync(slots.acquire)(learner, "crashed") is True
    assert async_to_sync(slots.acquire)(learner, "next") is False

    # Nobody renews "crashed" (its process died): its slot comes back.
    assert _until(lambda: async_to_sync(slots.acquire)(learner, "next"))
    assert async_to_sync(slots.renew)(learner, "crashed") is False

    # A stream that renews keeps its slot past several lease lengths.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        assert async_to_sync(slots.renew)(learner, "next") is True
        time.sleep(0.1)
    assert async_to_sync(slots.acquire)(learner, "third") is False


@pytest.mark.requires_services
def test_redis_leases_are_shared_by_every_process() -> None:
    """Two counters with their own connections stand for two web processes."""
    first, second = _redis(limit=2), _redis(limit=2)
    learner = f"learner-{uuid.uuid4()}"

    assert async_to_sync(first.acquire)(learner, "a") is True
    assert async_to_sync(second.acquire)(learner, "b") is True
    assert async_to_sync(first.acquire)(learner, "c") is False
    assert async_to_sync(second.held)(learner) == 2
    async_to_sync(second.release)(learner, "a")
    assert async_to_sync(first.acquire)(learner, "c") is True


def test_the_redactor_withholds_a_secret_split_across_chunks() -> None:
    redactor = SolutionRedactor(["return text.upper()"])
    pieces = ["Now write ", "return te", "xt.up", "per() and ", "test it."]

    shown = "".join(redactor.feed(piece) for piece in pieces) + redactor.flush()

    assert shown == f"Now write {WITHHELD} and test it."
    assert redactor.redactions == 1


def test_without_secrets_text_passes_straight_through() -> None:
    redactor = SolutionRedactor([])

    assert redactor.feed("Hint 1 ") == "Hint 1 "
    assert redactor.flush() == ""


def test_chunks_keep_every_character() -> None:
    text = "Hint 1 of 3:  a nudge.\n\nThink  again."

    chunks = chunk_text(text)

    assert "".join(chunks) == text
    assert chunks[0] == "Hint 1 of "
