"""Response shapes of /v1/mastery, /v1/review-queue and /v1/recommendations/next."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from co_project.serializer_fields import QueryParamsSerializer
from personalization.models import REVIEW_INTERVAL_DAYS, Mastery, MasteryKeyType, ReviewItem, ReviewReason
from personalization.recommendation import RecommendationKind
from tracks.choices import Subject


class MasteryQuerySerializer(QueryParamsSerializer):
    key_type = serializers.ChoiceField(choices=MasteryKeyType.choices, required=False)


class MasterySerializer(serializers.ModelSerializer):
    mastered = serializers.SerializerMethodField(help_text="score ≥ CO_MASTERY_THRESHOLD: what ends a track session.")

    class Meta:
        model = Mastery
        fields = ("key_type", "key_id", "score", "ema", "attempts", "mastered", "updated_at")

    def get_mastered(self, mastery: Mastery) -> bool:
        return mastery.score >= settings.CO_MASTERY_THRESHOLD


class MasteryListSerializer(serializers.Serializer):
    """All of the learner's mastery rows at once (bounded by the catalogue): never a next page."""

    items = MasterySerializer(many=True)
    next = serializers.CharField(allow_null=True)


class ReviewProblemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    title = serializers.CharField()
    difficulty = serializers.IntegerField()


class ReviewItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    problem = ReviewProblemSerializer()
    reason = serializers.ChoiceField(choices=ReviewReason.choices)
    bucket = serializers.IntegerField(help_text="0–3: due 1 / 3 / 7 / 21 days after the last result.")
    interval_days = serializers.SerializerMethodField()
    next_due_at = serializers.DateTimeField()
    due = serializers.SerializerMethodField(help_text="True when the review is due now.")
    last_reviewed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_interval_days(self, item: ReviewItem) -> int:
        """The interval the item was scheduled with: its bucket's, or the one FSRS chose."""
        if item.stability is not None and item.last_reviewed_at is not None:
            return max(1, round((item.next_due_at - item.last_reviewed_at).total_seconds() / 86400))
        return REVIEW_INTERVAL_DAYS[item.bucket]

    def get_due(self, item: ReviewItem) -> bool:
        return item.next_due_at <= self.context.get("now", timezone.now())


class RecommendationQuerySerializer(QueryParamsSerializer):
    track = serializers.CharField(
        max_length=100, required=False, trim_whitespace=False, help_text="Limit to a track (id or slug)."
    )
    subject = serializers.ChoiceField(choices=Subject.choices, required=False)


class RecommendationTermSerializer(serializers.Serializer):
    value = serializers.FloatField(help_text="The term, 0–1.")
    weight = serializers.FloatField()
    contribution = serializers.FloatField(help_text="weight × value")


class RecommendationTermsSerializer(serializers.Serializer):
    weakness = RecommendationTermSerializer()
    novelty = RecommendationTermSerializer()
    pacing = RecommendationTermSerializer()
    diversity = RecommendationTermSerializer()


class RecommendedProblemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    title = serializers.CharField()
    subject = serializers.CharField()
    difficulty = serializers.IntegerField()
    topics = serializers.ListField(child=serializers.CharField())
    track = serializers.CharField()


class RecommendationSerializer(serializers.Serializer):
    problem = RecommendedProblemSerializer()
    kind = serializers.ChoiceField(choices=RecommendationKind.choices)
    score = serializers.FloatField()
    terms = RecommendationTermsSerializer()
    reasons = serializers.ListField(child=serializers.CharField())
    guardrails = serializers.ListField(child=serializers.CharField(), help_text="Guardrails that shaped this pick.")
    learner = serializers.DictField(child=serializers.IntegerField(), help_text="{level, fail_streak, due_reviews}")
