"""The learner model in the admin: read-only, for support and curriculum analysis."""

from __future__ import annotations

from django.contrib import admin

from personalization.models import LearnerState, Mastery, ReviewItem, ReviewLog


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Mastery)
class MasteryAdmin(ReadOnlyAdmin):
    list_display = ("learner_id", "key_type", "key_id", "score", "ema", "attempts", "updated_at")
    list_filter = ("key_type",)
    search_fields = ("learner_id", "key_id")


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ("learner_id", "problem", "reason", "bucket", "scheduler", "stability", "next_due_at", "retired_at")
    list_filter = ("reason", "bucket", "scheduler")
    search_fields = ("learner_id", "problem__slug")


@admin.register(LearnerState)
class LearnerStateAdmin(ReadOnlyAdmin):
    list_display = ("learner_id", "level", "fail_streak", "fail_streak_difficulty", "attempts", "updated_at")
    search_fields = ("learner_id",)


@admin.register(ReviewLog)
class ReviewLogAdmin(ReadOnlyAdmin):
    list_display = ("learner_id", "review_item", "reviewed_at", "rating", "state", "predicted_recall", "scheduler")
    list_filter = ("scheduler", "rating")
    search_fields = ("learner_id",)
