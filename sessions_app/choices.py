"""A session's vocabulary: modes, statuses and the states of its problems. Other apps (the
tutor) name these through this module, which holds no model."""

from __future__ import annotations

from django.db import models


class SessionMode(models.TextChoices):
    PRACTICE = "practice", "Practice (one problem)"
    TRACK = "track", "Track (walks the modules in order)"
    MOCK = "mock", "Mock interview (time-boxed)"


class SessionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    ABANDONED = "abandoned", "Abandoned"


class SessionProblemState(models.TextChoices):
    OPEN = "open", "Open"
    PASSED = "passed", "Passed"
    GIVEN_UP = "given_up", "Given up"
    SKIPPED = "skipped", "Skipped (advanced without passing)"
