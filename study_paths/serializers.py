"""Request and response shapes of /v1/study-paths and /v1/study-tasks (seeds/004)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from co_project.serializer_fields import OffsetDateTimeField, QueryParamsSerializer, StrictCharField, StrictIntegerField
from study_paths.models import StudyPathStatus, TaskEventType, TaskKind, TaskStatus
from study_paths.services import STUDY_PATH_CONFIG_SCHEMA
from submissions.errors import CodeTooLarge
from submissions.serializers import AnswerTextField, SubmissionMathPayloadSerializer, SubmissionSystemsPayloadSerializer
from tracks.choices import Language, Subject
from tutoring.serializers import MAX_CODE_BYTES, MAX_MESSAGE_CHARS


@extend_schema_field({k: v for k, v in STUDY_PATH_CONFIG_SCHEMA.items() if k != "$schema"})
class StudyPathConfigField(serializers.JSONField):
    """Any JSON here; `study_path_config_validate` is the one place that judges it, and the schema
    documents exactly what it accepts."""


class StudyPathCreateSerializer(serializers.Serializer):
    track = StrictCharField(max_length=100, help_text="Track id or slug.")
    config = StudyPathConfigField(
        required=False,
        help_text=(
            "Optional; defaults: daily_task_target 3, difficulty_range {min 1, max 5}, modules all (in "
            "track order), weights as the recommender's, max_reviews_per_day 2 (formerly review_cap_per_day), "
            "batch_size 10, expire_after_days 7."
        ),
    )


class StudyTaskProblemSerializer(serializers.Serializer):
    """Slug and title are null for a problem of a remote bank (no row here)."""

    id = serializers.CharField(source="problem_ref", help_text="The problem's id in the problem bank.")
    slug = serializers.CharField(source="problem_slug", allow_null=True)
    title = serializers.CharField(source="problem_title", allow_null=True)


class StudyTaskSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    path_id = serializers.UUIDField()
    position = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    problem = StudyTaskProblemSerializer(source="*")
    module = serializers.CharField(source="module_slug")
    difficulty = serializers.IntegerField()
    topics = serializers.ListField(child=serializers.CharField())
    due_at = OffsetDateTimeField(allow_null=True)
    expires_at = OffsetDateTimeField(allow_null=True)
    attempt_count = serializers.IntegerField()
    hint_count = serializers.IntegerField()
    reasons = serializers.SerializerMethodField(help_text="Why the planner put it here.")
    review_source = serializers.SerializerMethodField(help_text="Review tasks: where the review came from.")
    created_at = OffsetDateTimeField()

    def get_reasons(self, task: Any) -> list[str]:
        return list(task.metadata.get("reasons", []))

    def get_review_source(self, task: Any) -> dict[str, Any] | None:
        return task.metadata.get("review_source")


class StudyPathTrackSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    title = serializers.CharField()


class StudyPathSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    track = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=StudyPathStatus.choices)
    config = serializers.DictField(help_text="The config with every default filled in.")
    algorithm_version = serializers.CharField()
    created_at = OffsetDateTimeField()
    updated_at = OffsetDateTimeField()
    completed_at = OffsetDateTimeField(allow_null=True)
    upcoming_tasks = StudyTaskSerializer(many=True, help_text="Tasks still to do, in order.")

    @extend_schema_field(StudyPathTrackSerializer)
    def get_track(self, path: Any) -> dict[str, Any]:
        """A path just created carries the track outline it was planned against (`track_outline`);
        a path read back carries its track row."""
        return dict(StudyPathTrackSerializer(getattr(path, "track_outline", None) or path.track).data)


class StudyTaskNextSerializer(serializers.Serializer):
    task = StudyTaskSerializer(allow_null=True)
    reason = serializers.CharField(help_text="Why this task, or why there is none.")


# --- paths and tasks: read, list, change


class StudyPathSummarySerializer(serializers.Serializer):
    """A path in the list: everything but its tasks."""

    id = serializers.UUIDField()
    track = StudyPathTrackSerializer()
    status = serializers.ChoiceField(choices=StudyPathStatus.choices)
    config = serializers.DictField(help_text="The config with every default filled in.")
    algorithm_version = serializers.CharField()
    created_at = OffsetDateTimeField()
    updated_at = OffsetDateTimeField()
    completed_at = OffsetDateTimeField(allow_null=True)


class StudyPathTaskCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    submitted = serializers.IntegerField()
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    expired = serializers.IntegerField()


class StudyPathDetailSerializer(StudyPathSerializer):
    task_counts = StudyPathTaskCountsSerializer(help_text="The path's tasks per status (replanned ones count as skipped).")


class StudyPathActiveSerializer(serializers.Serializer):
    path = StudyPathSerializer(allow_null=True, help_text="Your active path with its upcoming tasks, or null.")
    reason = serializers.CharField(help_text="Why there is no active path (empty when there is one).")


class StudyPathActiveQuerySerializer(QueryParamsSerializer):
    track = StrictCharField(max_length=100, required=False, help_text="Only the active path on this track (slug or id).")


CHANGEABLE_PATH_STATUSES = (StudyPathStatus.ACTIVE, StudyPathStatus.PAUSED, StudyPathStatus.ARCHIVED)


class StudyPathChangeSerializer(serializers.Serializer):
    """Either, both or neither (a PATCH that changes nothing answers the path as it is)."""

    config = StudyPathConfigField(
        required=False, help_text="Keys to change (the others stay); regenerates only the pending tasks."
    )
    status = serializers.ChoiceField(
        choices=[(s.value, s.label) for s in CHANGEABLE_PATH_STATUSES],
        required=False,
        help_text="`paused` (pause), `active` (resume), `archived` (final).",
    )


class StudyTaskQuerySerializer(QueryParamsSerializer):
    path = serializers.UUIDField(required=False, help_text="Only this path's tasks.")
    status = serializers.ChoiceField(choices=TaskStatus.choices, required=False)
    kind = serializers.ChoiceField(choices=TaskKind.choices, required=False)
    module = StrictCharField(max_length=100, required=False, help_text="Module slug.")
    due_before = serializers.DateTimeField(required=False, help_text="Due strictly before this time (ISO 8601).")
    due_after = serializers.DateTimeField(required=False, help_text="Due at or after this time (ISO 8601).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        before, after = attrs.get("due_before"), attrs.get("due_after")
        if before is not None and after is not None and after > before:
            raise serializers.ValidationError({"due_after": ["Must not be after due_before."]})
        return attrs


class TaskEventSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    event_type = serializers.ChoiceField(choices=TaskEventType.choices)
    payload = serializers.DictField()
    created_at = OffsetDateTimeField()


class TaskEvaluationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    submission_id = serializers.UUIDField()
    score = serializers.FloatField()
    runtime_ms = serializers.IntegerField(allow_null=True)
    peak_memory_kb = serializers.IntegerField(allow_null=True)
    visible_passed = serializers.IntegerField()
    visible_total = serializers.IntegerField()
    hidden_passed = serializers.IntegerField()
    hidden_total = serializers.IntegerField()
    failed_categories = serializers.ListField(child=serializers.CharField())
    visible_details = serializers.ListField(child=serializers.DictField())
    partial = serializers.BooleanField()
    created_at = OffsetDateTimeField()


class StudyTaskDetailSerializer(StudyTaskSerializer):
    started_at = OffsetDateTimeField(allow_null=True)
    finished_at = OffsetDateTimeField(allow_null=True)
    events = TaskEventSerializer(many=True, source="event_log", help_text="What happened to the task, in order.")
    evaluations = TaskEvaluationSerializer(many=True, source="evaluation_list", help_text="One per graded submission.")


class StudyTaskActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[("start", "Start"), ("skip", "Skip")])


# --- task attempts: submit and hint


class StudyTaskSubmitCodingSerializer(serializers.Serializer):
    """A coding task's answer (the subject is the task's problem's; a math task takes
    `{steps, expression}`, a design task `{text}` — the payloads of /v1/submissions)."""

    language = serializers.ChoiceField(choices=Language.choices)
    code = AnswerTextField(allow_blank=False)


class StudyTaskSubmitMathSerializer(SubmissionMathPayloadSerializer):
    pass


class StudyTaskSubmitSystemsSerializer(SubmissionSystemsPayloadSerializer):
    pass


STUDY_TASK_PAYLOADS: dict[str, type[serializers.Serializer]] = {
    Subject.CODING: StudyTaskSubmitCodingSerializer,
    Subject.MATH: StudyTaskSubmitMathSerializer,
    Subject.SYSTEMS: StudyTaskSubmitSystemsSerializer,
}

# The request as the schema documents it: one of the three, chosen by the task's subject.
StudyTaskSubmitRequest = PolymorphicProxySerializer(
    component_name="StudyTaskSubmit",
    serializers=[StudyTaskSubmitCodingSerializer, StudyTaskSubmitMathSerializer, StudyTaskSubmitSystemsSerializer],
    resource_type_field_name=None,
)


class StudyTaskHintSerializer(serializers.Serializer):
    level = StrictIntegerField(min_value=1, max_value=3, help_text="1 a nudge, 2 an approach, 3 a near-solution.")
    message = StrictCharField(max_length=MAX_MESSAGE_CHARS, required=False, allow_blank=True, default="")
    code = StrictCharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    language = serializers.ChoiceField(choices=Language.choices, required=False, allow_blank=True, default="")

    def validate_code(self, value: str) -> str:
        size = len(value.encode())
        if size > MAX_CODE_BYTES:
            raise CodeTooLarge(f"Code is {size} bytes; the limit is {MAX_CODE_BYTES} bytes (64 KiB).")
        return value
