"""The review log as the FSRS optimizer reads it (personalization.selectors.review_log_revlog_*):
header, columns, date range, ownership, streaming at a constant query count."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from personalization.models import ReviewItem, ReviewLog
from personalization.selectors import REVLOG_HEADER, review_log_revlog_csv, review_log_revlog_rows
from personalization.services import GradedAttempt, attempt_record
from tests.personalization.factories import publish_ladder
from tracks.models import Problem

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def attempt(learner: str, slug: str, at: datetime, *, passed: bool, seconds: float | None = 600.0) -> None:
    attempt_record(
        attempt=GradedAttempt(
            learner_id=learner,
            problem_id=Problem.objects.get(slug=slug).id,
            passed=passed,
            tests_passed=1,
            tests_total=4,
            seconds_taken=seconds,
            at=at,
        )
    )


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@pytest.fixture
def history() -> dict[str, int]:
    publish_ladder()
    attempt("alice", "a3", T0, passed=False)
    attempt("alice", "a4", T0 + timedelta(hours=1), passed=False, seconds=None)
    attempt("alice", "a3", T0 + DAY, passed=True)
    attempt("alice", "a4", T0 + 2 * DAY, passed=False, seconds=12.5)
    attempt("bob", "a3", T0, passed=False)
    return {slug: ReviewItem.objects.get(learner_id="alice", problem__slug=slug).id for slug in ("a3", "a4")}


def test_the_revlog_has_the_optimizers_columns_oldest_first(history) -> None:
    a3, a4 = history["a3"], history["a4"]
    assert list(review_log_revlog_rows(learner_id="alice")) == [
        ("card_id", "review_time", "review_rating", "review_state", "review_duration"),
        (a3, ms(T0), 1, 0, 600_000),
        (a4, ms(T0 + timedelta(hours=1)), 1, 0, ""),
        (a3, ms(T0 + DAY), 3, 2, 600_000),
        (a4, ms(T0 + 2 * DAY), 1, 2, 12_500),
    ]
    assert REVLOG_HEADER == ("card_id", "review_time", "review_rating", "review_state", "review_duration")


def test_the_date_range_includes_from_and_excludes_to(history) -> None:
    rows = list(review_log_revlog_rows(learner_id="alice", since=T0 + timedelta(hours=1), until=T0 + 2 * DAY))
    assert rows == [
        REVLOG_HEADER,
        (history["a4"], ms(T0 + timedelta(hours=1)), 1, 0, ""),
        (history["a3"], ms(T0 + DAY), 3, 2, 600_000),
    ]
    assert list(review_log_revlog_rows(learner_id="alice", since=T0 + 3 * DAY)) == [REVLOG_HEADER]
    assert list(review_log_revlog_rows(learner_id="nobody")) == [REVLOG_HEADER]


def test_the_csv_is_what_a_csv_reader_reads_back(history) -> None:
    text = "".join(review_log_revlog_csv(learner_id="alice"))
    assert text.splitlines()[0] == "card_id,review_time,review_rating,review_state,review_duration"
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[1:] == [
        [str(history["a3"]), str(ms(T0)), "1", "0", "600000"],
        [str(history["a4"]), str(ms(T0 + timedelta(hours=1))), "1", "0", ""],
        [str(history["a3"]), str(ms(T0 + DAY)), "3", "2", "600000"],
        [str(history["a4"]), str(ms(T0 + 2 * DAY)), "1", "2", "12500"],
    ]


def test_another_learners_reviews_never_appear(history) -> None:
    bob = list(review_log_revlog_rows(learner_id="bob"))
    assert [row[0] for row in bob[1:]] == [ReviewItem.objects.get(learner_id="bob").id]


def test_reading_the_revlog_costs_one_query_however_long_the_log(history, django_assert_num_queries) -> None:
    item = ReviewItem.objects.get(id=history["a3"])
    ReviewLog.objects.bulk_create(
        ReviewLog(
            learner_id="alice",
            review_item=item,
            reviewed_at=T0 + timedelta(days=10, minutes=i),
            rating=3,
            state=2,
            scheduler="buckets",
        )
        for i in range(3000)
    )
    with django_assert_num_queries(1):
        rows = sum(1 for _ in review_log_revlog_rows(learner_id="alice"))
    assert rows == 1 + 4 + 3000
