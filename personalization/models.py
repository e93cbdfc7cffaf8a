"""The learner model: mastery per topic and outcome, the spaced-repetition review queue, and the
small per-learner state the recommender and its guardrails read (level, failure streak, progress
per problem). Everything here is bounded by the catalogue, not by the length of a learner's history,
so reading it costs the same after 10 attempts or 10,000.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class MasteryKeyType(models.TextChoices):
    TOPIC = "topic", "Topic"
    OUTCOME = "outcome", "Module outcome"


class Mastery(models.Model):
    learner_id = models.CharField(max_length=255)
    key_type = models.CharField(max_length=16, choices=MasteryKeyType.choices)
    key_id = models.CharField(max_length=100)
    score = models.PositiveSmallIntegerField(default=0, help_text="0–100: the EMA, rounded.")
    ema = models.FloatField(default=0.0, help_text="Exponential moving average of attempt performance (0–100).")
    attempts = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "mastery"
        ordering = ("learner_id", "key_type", "key_id")
        constraints = [
            models.UniqueConstraint(fields=("learner_id", "key_type", "key_id"), name="mastery_unique"),
            models.CheckConstraint(condition=Q(score__lte=100), name="mastery_score_range"),
            models.CheckConstraint(condition=Q(key_type__in=MasteryKeyType.values), name="mastery_key_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.learner_id} {self.key_type}:{self.key_id} = {self.score}"


class ReviewReason(models.TextChoices):
    FAIL = "fail", "Failed"
    SLOW = "slow", "Solved slowly"
    HEAVY_HINT = "heavy-hint", "Solved with heavy hints"
    MOCK_GAP = "mock-gap", "Gap found in a mock interview"


REVIEW_INTERVAL_DAYS = (1, 3, 7, 21)  # bucket 0..3


class ReviewSchedulerName(models.TextChoices):
    BUCKETS = "buckets", "Fixed buckets 1 / 3 / 7 / 21 days"
    FSRS = "fsrs", "FSRS-6"


class ReviewItem(models.Model):
    """One row per learner and problem (seeds/001 `review_queue`). Retired rows are kept, so a
    later failure puts the problem back at bucket 0 instead of creating a second row."""

    learner_id = models.CharField(max_length=255)
    problem = models.ForeignKey("tracks.Problem", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=ReviewReason.choices)
    bucket = models.PositiveSmallIntegerField(default=0, help_text="0–3 = due after 1 / 3 / 7 / 21 days.")
    next_due_at = models.DateTimeField()
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    surfaced_at = models.DateTimeField(null=True, blank=True, help_text="When the scheduler last surfaced it as due.")
    retired_at = models.DateTimeField(null=True, blank=True)
    # The FSRS memory state (CO_REVIEW_SCHEDULER=fsrs): null until FSRS first schedules the item.
    # With no (re)learning steps every reviewed FSRS card is in the Review state, so stability,
    # difficulty and `last_reviewed_at` are the whole card.
    stability = models.FloatField(null=True, blank=True, help_text="FSRS stability in days (recall 90% after this long).")
    difficulty = models.FloatField(null=True, blank=True, help_text="FSRS difficulty, 1–10.")
    scheduler = models.CharField(
        max_length=16, choices=ReviewSchedulerName.choices, default="buckets", help_text="The scheduler that set `next_due_at`."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("next_due_at",)
        indexes = [
            models.Index(fields=("learner_id", "retired_at", "next_due_at"), name="review_learner_due"),
            models.Index(fields=("next_due_at",), name="review_due"),
            # The review backlog (co_review_backlog): due items not retired, without reading the
            # retired ones, which pile up with the history.
            models.Index(fields=("next_due_at",), condition=Q(retired_at__isnull=True), name="review_active_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=("learner_id", "problem"), name="review_item_unique"),
            models.CheckConstraint(condition=Q(bucket__lte=3), name="review_bucket_range"),
            models.CheckConstraint(condition=Q(reason__in=ReviewReason.values), name="review_reason_valid"),
            models.CheckConstraint(condition=Q(scheduler__in=ReviewSchedulerName.values), name="review_scheduler_valid"),
            models.CheckConstraint(condition=Q(stability__isnull=True) | Q(stability__gt=0), name="review_stability_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.learner_id} review {self.problem_id} (bucket {self.bucket})"


class ReviewRating(models.IntegerChoices):
    """FSRS's four grades (the fsrs-optimizer's `review_rating`), derived from a verdict."""

    AGAIN = 1, "Again (failed)"
    HARD = 2, "Hard (passed with heavy hints or slowly)"
    GOOD = 3, "Good (passed)"
    EASY = 4, "Easy (passed fast without hints)"


class ReviewState(models.IntegerChoices):
    """The card's state before the review, numbered as the fsrs-optimizer's `review_state`."""

    NEW = 0, "New (the attempt that put the problem in the queue)"
    LEARNING = 1, "Learning"
    REVIEW = 2, "Review"
    RELEARNING = 3, "Relearning"


class ReviewLog(models.Model):
    """One review of one review item (a graded attempt on a problem in the queue, including the
    attempt that queued it): what the scheduler predicted and what happened. Append-only; the
    revlog export and bench/review_scheduling.py read it."""

    learner_id = models.CharField(max_length=255)
    review_item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="logs")
    reviewed_at = models.DateTimeField()
    rating = models.PositiveSmallIntegerField(choices=ReviewRating.choices)
    state = models.PositiveSmallIntegerField(choices=ReviewState.choices)
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time on the problem, when known.")
    predicted_recall = models.FloatField(
        null=True, blank=True, help_text="The scheduler's recall probability at review time (none for a new item)."
    )
    elapsed_days = models.FloatField(null=True, blank=True, help_text="Days since the item's previous review.")
    scheduler = models.CharField(max_length=16, choices=ReviewSchedulerName.choices)

    class Meta:
        ordering = ("reviewed_at", "id")
        indexes = [models.Index(fields=("learner_id", "reviewed_at", "id"), name="review_log_learner_time")]
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=4), name="review_log_rating_1_to_4"),
            models.CheckConstraint(condition=Q(state__lte=3), name="review_log_state_valid"),
            models.CheckConstraint(
                condition=Q(predicted_recall__isnull=True) | Q(predicted_recall__gte=0.0, predicted_recall__lte=1.0),
                name="review_log_recall_0_to_1",
            ),
            models.CheckConstraint(condition=Q(scheduler__in=ReviewSchedulerName.values), name="review_log_scheduler_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.learner_id} review of item {self.review_item_id}: {self.rating}"


class LearnerState(models.Model):
    """The learner's level and current failure streak, kept up to date with every attempt."""

    learner_id = models.CharField(max_length=255, primary_key=True)
    level = models.PositiveSmallIntegerField(default=1, help_text="Highest difficulty passed cleanly (≥ 1).")
    fail_streak = models.PositiveIntegerField(default=0, help_text="Consecutive misses since the last pass.")
    fail_streak_difficulty = models.PositiveSmallIntegerField(default=0, help_text="Difficulty of the latest miss.")
    attempts = models.PositiveIntegerField(default=0)
    # Per problem tried: [attempts, passes] by problem id — one row read gives the recommender its
    # novelty input, however long the history (bounded by the catalogue, not by attempts).
    progress = models.JSONField(default=dict, blank=True)
    recent = models.JSONField(default=list, blank=True, help_text="The last problems attempted, newest first.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.learner_id}: level {self.level}, streak {self.fail_streak}"
