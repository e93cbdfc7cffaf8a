"""Study paths (seeds/004): a stored plan of study tasks for one learner on one track, its
append-only event log and one evaluation per graded attempt.

Written only through `study_paths.services`. Rules that must always hold are constraints in the
database: one active path per learner and track, difficulties 1–5, scores 0–1, counts ≥ 0. Task
events are immutable in the database itself (triggers in migration 0002), not only here.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

DIFFICULTY_MIN, DIFFICULTY_MAX = 1, 5


class StudyPathStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    ARCHIVED = "archived", "Archived"


class TaskKind(models.TextChoices):
    PRACTICE = "practice", "Practice"
    REVIEW = "review", "Review (from the review queue or after misses)"
    CHALLENGE = "challenge", "Challenge (a step above the learner's level)"


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted (waiting for its verdict)"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


# Statuses after which a task never changes again.
FINISHED_TASK_STATUSES = (TaskStatus.PASSED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.EXPIRED)


class TaskEventType(models.TextChoices):
    CREATED = "created", "Created"
    STARTED = "started", "Started"
    SUBMITTED = "submitted", "Submitted"
    EVALUATED = "evaluated", "Evaluated"
    HINT_REQUESTED = "hint_requested", "Hint requested"
    STATUS_CHANGED = "status_changed", "Status changed"
    EXPIRED = "expired", "Expired"


class SessionMigrationBatch(models.Model):
    """One run of `manage.py migrate_sessions_to_study_tasks` that wrote rows: every path, task,
    event and evaluation it created carries its id, so `--rollback` removes exactly those."""

    id = models.BigAutoField(primary_key=True)
    learner_id = models.CharField(max_length=255, blank=True, default="", help_text="`--learner`, when given.")
    since = models.DateTimeField(null=True, blank=True, help_text="`--since`, when given.")
    created = models.JSONField(default=dict, blank=True, help_text="Rows created: {paths, tasks, evaluations, events}.")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"session migration batch {self.id}"


class StudyPath(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    learner_id = models.CharField(max_length=255, help_text="The JWT `sub` of the learner.")
    track = models.ForeignKey("tracks.Track", on_delete=models.PROTECT, related_name="study_paths")
    status = models.CharField(max_length=16, choices=StudyPathStatus.choices, default=StudyPathStatus.ACTIVE)
    config = models.JSONField(default=dict, blank=True, help_text="Validated by study_paths.services.STUDY_PATH_CONFIG_SCHEMA.")
    # The planner that built the path keeps extending it, whatever CO_STUDY_PATH_ALGORITHM says later.
    algorithm_version = models.CharField(max_length=16)
    seed = models.BigIntegerField(help_text="Tie-breaking seed of the planner; with the catalogue and history it fixes the plan.")
    # The learner model when the path was created: the planner's fixed starting point, so the plan
    # depends only on it, the seed, the catalogue and the path's own history.
    learner_start = models.JSONField(
        default=dict, blank=True, help_text="{level, mastery: {topic: 0–100}, passed: [...], attempted: [...]}"
    )
    catalogue_digest = models.CharField(
        max_length=64, help_text="sha256 of the candidates the plan was generated from (the catalogue version it saw)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Set only on rows `migrate_sessions_to_study_tasks` created (study_paths/migration_from_sessions.py).
    migration_batch = models.ForeignKey(SessionMigrationBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("-created_at", "id")
        indexes = [
            # The learner's paths, newest first, optionally by status (list, active path).
            models.Index(fields=("learner_id", "status", "-created_at"), name="study_path_learner_status"),
            models.Index(fields=("learner_id", "-created_at", "id"), name="study_path_learner_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=("learner_id", "track"),
                condition=Q(status="active"),
                name="study_path_one_active_per_track",
            ),
            models.CheckConstraint(condition=Q(status__in=StudyPathStatus.values), name="study_path_status_valid"),
            models.CheckConstraint(condition=~Q(learner_id=""), name="study_path_learner_present"),
            models.CheckConstraint(condition=Q(seed__gte=0), name="study_path_seed_non_negative"),
            models.CheckConstraint(
                condition=~Q(status="completed") | Q(completed_at__isnull=False), name="study_path_completed_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"study path of {self.learner_id} on {self.track_id} ({self.status})"


class StudyTask(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    path = models.ForeignKey(StudyPath, on_delete=models.CASCADE, related_name="tasks")
    # The path's learner, repeated so ownership checks and the learner's task list read one table.
    learner_id = models.CharField(max_length=255)
    module = models.ForeignKey("tracks.Module", on_delete=models.PROTECT, related_name="+")
    # The problem row when the database bank has it; `problem_ref` is the bank's id either way.
    problem = models.ForeignKey("tracks.Problem", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    problem_ref = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=TaskKind.choices, default=TaskKind.PRACTICE)
    difficulty = models.PositiveSmallIntegerField()
    topics = models.JSONField(default=list, blank=True, help_text="The problem's topics when the task was planned.")
    position = models.PositiveIntegerField(help_text="Order in the path, from 1; reshaping renumbers only the pending tail.")
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    due_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.IntegerField(default=0)
    hint_count = models.IntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True, help_text="Why it was planned; `review_source` for reviews.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set only on rows `migrate_sessions_to_study_tasks` created (study_paths/migration_from_sessions.py).
    migration_batch = models.ForeignKey(SessionMigrationBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("path", "position")
        indexes = [
            # The next task: a path's open tasks by status, due reviews first, then by position.
            models.Index(fields=("path", "status", "due_at", "position"), name="study_task_next"),
            # The learner's task list and its filters (status, kind, module, due window), cursor on (created_at, id).
            models.Index(fields=("learner_id", "status", "due_at"), name="study_task_learner_status_due"),
            models.Index(fields=("learner_id", "-created_at", "id"), name="study_task_learner_created"),
            # The task list's pages in plan order (StudyTaskPagination: created_at, position, id): a
            # page reads its rows in order instead of sorting all of the learner's tasks.
            models.Index(fields=("learner_id", "created_at", "position", "id"), name="study_task_learner_plan_order"),
            models.Index(fields=("learner_id", "kind"), name="study_task_learner_kind"),
            models.Index(fields=("learner_id", "module"), name="study_task_learner_module"),
            # The expiry sweep.
            models.Index(fields=("status", "expires_at"), name="study_task_status_expires"),
        ]
        constraints = [
            models.UniqueConstraint(fields=("path", "position"), name="study_task_position_unique"),
            models.CheckConstraint(condition=Q(status__in=TaskStatus.values), name="study_task_status_valid"),
            models.CheckConstraint(condition=Q(kind__in=TaskKind.values), name="study_task_kind_valid"),
            models.CheckConstraint(
                condition=Q(difficulty__gte=DIFFICULTY_MIN, difficulty__lte=DIFFICULTY_MAX), name="study_task_difficulty_1_to_5"
            ),
            models.CheckConstraint(condition=Q(position__gte=1), name="study_task_position_from_1"),
            models.CheckConstraint(condition=Q(attempt_count__gte=0), name="study_task_attempts_non_negative"),
            models.CheckConstraint(condition=Q(hint_count__gte=0), name="study_task_hints_non_negative"),
            models.CheckConstraint(condition=~Q(problem_ref=""), name="study_task_problem_ref_present"),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(due_at__isnull=True) | Q(expires_at__gte=F("due_at")),
                name="study_task_expires_after_due",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.problem_ref} ({self.kind}, {self.status})"


class TaskEvent(models.Model):
    """One thing that happened to a task. Append-only: the database rejects UPDATE, and DELETE
    except of a row a session migration batch created (its rollback; migration 0003)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # PROTECT: an event outlives nothing it describes being deleted (the trigger would refuse anyway).
    task = models.ForeignKey(StudyTask, on_delete=models.PROTECT, related_name="events")
    path = models.ForeignKey(StudyPath, on_delete=models.PROTECT, related_name="events")
    sequence = models.PositiveIntegerField(help_text="1, 2, … per task: the order events happened in.")
    event_type = models.CharField(max_length=16, choices=TaskEventType.choices)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set only on rows `migrate_sessions_to_study_tasks` created (study_paths/migration_from_sessions.py).
    migration_batch = models.ForeignKey(SessionMigrationBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("task", "sequence")
        indexes = [
            models.Index(fields=("task", "created_at"), name="task_event_task_time"),
            models.Index(fields=("path", "created_at"), name="task_event_path_time"),
        ]
        constraints = [
            models.UniqueConstraint(fields=("task", "sequence"), name="task_event_sequence_unique"),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="task_event_sequence_from_1"),
            models.CheckConstraint(condition=Q(event_type__in=TaskEventType.values), name="task_event_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} #{self.sequence} {self.event_type}"


class TaskEvaluation(models.Model):
    """The outcome of one graded submission of a task: counts and categories, never hidden data."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(StudyTask, on_delete=models.PROTECT, related_name="evaluations")
    submission = models.OneToOneField("submissions.Submission", on_delete=models.PROTECT, related_name="+")
    score = models.FloatField(help_text="0.0–1.0: the share of tests passed (1.0 only for a pass).")
    runtime_ms = models.IntegerField(null=True, blank=True)
    peak_memory_kb = models.IntegerField(null=True, blank=True)
    visible_passed = models.IntegerField(default=0)
    visible_total = models.IntegerField(default=0)
    hidden_passed = models.IntegerField(default=0)
    hidden_total = models.IntegerField(default=0)
    failed_categories = models.JSONField(default=list, blank=True, help_text="Failed hidden-test categories only.")
    visible_details = models.JSONField(default=list, blank=True, help_text="Per visible test: pass/fail (visible tests only).")
    partial = models.BooleanField(default=False, help_text="Some tests did not run (a timeout or a crash cut the run short).")
    created_at = models.DateTimeField(default=timezone.now)
    # Set only on rows `migrate_sessions_to_study_tasks` created (study_paths/migration_from_sessions.py).
    migration_batch = models.ForeignKey(SessionMigrationBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("task", "created_at")
        indexes = [models.Index(fields=("task", "created_at"), name="task_evaluation_task_time")]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0.0, score__lte=1.0), name="task_evaluation_score_0_to_1"),
            models.CheckConstraint(
                condition=Q(runtime_ms__isnull=True) | Q(runtime_ms__gte=0), name="task_evaluation_runtime_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(peak_memory_kb__isnull=True) | Q(peak_memory_kb__gte=0), name="task_evaluation_memory_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(visible_passed__gte=0, visible_passed__lte=F("visible_total")),
                name="task_evaluation_visible_counts",
            ),
            models.CheckConstraint(
                condition=Q(hidden_passed__gte=0, hidden_passed__lte=F("hidden_total")),
                name="task_evaluation_hidden_counts",
            ),
        ]

    def __str__(self) -> str:
        return f"evaluation of {self.task_id}: {self.score:.2f}"


class PeerModuleDistribution(models.Model):
    """How the learners of a track did in one of its modules, as anonymous value counts (seeds/004
    CO-003-025): `[[value, learners], …]` ascending, never who. Rewritten by the periodic job
    `study_paths.peer_distributions_refresh`; read to place one learner among their peers."""

    track = models.ForeignKey("tracks.Track", on_delete=models.CASCADE, related_name="+")
    module = models.ForeignKey("tracks.Module", on_delete=models.CASCADE, related_name="+")
    contributors = models.PositiveIntegerField(help_text="Learners with at least one graded attempt in the module.")
    accuracy_counts = models.JSONField(default=list, help_text="[[accuracy 0–1, learners], …] ascending.")
    completed_counts = models.JSONField(default=list, help_text="[[completed tasks, learners], …] ascending.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ("track", "module")
        constraints = [models.UniqueConstraint(fields=("track", "module"), name="peer_distribution_unique")]

    def __str__(self) -> str:
        return f"peers of {self.module_id}: {self.contributors} learners"
