"""Reads of the learner model: a learner's mastery and review queue (their own only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from personalization.models import Mastery, MasteryKeyType, ReviewItem
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
            DueReview(problem_id=str(pid), reason=reason, bucket=bucket, due_at=due_at)
            for pid, (due_at, bucket, reason) in snapshot.reviews.items()
        ),
    )


DUE_REVIEWS_READ = 100


def reviews_due(*, learner_id: str, now: datetime | None = None) -> tuple[DueReview, ...]:
    """The learner's due review items, the most overdue first, at most DUE_REVIEWS_READ (one query)."""
    rows = (
        ReviewItem.objects.filter(learner_id=learner_id, retired_at__isnull=True, next_due_at__lte=now or timezone.now())
        .order_by("next_due_at", "problem_id")
        .values_list("problem_id", "reason", "bucket", "next_due_at")[:DUE_REVIEWS_READ]
    )
    return tuple(
        DueReview(problem_id=str(pid), reason=reason, bucket=bucket, due_at=due_at) for pid, reason, bucket, due_at in rows
    )
