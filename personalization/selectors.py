"""Reads of the learner model: a learner's mastery and review queue (their own only)."""

from __future__ import annotations

from django.db.models import QuerySet

from personalization.models import Mastery, ReviewItem


def mastery_list(*, learner_id: str, key_type: str | None = None) -> QuerySet[Mastery]:
    queryset = Mastery.objects.filter(learner_id=learner_id).order_by("key_type", "key_id")
    return queryset.filter(key_type=key_type) if key_type else queryset


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
