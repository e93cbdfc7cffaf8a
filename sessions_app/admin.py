"""Sessions are learners' records: staff can read them, not edit them."""

from __future__ import annotations

from django.contrib import admin

from sessions_app.models import Session, SessionProblem


class SessionProblemInline(admin.TabularInline):
    model = SessionProblem
    extra = 0
    can_delete = False
    fields = ("position", "problem", "state", "is_review", "attempts", "runs", "hints_used", "max_hint_level", "opened_at")
    readonly_fields = fields


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("id", "learner_id", "mode", "subject", "status", "started_at", "ended_at")
    list_filter = ("mode", "subject", "status")
    search_fields = ("learner_id", "id")
    inlines = [SessionProblemInline]
    readonly_fields = [f.name for f in Session._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
