"""Reads of the learner model: a learner's mastery and review queue (their own only)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from personalization.models import Mastery, MasteryKeyType, ReviewItem


def mastery_list(*, learner_id: str, key_type: str | None = None) -> QuerySet[Mastery]:
    queryset = Mastery.objects.filter(learner_id=learner_id).order_by("key_type", "key_id")
    return queryset.filter(key_type=key_type) if key_type else queryset


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
