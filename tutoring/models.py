"""Tutor turns: one hint request on a session's problem, from the request to the end of its stream.

A turn is created by `POST /v1/tutor/messages` with a single-use stream token (only its SHA-256
digest is stored) and finished by the stream with what the learner was shown and how it ended.
The stored context is the allow-listed one the tutor saw (tutoring/context.py): no hidden test,
reference solution or generator can be in it.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class TurnOutcome(models.TextChoices):
    PENDING = "pending", "Pending (stream not finished)"
    OK = "ok", "Answered"
    FALLBACK = "fallback", "Answered by the built-in tutor after the LLM failed"
    ERROR = "error", "Failed"
    CANCELLED = "cancelled", "Cancelled (the client went away)"


class TutorKind(models.TextChoices):
    BUILTIN = "builtin", "Built-in hint ladder"
    LLM = "llm", "LLM (OpenAI-compatible)"


class TutorTurn(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    learner_id = models.CharField(max_length=255)
    session = models.ForeignKey(
        "sessions_app.Session", null=True, blank=True, on_delete=models.CASCADE, related_name="tutor_turns"
    )
    # Where the hint was asked (tutoring/origins.py): a session, or another front door's record.
    origin = models.CharField(max_length=32, default="session")
    origin_id = models.UUIDField(null=True, blank=True, help_text="The front door's record (not a session's).")
    problem = models.ForeignKey("tracks.Problem", on_delete=models.PROTECT, related_name="+")
    hint_level = models.PositiveSmallIntegerField()
    message = models.TextField(blank=True, default="", help_text="What the learner asked, if anything.")
    context = models.JSONField(default=dict, blank=True, help_text="The allow-listed context the tutor was given.")
    content = models.TextField(blank=True, default="", help_text="What the learner was shown.")
    outcome = models.CharField(max_length=16, choices=TurnOutcome.choices, default=TurnOutcome.PENDING)
    tutor = models.CharField(max_length=16, choices=TutorKind.choices, help_text="The tutor that answered.")
    error_reason = models.CharField(max_length=300, blank=True, default="")
    token_digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the single-use stream token.")
    token_expires_at = models.DateTimeField()
    stream_opened_at = models.DateTimeField(null=True, blank=True, help_text="Set once: the token was redeemed.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=("learner_id", "created_at"), name="tutor_turn_learner_created"),
            models.Index(fields=("session", "created_at"), name="tutor_turn_session_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(hint_level__gte=1, hint_level__lte=3), name="tutor_turn_hint_level_valid"),
            models.CheckConstraint(condition=Q(outcome__in=TurnOutcome.values), name="tutor_turn_outcome_valid"),
            models.CheckConstraint(
                condition=Q(origin="session", session__isnull=False, origin_id__isnull=True)
                | (~Q(origin="session") & Q(session__isnull=True, origin_id__isnull=False)),
                name="tutor_turn_origin_named",
            ),
            models.CheckConstraint(condition=Q(tutor__in=TutorKind.values), name="tutor_turn_tutor_valid"),
            models.CheckConstraint(
                condition=Q(outcome=TurnOutcome.PENDING) | Q(finished_at__isnull=False), name="tutor_turn_finished_has_time"
            ),
            models.CheckConstraint(
                condition=Q(outcome=TurnOutcome.PENDING) | Q(stream_opened_at__isnull=False),
                name="tutor_turn_finished_was_streamed",
            ),
        ]

    def __str__(self) -> str:
        return f"hint {self.hint_level} for {self.learner_id} ({self.outcome})"
