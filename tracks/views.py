"""Public curriculum API: `/v1/tracks`, `/v1/tracks/{id-or-slug}`, `/v1/problems/{id-or-slug}`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from co_project.errors import NotFound
from co_project.openapi import error_responses
from co_project.pagination import ItemsCursorPagination
from tracks import selectors
from tracks.problem_bank import problem_bundle_get
from tracks.serializers import (
    PublicProblemSerializer,
    TrackDetailSerializer,
    TrackListQuerySerializer,
    TrackSerializer,
)

_TRACK_EXAMPLE = {
    "id": "3f6d2a4e-5b1c-4e8a-9f0d-2c7b1a9e8d11",
    "slug": "coding-interview-meta",
    "subject": "coding",
    "title": "Meta Coding Interview Prep (Pilot)",
    "description": "",
    "labels": ["company:meta"],
    "version": "1.0.0",
    "modules": [{"id": "hashing", "title": "Hash Maps & Sets", "outcomes": ["hash-map"], "position": 1}],
}
_PROBLEM_EXAMPLE = {
    "id": "b0c1f7a2-8e0d-4c6b-a1f3-5d9e2c4b7a60",
    "slug": "two-sum",
    "subject": "coding",
    "title": "Two Sum",
    "statement": "Return indices `[i, j]` with `i < j` and `nums[i] + nums[j] == t` ...",
    "difficulty": 2,
    "topics": ["arrays", "hash-map"],
    "track": {
        "id": "3f6d2a4e-5b1c-4e8a-9f0d-2c7b1a9e8d11",
        "slug": "coding-interview-meta",
        "title": "Meta Coding Interview Prep (Pilot)",
    },
    "module": {"id": "hashing", "title": "Hash Maps & Sets", "outcomes": ["hash-map"]},
    "parameters": ["nums", "t"],
    "languages": {
        "javascript": {"entrypoint": "twoSum", "starter_code": "function twoSum(nums, t) {\n}\n"},
        "python": {"entrypoint": "two_sum", "starter_code": "def two_sum(nums, t):\n    pass\n"},
    },
    "visible_tests": [{"input": {"nums": [2, 7, 11, 15], "t": 9}, "expected": [0, 1]}],
    "comparison": "exact",
    "float_tolerance": None,
    "limits": {"time_ms": 1000, "memory_mb": 256},
    "hint_levels": 3,
    "math": None,
    "rubric": None,
}


class TrackViewSet(viewsets.GenericViewSet):
    pagination_class = ItemsCursorPagination
    lookup_url_kwarg = "reference"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="tracks_list",
        summary="List published tracks",
        tags=["tracks"],
        parameters=[TrackListQuerySerializer],
        responses={200: TrackSerializer(many=True), **error_responses(400)},
        examples=[OpenApiExample("tracks", value=_TRACK_EXAMPLE, response_only=True)],
    )
    def list(self, request: Request) -> Response:
        query = TrackListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(selectors.track_list(**query.validated_data))
        return self.get_paginated_response(TrackSerializer(page, many=True).data)

    @extend_schema(
        operation_id="tracks_retrieve",
        summary="A track by id or slug, with its modules and problem summaries",
        tags=["tracks"],
        parameters=[OpenApiParameter("reference", str, OpenApiParameter.PATH, description="Track UUID or slug.")],
        responses={200: TrackDetailSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, reference: str) -> Response:
        return Response(TrackDetailSerializer(selectors.track_get(reference=reference)).data)


class ProblemViewSet(viewsets.GenericViewSet):
    lookup_url_kwarg = "reference"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="problems_retrieve",
        summary="The learner's view of a problem: statement, starter code, visible tests",
        description=(
            "Served from the database, or from the remote problem bank when `CO_PROBLEM_BANK_BASE` is "
            "set and the database has no such problem. Hidden tests, reference solutions, generators, "
            "remediation and answers are never included. 404 when no bank has the problem; 409 "
            "`problem_repository_not_ready` when the remote bank cannot be reached."
        ),
        tags=["problems"],
        parameters=[OpenApiParameter("reference", str, OpenApiParameter.PATH, description="Problem UUID or slug.")],
        responses={200: PublicProblemSerializer, **error_responses(404, 409)},
        examples=[OpenApiExample("two-sum", value=_PROBLEM_EXAMPLE, response_only=True)],
    )
    def retrieve(self, request: Request, reference: str) -> Response:
        bundle = problem_bundle_get(reference=reference)
        if bundle is None:
            raise NotFound(f"No published problem '{reference[:100]}'.")
        return Response(PublicProblemSerializer(bundle).data)
