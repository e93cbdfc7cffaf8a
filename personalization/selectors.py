"""Reads of the learner model: a learner's mastery and review queue (their own only)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from personalization.models import Mastery, MasteryKeyType, ReviewItem, ReviewLog
from personalization.recommendation import learner_snapshot


def mastery_list(*, learner_id: str, key_type: str | None = None) -> QuerySet[Mastery]:
    queryset = Mastery.objects.filter(learner_id=learner_id).order_by("key_type", "key_id")
    return queryset.filter(key_type=key_type) if key_type else queryset


def topic_mastery(*, learner_id: str, topics: Iterable[str]) -> dict[str, int]:
    """Today's score (0–100) of each of `topics` the learner has one for (one query)."""
    rows = Mastery.objects.filter(learner_id=learner_id, key_type="topic", key_id__in=sorted(set(topics)))
    return dict(rows.values_list("key_id", "score"))


def mastery_of_topics_and_outcomes(*, learner_id: str, topics: list[str], outcomes: list[str]) -> QuerySet[Mastery]:
    """The learner's mastery rows for these topics and module outcomes (one problem's)."""
    return mastery_list(learner_id=learner_id).filter(
        Q(key_type=MasteryKeyType.TOPIC, key_id__in=topics)
        | Q(key_type=MasteryKeyType.OUTCOME, key_id__in=[str(outcome)[:100] for outcome in outcomes])
    )


def review_queue(*, learner_id: str) -> QuerySet[ReviewItem]:
    """Active items, soonest due first (due items come before upcoming ones)."""
    return (
        ReviewItem.objects.filter(learner_id=learner_id, retired_at__isnull=True)
        .select_related("problem")
        .only(
            "id",
            "problem__id",
            "problem__slug",
            "problem__title",
            "problem__difficulty",
            "reason",
            "bucket",
            "next_due_at",
            "last_reviewed_at",
            "stability",
            "surfaced_at",
            "created_at",
        )
    )


@dataclass(frozen=True)
class DueReview:
    problem_id: str
    reason: str
    bucket: int
    due_at: datetime
    item_id: int | None = None  # the review item


@dataclass(frozen=True)
class LearnerProfile:
    """The learner model as a planner reads it: plain values, bounded by the catalogue."""

    level: int
    mastery: dict[str, int]  # topic slug → 0–100
    passed: frozenset[str]  # problem ids solved at least once
    attempted: frozenset[str]
    due_reviews: tuple[DueReview, ...]  # the most overdue first


def learner_profile(*, learner_id: str) -> LearnerProfile:
    """Level, topic mastery, progress and the due reviews (three queries)."""
    snapshot = learner_snapshot(learner_id=learner_id)
    return LearnerProfile(
        level=snapshot.level,
        mastery=dict(snapshot.mastery),
        passed=frozenset(str(pid) for pid, (_, passes) in snapshot.progress.items() if passes),
        attempted=frozenset(str(pid) for pid in snapshot.progress),
        due_reviews=tuple(
            DueReview(problem_id=str(pid), reason=reason, bucket=bucket, due_at=due_at, item_id=snapshot.review_item_ids.get(pid))
            for pid, (due_at, bucket, reason) in snapshot.reviews.items()
        ),
    )


DUE_REVIEWS_READ = 100


def reviews_due(*, learner_id: str, now: datetime | None = None) -> tuple[DueReview, ...]:
    """The learner's due review items, the most overdue first, at most DUE_REVIEWS_READ (one query)."""
    rows = (
        ReviewItem.objects.filter(learner_id=learner_id, retired_at__isnull=True, next_due_at__lte=now or timezone.now())
        .order_by("next_due_at", "problem_id")
        .values_list("problem_id", "reason", "bucket", "next_due_at", "id")[:DUE_REVIEWS_READ]
    )
    return tuple(
        DueReview(problem_id=str(pid), reason=reason, bucket=bucket, due_at=due_at, item_id=item_id)
        for pid, reason, bucket, due_at, item_id in rows
    )


def review_load_by_day(*, learner_id: str, start: datetime, days: int) -> list[tuple[date, int]]:
    """Active review items falling due on each of `days` UTC days from `start` (midnight UTC),
    overdue ones counted on the first day — the reviews waiting for the learner (one query,
    one row a day: bounded by the catalogue, not by the history)."""
    end = start + timedelta(days=days)
    rows = (
        ReviewItem.objects.filter(learner_id=learner_id, retired_at__isnull=True, next_due_at__lt=end)
        .annotate(day=TruncDate("next_due_at", tzinfo=UTC))
        .order_by()
        .values("day")
        .annotate(items=Count("id"))
        .values_list("day", "items")
    )
    load = {start.date() + timedelta(days=offset): 0 for offset in range(days)}
    for day, items in rows:
        key = max(day, start.date())
        load[key] += items
    return sorted(load.items())


def review_backlog_count(*, now: datetime) -> int:
    """Active review items already due, over all learners (the operators' backlog gauge; one
    range scan of the due-time index)."""
    return ReviewItem.objects.filter(retired_at__isnull=True, next_due_at__lte=now).count()


def learners_with_due_reviews(*, now: datetime | None = None, learner_id: str | None = None) -> list[str]:
    """Learners with at least one active review item due at `now` (one query, index
    review_learner_due / review_due), optionally just the one learner."""
    due = ReviewItem.objects.filter(retired_at__isnull=True, next_due_at__lte=now or timezone.now())
    if learner_id is not None:
        due = due.filter(learner_id=learner_id)
    return list(due.order_by("learner_id").values_list("learner_id", flat=True).distinct())


REVLOG_HEADER = ("card_id", "review_time", "review_rating", "review_state", "review_duration")
REVLOG_CHUNK = 2000


def review_log_revlog_rows(*, learner_id: str, since: datetime | None = None, until: datetime | None = None) -> Iterator[tuple]:
    """The learner's review log as the FSRS optimizer reads it (fsrs-optimizer's revlog schema):
    the header, then one row per review, oldest first — card_id (the review item), review_time
    (epoch milliseconds), review_rating (1 Again … 4 Easy), review_state (0 New, 2 Review) and
    review_duration (milliseconds, empty when unknown). `since` inclusive, `until` exclusive.
    Streams over a server-side cursor in chunks: memory does not grow with the log."""
    logs = ReviewLog.objects.filter(learner_id=learner_id)
    if since is not None:
        logs = logs.filter(reviewed_at__gte=since)
    if until is not None:
        logs = logs.filter(reviewed_at__lt=until)
    yield REVLOG_HEADER
    rows = logs.order_by("reviewed_at", "id").values_list("review_item_id", "reviewed_at", "rating", "state", "duration_ms")
    for card_id, reviewed_at, rating, state, duration_ms in rows.iterator(chunk_size=REVLOG_CHUNK):
        yield (card_id, int(reviewed_at.timestamp() * 1000), rating, state, "" if duration_ms is None else duration_ms)


def review_log_revlog_csv(*, learner_id: str, since: datetime | None = None, until: datetime | None = None) -> Iterator[str]:
    """`review_log_revlog_rows` as CSV text, one line per yield (for a streamed response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in review_log_revlog_rows(learner_id=learner_id, since=since, until=until):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
