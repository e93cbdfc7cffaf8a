"""Review scheduling (personalization/scheduling.py): verdict → rating, the buckets' predicted
recall, FSRS-6 memory states stored per review item, and the review log every review appends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fsrs
import pytest

from personalization.models import ReviewItem, ReviewLog, ReviewRating
from personalization.scheduling import (
    BucketScheduler,
    MemoryState,
    is_fast,
    review_rating,
    review_scheduler,
)
from personalization.services import GradedAttempt, attempt_record
from tests.personalization.factories import publish_ladder
from tracks.models import Problem

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def problem_id():
    publish_ladder()
    return Problem.objects.get(slug="a3").id  # difficulty 2: expected 15 minutes


def attempt(problem_id, at: datetime, *, passed: bool, hints: int = 0, seconds: float | None = 600.0, learner: str = "alice"):
    return attempt_record(
        attempt=GradedAttempt(
            learner_id=learner,
            problem_id=problem_id,
            passed=passed,
            tests_passed=4 if passed else 1,
            tests_total=4,
            max_hint_level=hints,
            seconds_taken=seconds,
            at=at,
        )
    )


def logs(learner: str = "alice") -> list[tuple]:
    return list(
        ReviewLog.objects.filter(learner_id=learner)
        .order_by("reviewed_at", "id")
        .values_list("reviewed_at", "rating", "state", "duration_ms", "predicted_recall", "elapsed_days", "scheduler")
    )


# --- verdict → rating --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("passed", "heavy", "slow", "fast", "rating"),
    [
        (False, False, False, False, ReviewRating.AGAIN),
        (False, True, True, False, ReviewRating.AGAIN),
        (True, True, False, False, ReviewRating.HARD),
        (True, False, True, False, ReviewRating.HARD),
        (True, False, False, False, ReviewRating.GOOD),
        (True, False, False, True, ReviewRating.EASY),
    ],
)
def test_verdicts_map_to_ratings(passed, heavy, slow, fast, rating) -> None:
    assert review_rating(passed=passed, heavy_hints=heavy, slow=slow, fast=fast) == rating


def test_a_fast_pass_is_one_without_hints_in_at_most_half_the_expected_time() -> None:
    assert is_fast(seconds_taken=450, expected_seconds=900, max_hint_level=0) is True
    assert is_fast(seconds_taken=451, expected_seconds=900, max_hint_level=0) is False
    assert is_fast(seconds_taken=10, expected_seconds=900, max_hint_level=1) is False
    assert is_fast(seconds_taken=None, expected_seconds=900, max_hint_level=0) is False


# --- buckets -------------------------------------------------------------------------------------


def test_bucket_predicted_recall_is_ninety_percent_at_the_due_date_on_an_exponential_curve() -> None:
    buckets = BucketScheduler()
    memory = MemoryState(bucket=2, next_due_at=T0 + 7 * DAY, last_reviewed_at=T0, stability=None, difficulty=None)
    assert buckets.predicted_recall(memory, T0) == 1.0
    assert buckets.predicted_recall(memory, T0 + 7 * DAY) == 0.9
    assert buckets.predicted_recall(memory, T0 + 14 * DAY) == 0.9**2
    assert buckets.predicted_recall(memory, T0 + timedelta(days=3.5)) == 0.9**0.5


def test_buckets_log_every_review_with_rating_prediction_and_retire_after_the_last_bucket(problem_id) -> None:
    assert attempt(problem_id, T0, passed=False)["review"] == {
        "action": "reset",
        "bucket": 0,
        "rating": 1,
        "next_due_at": T0 + DAY,
    }
    # Two days after a 1-day bucket: predicted 0.9².
    assert attempt(problem_id, T0 + 2 * DAY, passed=True, seconds=600)["review"] == {
        "action": "promoted",
        "bucket": 1,
        "rating": 3,
        "next_due_at": T0 + 5 * DAY,
    }
    attempt(problem_id, T0 + 5 * DAY, passed=True, hints=2)  # heavy hints: Hard, still promoted
    attempt(problem_id, T0 + 12 * DAY, passed=True, seconds=60)  # fast and clean: Easy
    assert attempt(problem_id, T0 + 33 * DAY, passed=True)["review"] == {"action": "retired", "bucket": 3, "rating": 3}
    assert attempt(problem_id, T0 + 40 * DAY, passed=True)["review"] is None  # retired: not a review
    assert logs() == [
        (T0, 1, 0, 600_000, None, None, "buckets"),
        (T0 + 2 * DAY, 3, 2, 600_000, 0.9**2, 2.0, "buckets"),
        (T0 + 5 * DAY, 2, 2, 600_000, 0.9, 3.0, "buckets"),
        (T0 + 12 * DAY, 4, 2, 60_000, 0.9, 7.0, "buckets"),
        (T0 + 33 * DAY, 3, 2, 600_000, 0.9, 21.0, "buckets"),
    ]
    item = ReviewItem.objects.get(learner_id="alice")
    assert (item.bucket, item.retired_at, item.last_reviewed_at, item.stability, item.scheduler) == (
        3,
        T0 + 33 * DAY,
        T0 + 33 * DAY,
        None,
        "buckets",
    )


def test_a_clean_pass_of_a_problem_not_in_the_queue_is_no_review(problem_id) -> None:
    assert attempt(problem_id, T0, passed=True)["review"] is None
    assert ReviewLog.objects.count() == 0
    assert ReviewItem.objects.count() == 0


def test_a_hint_heavy_pass_queues_the_problem_as_a_hard_first_review(problem_id) -> None:
    assert attempt(problem_id, T0, passed=True, hints=3, seconds=None)["review"] == {
        "action": "added",
        "bucket": 0,
        "rating": 2,
        "reason": "heavy-hint",
        "next_due_at": T0 + DAY,
    }
    assert logs() == [(T0, 2, 0, None, None, None, "buckets")]


# --- FSRS ----------------------------------------------------------------------------------------


def reference_fsrs(retention: float = 0.9) -> fsrs.Scheduler:
    return fsrs.Scheduler(desired_retention=retention, learning_steps=(), relearning_steps=(), enable_fuzzing=False)


def fsrs6_recall(stability: float, days: float) -> float:
    """FSRS-6's forgetting curve, written out: R = (1 + factor · t / S) ^ −w20, with factor set so
    that R(S) = 0.9."""
    decay = -fsrs.scheduler.DEFAULT_PARAMETERS[20]
    factor = 0.9 ** (1 / decay) - 1
    return (1 + factor * days / stability) ** decay


def test_fsrs_stores_the_memory_state_per_item_and_logs_its_predicted_recall(problem_id, settings) -> None:
    settings.CO_REVIEW_SCHEDULER = "fsrs"
    reference = reference_fsrs()
    card = fsrs.Card(card_id=1, state=fsrs.State.Learning, step=0)

    assert attempt(problem_id, T0, passed=False)["review"]["next_due_at"] == T0 + DAY
    card, _ = reference.review_card(card, fsrs.Rating.Again, review_datetime=T0)
    item = ReviewItem.objects.get(learner_id="alice")
    assert item.stability == fsrs.scheduler.DEFAULT_PARAMETERS[0]  # w0: the initial stability after Again
    assert (item.stability, item.difficulty, item.next_due_at, item.scheduler) == (
        card.stability,
        card.difficulty,
        card.due,
        "fsrs",
    )

    expected_recall = fsrs6_recall(card.stability, 1.0)
    result = attempt(problem_id, T0 + DAY, passed=True)  # Good
    card, _ = reference.review_card(card, fsrs.Rating.Good, review_datetime=T0 + DAY)
    item.refresh_from_db()
    assert result["review"] == {"action": "promoted", "bucket": 1, "rating": 3, "next_due_at": card.due}
    assert (item.stability, item.difficulty, item.next_due_at, item.last_reviewed_at) == (
        card.stability,
        card.difficulty,
        card.due,
        T0 + DAY,
    )
    assert card.due - (T0 + DAY) > DAY  # the interval grows after a success
    [first, second] = logs()
    assert first == (T0, 1, 0, 600_000, None, None, "fsrs")
    assert second[:4] == (T0 + DAY, 3, 2, 600_000) and second[5:] == (1.0, "fsrs")
    assert second[4] == pytest.approx(expected_recall, rel=1e-12)


def test_fsrs_items_never_retire_and_a_miss_shrinks_the_interval(problem_id, settings) -> None:
    settings.CO_REVIEW_SCHEDULER = "fsrs"
    at = T0
    attempt(problem_id, at, passed=False)
    intervals = []
    for _ in range(6):
        at = ReviewItem.objects.get(learner_id="alice").next_due_at
        result = attempt(problem_id, at, passed=True)["review"]
        assert result["action"] == "promoted"
        intervals.append(result["next_due_at"] - at)
    assert intervals == sorted(intervals) and intervals[-1] > 21 * DAY
    item = ReviewItem.objects.get(learner_id="alice")
    assert (item.bucket, item.retired_at) == (3, None)
    at = item.next_due_at
    result = attempt(problem_id, at, passed=False)["review"]
    assert result["action"] == "reset" and result["bucket"] == 0
    assert result["next_due_at"] - at < intervals[-1]
    assert [row[4] is not None for row in logs()] == [False, *[True] * 7]
    # Reviewed on their due dates, FSRS predicted the target retention each time (intervals are
    # whole days) — except after the first miss, whose 0.2-day stability is floored to a day.
    predictions = [row[4] for row in logs()]
    assert predictions[1] < 0.8
    assert all(abs(p - 0.9) < 0.01 for p in predictions[2:])


def test_the_desired_retention_sets_how_long_fsrs_waits(problem_id, settings) -> None:
    settings.CO_REVIEW_SCHEDULER = "fsrs"
    settings.CO_REVIEW_TARGET_RETENTION = 0.8
    attempt(problem_id, T0, passed=False)
    loose = attempt(problem_id, T0 + DAY, passed=True)["review"]["next_due_at"]
    settings.CO_REVIEW_TARGET_RETENTION = 0.95
    attempt(problem_id, T0, passed=False, learner="bob")
    strict = attempt(problem_id, T0 + DAY, passed=True, learner="bob")["review"]["next_due_at"]
    assert review_scheduler().name == "fsrs"
    assert strict < loose


def test_an_item_from_the_buckets_continues_under_fsrs_as_a_new_card(problem_id, settings) -> None:
    attempt(problem_id, T0, passed=False)  # buckets
    settings.CO_REVIEW_SCHEDULER = "fsrs"
    attempt(problem_id, T0 + DAY, passed=True)
    item = ReviewItem.objects.get(learner_id="alice")
    assert item.scheduler == "fsrs" and item.stability == fsrs.scheduler.DEFAULT_PARAMETERS[2]  # w2: first review Good
    # The buckets' prediction still comes from the buckets (no FSRS memory to predict from yet).
    assert [(row[4], row[6]) for row in logs()] == [(None, "buckets"), (None, "fsrs")]


def test_an_unknown_scheduler_is_refused() -> None:
    with pytest.raises(LookupError):
        review_scheduler("sm2")
