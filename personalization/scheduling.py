"""Review scheduling: when a review item comes due next, and how likely the learner is to recall
the problem at a review (logged with every review, so schedulers can be compared on real logs).

Two schedulers, picked by `CO_REVIEW_SCHEDULER`:

* `buckets` (the default, seeds/001): due 1 / 3 / 7 / 21 days after the last result; a pass
  promotes one bucket (a pass at the last bucket retires the item), a miss resets to bucket 0.
  Its **predicted recall** reads each bucket's interval as the time recall falls to 90% on an
  exponential forgetting curve: p = 0.9 ^ (days since the item was scheduled / the bucket's
  interval). So a review exactly on its due date is predicted at 0.9, one at half the interval at
  0.95, a review twice as late at 0.81. The buckets do not model memory; this is the recall they
  implicitly promise, and what bench/review_scheduling.py scores them on.
* `fsrs`: FSRS-6 (the `fsrs` package, default parameters) aiming at `CO_REVIEW_TARGET_RETENTION`.
  A problem is attempted at most once a day in practice, so there are no minute-scale (re)learning
  steps: every card goes straight to the Review state with day-scale intervals, and a card is
  its stability, difficulty and last review time (stored on the ReviewItem). No fuzz: the daily
  cap of study paths spreads the load. FSRS items never retire: intervals keep growing instead.

A verdict becomes a rating (`review_rating`): a miss (or giving up) is Again; a pass with heavy
hints (level ≥ 2) or slower than expected for the difficulty is Hard; a pass without hints in at
most half the expected time is Easy; any other pass is Good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Protocol

import fsrs
from django.conf import settings

from personalization.models import REVIEW_INTERVAL_DAYS, ReviewRating, ReviewSchedulerName

BUCKET_RECALL_AT_DUE = 0.9
FAST_PASS_FRACTION = 0.5
LAST_BUCKET = len(REVIEW_INTERVAL_DAYS) - 1
SECONDS_PER_DAY = 86400.0


def review_rating(*, passed: bool, heavy_hints: bool, slow: bool, fast: bool) -> ReviewRating:
    """The FSRS grade of a verdict (see the module docstring)."""
    if not passed:
        return ReviewRating.AGAIN
    if heavy_hints or slow:
        return ReviewRating.HARD
    if fast:
        return ReviewRating.EASY
    return ReviewRating.GOOD


def is_fast(*, seconds_taken: float | None, expected_seconds: float, max_hint_level: int) -> bool:
    return max_hint_level == 0 and seconds_taken is not None and seconds_taken <= FAST_PASS_FRACTION * expected_seconds


@dataclass(frozen=True)
class MemoryState:
    """What a scheduler reads of a review item (None: the item is new, or starts over)."""

    bucket: int
    next_due_at: datetime
    last_reviewed_at: datetime | None
    stability: float | None
    difficulty: float | None


@dataclass(frozen=True)
class Scheduled:
    """What a review leaves: the item's bucket, next due time and memory state, or its retirement."""

    bucket: int
    next_due_at: datetime
    stability: float | None = None
    difficulty: float | None = None
    retire: bool = False


class ReviewScheduler(Protocol):
    name: str

    def predicted_recall(self, memory: MemoryState, now: datetime) -> float | None:
        """The probability of recall at `now`, or None when the scheduler has no prediction."""

    def review(self, memory: MemoryState | None, rating: ReviewRating, now: datetime) -> Scheduled:
        """The item after a review with this rating (`memory` None: a new item)."""


def elapsed_days(memory: MemoryState | None, now: datetime) -> float | None:
    if memory is None or memory.last_reviewed_at is None:
        return None
    return max(0.0, (now - memory.last_reviewed_at).total_seconds() / SECONDS_PER_DAY)


class BucketScheduler:
    """The seeds' fixed buckets, with the recall mapping of the module docstring."""

    name = ReviewSchedulerName.BUCKETS.value

    def predicted_recall(self, memory: MemoryState, now: datetime) -> float | None:
        interval = REVIEW_INTERVAL_DAYS[min(max(memory.bucket, 0), LAST_BUCKET)]
        scheduled_at = memory.next_due_at - timedelta(days=interval)
        days = max(0.0, (now - scheduled_at).total_seconds() / SECONDS_PER_DAY)
        return BUCKET_RECALL_AT_DUE ** (days / interval)

    def review(self, memory: MemoryState | None, rating: ReviewRating, now: datetime) -> Scheduled:
        if memory is None or rating == ReviewRating.AGAIN:
            return Scheduled(bucket=0, next_due_at=now + timedelta(days=REVIEW_INTERVAL_DAYS[0]))
        if memory.bucket >= LAST_BUCKET:
            return Scheduled(bucket=memory.bucket, next_due_at=memory.next_due_at, retire=True)
        bucket = memory.bucket + 1
        return Scheduled(bucket=bucket, next_due_at=now + timedelta(days=REVIEW_INTERVAL_DAYS[bucket]))


class FsrsScheduler:
    """FSRS-6 through the `fsrs` package (see the module docstring)."""

    name = ReviewSchedulerName.FSRS.value

    def __init__(self, *, desired_retention: float) -> None:
        self._fsrs = fsrs.Scheduler(
            desired_retention=desired_retention, learning_steps=(), relearning_steps=(), enable_fuzzing=False
        )

    @staticmethod
    def _card(memory: MemoryState | None) -> fsrs.Card:
        if memory is None or memory.stability is None or memory.difficulty is None or memory.last_reviewed_at is None:
            return fsrs.Card(card_id=1, state=fsrs.State.Learning, step=0)
        return fsrs.Card(
            card_id=1,
            state=fsrs.State.Review,
            step=None,
            stability=memory.stability,
            difficulty=memory.difficulty,
            due=memory.next_due_at.astimezone(UTC),
            last_review=memory.last_reviewed_at.astimezone(UTC),
        )

    def predicted_recall(self, memory: MemoryState, now: datetime) -> float | None:
        card = self._card(memory)
        if card.stability is None:
            return None
        return float(self._fsrs.get_card_retrievability(card, current_datetime=now.astimezone(UTC)))

    def review(self, memory: MemoryState | None, rating: ReviewRating, now: datetime) -> Scheduled:
        card, _ = self._fsrs.review_card(self._card(memory), fsrs.Rating(int(rating)), review_datetime=now.astimezone(UTC))
        bucket = 0 if rating == ReviewRating.AGAIN or memory is None else min(memory.bucket + 1, LAST_BUCKET)
        return Scheduled(bucket=bucket, next_due_at=card.due, stability=card.stability, difficulty=card.difficulty)


@cache
def _fsrs_scheduler(desired_retention: float) -> FsrsScheduler:
    return FsrsScheduler(desired_retention=desired_retention)


def review_scheduler(name: str | None = None) -> ReviewScheduler:
    """The configured scheduler (`CO_REVIEW_SCHEDULER`), or the one named."""
    name = name or settings.CO_REVIEW_SCHEDULER
    if name == ReviewSchedulerName.FSRS:
        return _fsrs_scheduler(float(settings.CO_REVIEW_TARGET_RETENTION))
    if name == ReviewSchedulerName.BUCKETS:
        return BucketScheduler()
    raise LookupError(f"no review scheduler {name!r} (known: buckets, fsrs)")
