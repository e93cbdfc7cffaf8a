"""Telemetry events: append-only, one row per learner-facing event (seeds/000 §11)."""

from __future__ import annotations

from django.db import models


class TelemetryEvent(models.Model):
    class Name(models.TextChoices):
        PROBLEM_OPEN = "problem_open"
        ATTEMPT_RUN = "attempt_run"
        ATTEMPT_SUBMIT = "attempt_submit"
        HINT_REQUEST = "hint_request"
        MOCK_FINISH = "mock_finish"
        RECOMMENDATION_SERVED = "recommendation_served"

    event = models.CharField(max_length=40, choices=Name.choices)
    user_id = models.CharField(max_length=255)
    session_id = models.UUIDField(null=True, blank=True)
    problem_id = models.CharField(max_length=255, blank=True, default="")
    ts = models.DateTimeField()
    attrs = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("ts", "id")
        indexes = [
            models.Index(fields=("user_id", "ts"), name="telemetry_user_ts"),
            models.Index(fields=("event", "ts"), name="telemetry_event_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.user_id} {self.ts:%Y-%m-%d %H:%M:%S}"
