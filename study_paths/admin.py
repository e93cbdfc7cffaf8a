"""Study paths in the admin: read-only. Paths and tasks change only through the services (which
keep the event log in step); events cannot change at all (the database refuses)."""

from __future__ import annotations

from django.contrib import admin

from study_paths.models import StudyPath, StudyTask, TaskEvaluation, TaskEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    fields = ("sequence", "event_type", "payload", "created_at")
    readonly_fields = fields
    ordering = ("sequence",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StudyPath)
class StudyPathAdmin(ReadOnlyAdmin):
    list_display = ("id", "learner_id", "track", "status", "algorithm_version", "created_at")
    list_filter = ("status", "algorithm_version")
    search_fields = ("learner_id",)
    list_select_related = ("track",)


@admin.register(StudyTask)
class StudyTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "learner_id", "path", "position", "problem_ref", "kind", "difficulty", "status", "due_at")
    list_filter = ("status", "kind", "difficulty")
    search_fields = ("learner_id", "problem_ref")
    inlines = (TaskEventInline,)


@admin.register(TaskEvent)
class TaskEventAdmin(ReadOnlyAdmin):
    list_display = ("task", "sequence", "event_type", "created_at")
    list_filter = ("event_type",)


@admin.register(TaskEvaluation)
class TaskEvaluationAdmin(ReadOnlyAdmin):
    list_display = ("task", "submission", "score", "runtime_ms", "partial", "created_at")
