"""Request and response shapes of /v1/sessions (seeds/001 SessionCreate, Session)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from co_project.serializer_fields import OffsetDateTimeField, StrictCharField, StrictIntegerField
from sessions_app.models import Session, SessionMode, SessionProblem, SessionProblemState, SessionStatus
from tracks.choices import Subject


class _SessionCreateFields(serializers.Serializer):
    subject = serializers.ChoiceField(choices=Subject.choices)
    track_id = StrictCharField(max_length=100, required=False, help_text="Track id or slug.")
    problem_id = StrictCharField(max_length=255, required=False, help_text="Problem id or slug to start with.")


class _MockFields(serializers.Serializer):
    duration_minutes = StrictIntegerField(
        required=False,
        min_value=settings.CO_MOCK_MINUTES_RANGE[0],
        max_value=settings.CO_MOCK_MINUTES_RANGE[1],
        help_text=f"Mock only; default {settings.CO_MOCK_DEFAULT_MINUTES}.",
    )
    problem_count = StrictIntegerField(
        required=False,
        min_value=settings.CO_MOCK_PROBLEMS_RANGE[0],
        max_value=settings.CO_MOCK_PROBLEMS_RANGE[1],
        help_text=f"Mock only; default {settings.CO_MOCK_DEFAULT_PROBLEMS}.",
    )


class SessionPracticeCreateSerializer(_SessionCreateFields):
    """One problem: the one named, else the recommender's pick for the subject (or the track)."""

    mode = serializers.ChoiceField(choices=[SessionMode.PRACTICE.value], default=SessionMode.PRACTICE.value)


class SessionTrackCreateSerializer(_SessionCreateFields):
    """The track's modules in order, each next problem chosen by the recommender."""

    mode = serializers.ChoiceField(choices=[SessionMode.TRACK.value])
    track_id = StrictCharField(max_length=100, help_text="Track id or slug.")


class SessionMockCreateSerializer(_SessionCreateFields, _MockFields):
    """A time-boxed interview; only a mock takes `duration_minutes` and `problem_count`."""

    mode = serializers.ChoiceField(choices=[SessionMode.MOCK.value])


# The request as the schema documents it: one shape per mode (a body without `mode` is practice).
SessionCreateRequest = PolymorphicProxySerializer(
    component_name="SessionCreate",
    serializers=[SessionPracticeCreateSerializer, SessionTrackCreateSerializer, SessionMockCreateSerializer],
    resource_type_field_name=None,
)


class SessionCreateSerializer(_SessionCreateFields, _MockFields):
    """Validates the fields of every mode; `session_create` enforces which mode takes which."""

    mode = serializers.ChoiceField(choices=SessionMode.choices, default=SessionMode.PRACTICE)


class SessionActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["advance", "retry", "giveup"])


class SessionProblemBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    title = serializers.CharField()
    difficulty = serializers.IntegerField()


class SessionProblemSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    problem = SessionProblemBriefSerializer()
    state = serializers.ChoiceField(choices=SessionProblemState.choices)
    is_review = serializers.BooleanField()
    attempts = serializers.IntegerField(help_text="Graded submissions.")
    runs = serializers.IntegerField()
    retries = serializers.IntegerField()
    hints_used = serializers.IntegerField()
    max_hint_level = serializers.IntegerField()
    last_status = serializers.CharField(allow_blank=True)
    recommendation = serializers.DictField(help_text="Why the recommender chose it: score, terms, reasons.")
    opened_at = OffsetDateTimeField()
    finished_at = OffsetDateTimeField(allow_null=True)


class SessionSerializer(serializers.Serializer):
    """A session loaded by `session_get_for_learner` (its problems prefetched: no query here)."""

    id = serializers.UUIDField()
    user_id = serializers.CharField(source="learner_id")
    subject = serializers.ChoiceField(choices=Subject.choices)
    mode = serializers.ChoiceField(choices=SessionMode.choices)
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    track_id = serializers.UUIDField(allow_null=True)
    problem_id = serializers.UUIDField(source="current_problem_id", allow_null=True, help_text="The current problem.")
    current_problem = serializers.SerializerMethodField()
    attempts = serializers.SerializerMethodField(help_text="Graded submissions on the current problem.")
    total_attempts = serializers.SerializerMethodField()
    last_hint_level = serializers.IntegerField()
    problems = SessionProblemSerializer(source="problems.all", many=True)
    deadline_at = OffsetDateTimeField(allow_null=True, help_text="Mock only.")
    seconds_remaining = serializers.SerializerMethodField(help_text="Mock only.")
    duration_minutes = serializers.IntegerField(allow_null=True)
    problem_count = serializers.IntegerField(allow_null=True)
    report = serializers.DictField(
        allow_null=True,
        help_text=(
            "Mock report, once the mock has ended; a track session that ended because every topic "
            "of the track is mastered: `{finished_at, ended_by: track_mastered, message}`."
        ),
    )
    created_at = OffsetDateTimeField(source="started_at")
    started_at = OffsetDateTimeField()
    updated_at = OffsetDateTimeField()
    ended_at = OffsetDateTimeField(allow_null=True)

    @staticmethod
    def _current(session: Session) -> SessionProblem | None:
        """The live row of the current problem (a problem presented again has a later row)."""
        rows = list(session.problems.all())
        return next((row for row in reversed(rows) if row.problem_id == session.current_problem_id), None)

    @extend_schema_field(SessionProblemBriefSerializer(allow_null=True))
    def get_current_problem(self, session: Session) -> dict[str, Any] | None:
        current = self._current(session)
        return SessionProblemBriefSerializer(current.problem).data if current else None

    def get_attempts(self, session: Session) -> int:
        current = self._current(session)
        return current.attempts if current else 0

    def get_total_attempts(self, session: Session) -> int:
        return sum(row.attempts for row in session.problems.all())

    def get_seconds_remaining(self, session: Session) -> int | None:
        if session.deadline_at is None:
            return None
        if session.status != SessionStatus.ACTIVE:
            return 0
        return max(0, int((session.deadline_at - timezone.now()).total_seconds()))
