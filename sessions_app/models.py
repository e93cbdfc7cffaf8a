"""Sessions: a learner working through problems in practice, track or mock (interview) mode.

A Session holds the state of the walk (status, current problem, mock deadline and report); each
problem it presented is a SessionProblem row with its own attempts, hints and outcome, which is
what the mock report and the learner model read.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from sessions_app.choices import SessionMode, SessionProblemState, SessionStatus
from tracks.choices import Subject


class Session(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    learner_id = models.CharField(max_length=255)
    subject = models.CharField(max_length=16, choices=Subject.choices)
    mode = models.CharField(max_length=16, choices=SessionMode.choices)
    track = models.ForeignKey("tracks.Track", null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    current_problem = models.ForeignKey(
        "tracks.Problem", null=True, blank=True, on_delete=models.PROTECT, related_name="current_in_sessions"
    )
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.ACTIVE)
    last_hint_level = models.PositiveSmallIntegerField(default=0)
    # Mock interviews only: the time box and the report written when it ends.
    duration_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    problem_count = models.PositiveSmallIntegerField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-started_at",)
        indexes = [
            models.Index(fields=("learner_id", "started_at"), name="session_learner_started"),
            models.Index(fields=("mode", "status", "deadline_at"), name="session_mock_deadline"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=SessionMode.values), name="session_mode_valid"),
            models.CheckConstraint(condition=Q(status__in=SessionStatus.values), name="session_status_valid"),
            models.CheckConstraint(condition=Q(subject__in=Subject.values), name="session_subject_valid"),
            models.CheckConstraint(condition=Q(last_hint_level__lte=3), name="session_hint_level_valid"),
            models.CheckConstraint(condition=~Q(mode="track") | Q(track__isnull=False), name="session_track_mode_has_track"),
            models.CheckConstraint(condition=~Q(mode="mock") | Q(deadline_at__isnull=False), name="session_mock_has_deadline"),
            models.CheckConstraint(condition=Q(status="active") | Q(ended_at__isnull=False), name="session_ended_has_end_time"),
        ]

    def __str__(self) -> str:
        return f"{self.mode} session of {self.learner_id} ({self.status})"


class SessionProblem(models.Model):
    """A problem a session presented, in order, with what the learner did on it. A track session
    may present a solved problem again (a step-down after misses); the latest row is the live one."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="problems")
    problem = models.ForeignKey("tracks.Problem", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=SessionProblemState.choices, default=SessionProblemState.OPEN)
    is_review = models.BooleanField(default=False, help_text="Served from the learner's review queue.")
    attempts = models.PositiveIntegerField(default=0, help_text="Graded submissions.")
    runs = models.PositiveIntegerField(default=0, help_text="Runs against the visible tests.")
    retries = models.PositiveSmallIntegerField(default=0)
    hints_used = models.PositiveSmallIntegerField(default=0)
    max_hint_level = models.PositiveSmallIntegerField(default=0)
    last_status = models.CharField(max_length=16, blank=True, default="")
    last_categories = models.JSONField(default=list, blank=True, help_text="Failed categories of the last graded attempt.")
    recommendation = models.JSONField(default=dict, blank=True, help_text="Why the recommender chose it.")
    opened_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("session", "position")
        constraints = [
            models.UniqueConstraint(fields=("session", "position"), name="session_problem_position_unique"),
            models.CheckConstraint(condition=Q(state__in=SessionProblemState.values), name="session_problem_state_valid"),
            models.CheckConstraint(condition=Q(max_hint_level__lte=3), name="session_problem_hint_level_valid"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} of {self.session_id} ({self.state})"
