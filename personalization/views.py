"""`GET /v1/mastery`, `GET /v1/review-queue`, `GET /v1/recommendations/next`."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from co_project.openapi import error_responses
from co_project.pagination import ItemsCursorPagination
from personalization import selectors, services
from personalization.models import ReviewItem
from personalization.serializers import (
    MasteryListSerializer,
    MasteryQuerySerializer,
    RecommendationQuerySerializer,
    RecommendationSerializer,
    ReviewItemSerializer,
)


class ReviewQueuePagination(ItemsCursorPagination):
    ordering = ("next_due_at", "id")


class MasteryView(APIView):
    @extend_schema(
        operation_id="mastery_list",
        summary="The learner's mastery per topic and per module outcome",
        description="Score 0–100 (the EMA of attempt performance, rounded) and the EMA itself; see the README for the rule.",
        tags=["learner model"],
        parameters=[MasteryQuerySerializer],
        responses={200: MasteryListSerializer, **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        query = MasteryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.mastery_list(learner_id=request.user.id, key_type=query.validated_data.get("key_type"))
        return Response(MasteryListSerializer({"items": rows, "next": None}).data)


@extend_schema_view(
    get=extend_schema(
        operation_id="review_queue_list",
        summary="Due and upcoming reviews (spaced repetition), soonest first",
        description="Reasons fail / slow / heavy-hint / mock-gap; buckets 0–3 are due after 1 / 3 / 7 / 21 days.",
        tags=["learner model"],
        responses={200: ReviewItemSerializer(many=True), **error_responses(400)},
    )
)
class ReviewQueueView(ListAPIView):
    """A paginated list like `/v1/tracks`: the schema gets the page shape and its parameters."""

    pagination_class = ReviewQueuePagination
    serializer_class = ReviewItemSerializer

    def get_queryset(self) -> QuerySet[ReviewItem]:
        return selectors.review_queue(learner_id=self.request.user.id)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}


class RecommendationNextView(APIView):
    @extend_schema(
        operation_id="recommendations_next",
        summary="The next problem to practise, with its score, each term's contribution and the reasons",
        tags=["learner model"],
        parameters=[RecommendationQuerySerializer],
        description=(
            "With `track`: the track session's pick; `409 track_mastered` once every topic of the "
            "track is mastered (`CO_MASTERY_THRESHOLD`)."
        ),
        responses={200: RecommendationSerializer, **error_responses(400, 404, 409)},
    )
    def get(self, request: Request) -> Response:
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        recommendation = services.recommendation_next(
            learner_id=request.user.id, track_ref=data.get("track"), subject=data.get("subject")
        )
        return Response(RecommendationSerializer(recommendation).data)
