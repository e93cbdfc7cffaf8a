"""Submissions are read-only in the admin: staff can inspect verdicts, not change them."""

from django.contrib import admin

from submissions.models import RubricScore, Submission


class RubricScoreInline(admin.TabularInline):
    model = RubricScore
    extra = 0
    can_delete = False
    readonly_fields = ("rubric", "scores", "feedback", "grader", "created_at")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "learner_id", "problem_ref", "subject", "kind", "language", "status", "attempts", "created_at")
    list_filter = ("status", "subject", "kind", "language", "isolation")
    search_fields = ("learner_id", "problem_ref", "id")
    inlines = (RubricScoreInline,)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
