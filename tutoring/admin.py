"""Tutor turns are learners' records: staff can read them (to review hint quality), not edit them."""

from __future__ import annotations

from django.contrib import admin

from tutoring.models import TutorTurn


@admin.register(TutorTurn)
class TutorTurnAdmin(admin.ModelAdmin):
    list_display = ("id", "learner_id", "problem", "hint_level", "tutor", "outcome", "created_at", "finished_at")
    list_filter = ("outcome", "tutor", "hint_level")
    search_fields = ("learner_id", "id", "session__id")
    list_select_related = ("problem",)
    # The token digest is of no use to staff and stays out of the page.
    exclude = ("token_digest",)
    readonly_fields = [f.name for f in TutorTurn._meta.fields if f.name != "token_digest"]

    def has_add_permission(self, request) -> bool:
        return False
