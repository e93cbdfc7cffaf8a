"""Request and response shapes of /v1/sessions (seeds/001 SessionCreate, Session)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from sessions_app.models import Session, SessionMode, SessionProblemState, SessionStatus
from tracks.choices import Subject


class SessionCreateSerializer(serializers.Serializer):
    subject = serializers.ChoiceField(choices=Subject.choices)
    mode = serializers.ChoiceField(choices=SessionMode.choices, default=SessionMode.PRACTICE)
    track_id = serializers.CharField(max_length=100, required=False, help_text="Track id or slug; required for `track`.")
    problem_id = serializers.CharField(max_length=255, required=False, help_text="Problem id or slug to start with.")
    duration_minutes = serializers.IntegerField(
        required=False,
        min_value=settings.CO_MOCK_MINUTES_RANGE[0],
        max_value=settings.CO_MOCK_MINUTES_RANGE[1],
        help_text=f"Mock only; default {settings.CO_MOCK_DEFAULT_MINUTES}.",
    )
    problem_count = serializers.IntegerField(
        required=False,
        min_value=settings.CO_MOCK_PROBLEMS_RANGE[0],
        max_value=settings.CO_MOCK_PROBLEMS_RANGE[1],
        help_text=f"Mock only; default {settings.CO_MOCK_DEFAULT_PROBLEMS}.",
    )


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
    opened_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    user_id = serializers.CharField()
    subject = serializers.ChoiceField(choices=Subject.choices)
    mode = serializers.ChoiceField(choices=SessionMode.choices)
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    track_id = serializers.UUIDField(allow_null=True)
    problem_id = serializers.UUIDField(allow_null=True, help_text="The current problem.")
    current_problem = SessionProblemBriefSerializer(allow_null=True)
    attempts = serializers.IntegerField(help_text="Graded submissions on the current problem.")
    total_attempts = serializers.IntegerField()
    last_hint_level = serializers.IntegerField()
    problems = SessionProblemSerializer(many=True)
    deadline_at = serializers.DateTimeField(allow_null=True, help_text="Mock only.")
    seconds_remaining = serializers.IntegerField(allow_null=True, help_text="Mock only.")
    duration_minutes = serializers.IntegerField(allow_null=True)
    problem_count = serializers.IntegerField(allow_null=True)
    report = serializers.DictField(allow_null=True, help_text="Mock report, once the mock has ended.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


def _brief(problem: Any) -> dict[str, Any]:
    return {"id": str(problem.id), "slug": problem.slug, "title": problem.title, "difficulty": problem.difficulty}


def session_representation(session: Session) -> dict[str, Any]:
    """The session as the API shows it (from a session loaded by `session_get_for_learner`)."""
    rows = list(session.problems.all())
    current = next((row for row in reversed(rows) if row.problem_id == session.current_problem_id), None)
    remaining = None
    if session.deadline_at is not None:
        remaining = (
            0 if session.status != SessionStatus.ACTIVE else max(0, int((session.deadline_at - timezone.now()).total_seconds()))
        )
    return {
        "id": str(session.id),
        "user_id": session.learner_id,
        "subject": session.subject,
        "mode": session.mode,
        "status": session.status,
        "track_id": str(session.track_id) if session.track_id else None,
        "problem_id": str(session.current_problem_id) if session.current_problem_id else None,
        "current_problem": _brief(current.problem) if current else None,
        "attempts": current.attempts if current else 0,
        "total_attempts": sum(row.attempts for row in rows),
        "last_hint_level": session.last_hint_level,
        "problems": [
            {
                "position": row.position,
                "problem": _brief(row.problem),
                "state": row.state,
                "is_review": row.is_review,
                "attempts": row.attempts,
                "runs": row.runs,
                "retries": row.retries,
                "hints_used": row.hints_used,
                "max_hint_level": row.max_hint_level,
                "last_status": row.last_status,
                "recommendation": row.recommendation,
                "opened_at": row.opened_at.isoformat(),
                "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            }
            for row in rows
        ],
        "deadline_at": session.deadline_at.isoformat() if session.deadline_at else None,
        "seconds_remaining": remaining,
        "duration_minutes": session.duration_minutes,
        "problem_count": session.problem_count,
        "report": session.report,
        "created_at": session.started_at.isoformat(),
        "started_at": session.started_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "ended_at": session.ended_at.isoformat() if session.ended_at else None,
    }
