"""Submissions and their verdicts.

A submission is written once as `pending`, claimed by exactly one evaluation (`running`, with a
claim token; one graded by the process that creates it is inserted claimed), and finished once
with a final status by a conditional update that only the current claim can make — so a
redelivered or duplicated task can never grade it twice.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from tracks.choices import Language, Subject


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    TIMEOUT = "timeout", "Timed out"
    ERROR = "error", "Error"


FINAL_STATUSES = (SubmissionStatus.PASSED, SubmissionStatus.FAILED, SubmissionStatus.TIMEOUT, SubmissionStatus.ERROR)


class ProblemResultStatus(models.TextChoices):
    """A learner's standing on one problem, derived from their graded submits (never stored)."""

    SOLVED = "solved", "Solved (a graded submit passed)"
    ATTEMPTED = "attempted", "Attempted (graded submits, none passed yet)"
    NOT_STARTED = "not_started", "Not started (no graded submit)"


class SubmissionKind(models.TextChoices):
    RUN = "run", "Run (visible tests only, not graded)"
    SUBMIT = "submit", "Submit (graded)"


class Submission(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    learner_id = models.CharField(max_length=255)
    session = models.ForeignKey(
        "sessions_app.Session", null=True, blank=True, on_delete=models.CASCADE, related_name="submissions"
    )
    # The problem row when it came from the database bank (kept on retirement: PROTECT);
    # `problem_ref` is what the learner named (a remote bank id when there is no row).
    # Another front door's own record (submissions/origins.py), e.g. a study task; empty for sessions.
    origin = models.CharField(max_length=32, blank=True, default="")
    origin_id = models.UUIDField(null=True, blank=True)
    problem = models.ForeignKey("tracks.Problem", null=True, blank=True, on_delete=models.PROTECT, related_name="submissions")
    problem_ref = models.CharField(max_length=255)
    problem_content_hash = models.CharField(max_length=64, blank=True, default="")
    subject = models.CharField(max_length=16, choices=Subject.choices)
    kind = models.CharField(max_length=8, choices=SubmissionKind.choices, default=SubmissionKind.SUBMIT)
    language = models.CharField(max_length=16, choices=Language.choices, blank=True, default="")
    payload = models.JSONField(help_text="What the learner sent: code, steps and expression, or text.")
    payload_sha256 = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")

    status = models.CharField(max_length=16, choices=SubmissionStatus.choices, default=SubmissionStatus.PENDING)
    visible_passed = models.PositiveIntegerField(default=0)
    visible_total = models.PositiveIntegerField(default=0)
    visible_details = models.JSONField(default=list, blank=True)
    hidden_passed = models.PositiveIntegerField(default=0)
    hidden_total = models.PositiveIntegerField(default=0)
    failed_categories = models.JSONField(default=list, blank=True, help_text="Failed hidden-test categories only.")
    result = models.JSONField(default=dict, blank=True, help_text="The learner-facing result (no hidden data).")
    exec_ms = models.PositiveIntegerField(default=0)
    peak_memory_kb = models.PositiveIntegerField(default=0)
    isolation = models.CharField(max_length=16, blank=True, default="")
    error_reason = models.CharField(max_length=500, blank=True, default="")

    claim_token = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="How many evaluations claimed it.")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=("learner_id", "created_at"), name="submission_learner_created"),
            models.Index(fields=("status", "created_at"), name="submission_status_created"),
            models.Index(fields=("learner_id", "problem_ref"), name="submission_learner_problem"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=SubmissionStatus.values), name="submission_status_valid"),
            models.CheckConstraint(condition=Q(kind__in=SubmissionKind.values), name="submission_kind_valid"),
            models.CheckConstraint(condition=Q(subject__in=Subject.values), name="submission_subject_valid"),
            models.UniqueConstraint(
                fields=("learner_id", "idempotency_key"),
                condition=~Q(idempotency_key=""),
                name="submission_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(origin="", origin_id__isnull=True)
                | (~Q(origin="") & Q(origin_id__isnull=False, session__isnull=True)),
                name="submission_origin_named_with_id",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[SubmissionStatus.PENDING, SubmissionStatus.RUNNING]) | Q(finished_at__isnull=False),
                name="submission_final_has_finish_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.problem_ref} by {self.learner_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class RubricScore(models.Model):
    """Per-dimension scores of a rubric-graded (systems) submission."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="rubric_scores")
    rubric = models.ForeignKey("tracks.Rubric", on_delete=models.PROTECT, related_name="scores")
    scores = models.JSONField(help_text="{dimension id: score}")
    feedback = models.JSONField(help_text="{dimension id: feedback}")
    grader = models.CharField(max_length=16, default="builtin")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("submission", "rubric"), name="rubric_score_unique")]

    def __str__(self) -> str:
        return f"{self.rubric.slug} for {self.submission_id}"
