"""The shapes of `GET /v1/study-paths/{id}/progress` and `GET /v1/study-paths/dashboard` (for the
OpenAPI schema; the answers are built by `study_paths.progress` and `study_paths.peers`)."""

from __future__ import annotations

from rest_framework import serializers

from co_project.serializer_fields import QueryParamsSerializer


class ProgressFiguresSerializer(serializers.Serializer):
    completed = serializers.IntegerField(help_text="Tasks that got a graded verdict (passed or failed).")
    total = serializers.IntegerField(help_text="Tasks planned (a replanning's dropped tasks are not counted).")
    passed = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True, help_text="Share of graded attempts that passed; null without one.")
    avg_time_seconds = serializers.IntegerField(allow_null=True, help_text="Mean start-to-verdict time of completed tasks.")
    time_spent_seconds = serializers.IntegerField(help_text="Sum of the start-to-verdict times of completed tasks.")
    attempts = serializers.IntegerField(help_text="Graded attempts (task evaluations).")


class ModuleProgressSerializer(ProgressFiguresSerializer):
    id = serializers.UUIDField()
    title = serializers.CharField()


class ProgressTrackSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    title = serializers.CharField()


class ProgressTaskPointSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    position = serializers.IntegerField()
    module = serializers.CharField()
    kind = serializers.CharField()
    difficulty = serializers.IntegerField()
    status = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ProgressDayPointSerializer(serializers.Serializer):
    day = serializers.DateField(help_text="A UTC day.")
    completed = serializers.IntegerField()
    passed = serializers.IntegerField()
    avg_difficulty = serializers.FloatField()
    max_difficulty = serializers.IntegerField()


class DifficultyProgressionSerializer(serializers.Serializer):
    by_task = ProgressTaskPointSerializer(many=True, help_text="The latest 100 completed tasks, oldest first.")
    by_day = ProgressDayPointSerializer(many=True, help_text="Every UTC day with a completed task, oldest first.")


class ProgressStreaksSerializer(serializers.Serializer):
    current_days = serializers.IntegerField(help_text="Consecutive UTC days with a pass, ending today or yesterday.")
    longest_days = serializers.IntegerField()
    last_pass_day = serializers.DateField(allow_null=True)


class PeerModuleSerializer(serializers.Serializer):
    contributors = serializers.IntegerField(allow_null=True, help_text="Learners compared (null below the minimum cohort).")
    accuracy_percentile = serializers.FloatField(allow_null=True)
    completed_percentile = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="Why there is no percentile (null when there is).")


class PeerComparisonSerializer(serializers.Serializer):
    min_cohort = serializers.IntegerField(help_text="CO_PEER_MIN_COHORT: the fewest learners a percentile is shown for.")
    computed_at = serializers.DateTimeField(allow_null=True, help_text="When the distributions were last computed.")
    modules = serializers.DictField(child=PeerModuleSerializer(), help_text="By module slug.")


class StudyPathProgressSerializer(serializers.Serializer):
    path_id = serializers.UUIDField()
    track = ProgressTrackSerializer()
    status = serializers.CharField()
    modules = serializers.DictField(child=ModuleProgressSerializer(), help_text="By module slug, in the track's order.")
    topics = serializers.DictField(child=ProgressFiguresSerializer(), help_text="By topic; a task counts for each of its topics.")
    totals = ProgressFiguresSerializer()
    overall_accuracy = serializers.FloatField(allow_null=True)
    current_difficulty = serializers.IntegerField(allow_null=True)
    difficulty_progression = DifficultyProgressionSerializer()
    streaks = ProgressStreaksSerializer()
    peers = PeerComparisonSerializer(required=False, help_text="Only with `?compare=peers`.")


class StudyPathProgressQuerySerializer(QueryParamsSerializer):
    compare = serializers.ChoiceField(
        choices=["peers"],
        required=False,
        help_text="`peers`: your anonymous percentile per module among the track's learners.",
    )


class DashboardTaskCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    completed = serializers.IntegerField()
    passed = serializers.IntegerField()


class DashboardPathSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    track = ProgressTrackSerializer()
    status = serializers.CharField()
    tasks = DashboardTaskCountsSerializer()
    due_today = serializers.IntegerField(help_text="Open tasks due before the end of today (UTC), overdue included.")
    done_this_week = serializers.IntegerField(help_text="Tasks completed since Monday 00:00 UTC.")


class DashboardReviewDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    reviews = serializers.IntegerField(help_text="Review items due that day (overdue ones on the first day).")


class LearnerDashboardSerializer(serializers.Serializer):
    day = serializers.DateField(help_text="Today (UTC).")
    week_start = serializers.DateField()
    due_today = serializers.IntegerField(help_text="Over your active paths.")
    done_this_week = serializers.IntegerField()
    paths = DashboardPathSerializer(many=True)
    mastery_by_topic = serializers.DictField(child=serializers.IntegerField(), help_text="Topic → mastery 0–100.")
    review_load = DashboardReviewDaySerializer(many=True, help_text="The next 7 days from today.")
