"""`POST /v1/submissions`, `GET /v1/submissions/{id}`, and a learner's results per problem of a
track (`GET /v1/tracks/{id-or-slug}/my-results`), which are read from their submissions."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from co_project.errors import InvalidInput
from co_project.openapi import error_responses
from submissions import selectors, services
from submissions.models import Submission
from submissions.serializers import (
    SubmissionCreateRequest,
    SubmissionCreateSerializer,
    SubmissionPendingSerializer,
    SubmissionResultSerializer,
    TrackResultsSerializer,
)

_RESULT_EXAMPLE = {
    "id": "6a0d8f9e-3b2c-4d1e-9f8a-7b6c5d4e3f21",
    "status": "failed",
    "kind": "submit",
    "problem_id": "two-sum",
    "session_id": None,
    "subject": "coding",
    "language": "python",
    "visible": {
        "passed": 3,
        "total": 3,
        "details": [
            {
                "index": 0,
                "input": {"nums": [2, 7, 11, 15], "t": 9},
                "expected": [0, 1],
                "actual": [0, 1],
                "outcome": "passed",
                "time_ms": 0,
                "error": None,
            }
        ],
    },
    "hidden": {"passed": 12, "total": 17, "categories": ["duplicates"]},
    "remediation": [{"category": "duplicates", "text": "Arrays can hold the same value twice: ..."}],
    "exec_ms": 41,
    "peak_memory_kb": 9120,
    "isolation": "bubblewrap",
    "error": None,
    "created_at": "2026-11-22T10:00:00Z",
    "finished_at": "2026-11-22T10:00:00.041Z",
}

_CUSTOM_RESULT_EXAMPLE = {
    **_RESULT_EXAMPLE,
    "status": "failed",
    "kind": "run",
    "visible": {"passed": 0, "total": 0, "details": []},
    "hidden": None,
    "remediation": [],
    "custom": {
        "reference": True,
        "details": [
            {
                "index": 0,
                "input": {"nums": [3, 3], "t": 6},
                "output": [0, 1],
                "expected": [0, 1],
                "expected_note": None,
                "outcome": "passed",
                "time_ms": 0,
                "error": None,
            },
            {
                "index": 1,
                "input": {"nums": [1, 2], "t": 7},
                "output": None,
                "expected": [-1, -1],
                "expected_note": None,
                "outcome": "runtime_error",
                "time_ms": 0,
                "error": "IndexError: list index out of range (line 4)",
            },
        ],
    },
}


def _show(submission: Submission) -> Response:
    """200 with the result once there is a verdict; until then 202 with the pending status."""
    if submission.is_final:
        return Response(SubmissionResultSerializer(submission).data, status=status.HTTP_200_OK)
    return Response(SubmissionPendingSerializer(submission).data, status=status.HTTP_202_ACCEPTED)


class SubmissionViewSet(viewsets.GenericViewSet):
    lookup_url_kwarg = "submission_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="submissions_create",
        summary="Submit code, math or a design answer for grading",
        description=(
            "Stores the submission, queues its evaluation and waits briefly for the verdict: 200 with "
            "the result when it is ready, else 202 `{id, status: pending}` — then poll "
            "`GET /v1/submissions/{id}`. Send an `Idempotency-Key` header to make retries safe: the "
            "same key returns the first submission and never grades twice. `kind: run` grades "
            "against the visible tests only (not counted); with `payload.inputs` (up to 5 objects of "
            "the problem's parameters) it runs your code on those inputs instead, and shows the "
            "reference solution's value for each as `expected` in `custom` (a separate sandbox run). "
            "Inputs that do not fit the parameters are a 400 and nothing is stored."
        ),
        tags=["submissions"],
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False, description="≤ 255 characters.")
        ],
        request=SubmissionCreateRequest,
        responses={
            200: SubmissionResultSerializer,
            202: OpenApiResponse(SubmissionPendingSerializer, description="Accepted; the verdict is not ready yet."),
            **error_responses(400, 404, 409, 413),
        },
        examples=[
            OpenApiExample(
                "coding",
                value={
                    "problem_id": "two-sum",
                    "subject": "coding",
                    "payload": {"language": "python", "code": "def two_sum(nums, t):\n    ..."},
                },
                request_only=True,
            ),
            OpenApiExample(
                "math",
                value={
                    "problem_id": "expand-binomial-square",
                    "subject": "math",
                    "payload": {"steps": ["(x+3)*(x+3)"], "expression": "x^2 + 6x + 9"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "run on custom input",
                value={
                    "problem_id": "two-sum",
                    "subject": "coding",
                    "kind": "run",
                    "payload": {
                        "language": "python",
                        "code": "def two_sum(nums, t):\n    ...",
                        "inputs": [{"nums": [3, 3], "t": 6}, {"nums": [1, 2], "t": 7}],
                    },
                },
                request_only=True,
            ),
            OpenApiExample("result", value=_RESULT_EXAMPLE, response_only=True, status_codes=["200"]),
            OpenApiExample("custom input result", value=_CUSTOM_RESULT_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    )
    def create(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "")
        if len(key) > 255:
            raise InvalidInput("Idempotency-Key may be at most 255 characters.", fields={"Idempotency-Key": ["Too long."]})
        serializer = SubmissionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        submission, _ = services.submission_create(
            learner_id=request.user.id,
            problem_ref=data["problem_id"],
            subject=data["subject"],
            payload=data["payload"],
            kind=data["kind"],
            session_id=data["session_id"],
            idempotency_key=key,
        )
        submission = services.submission_wait(submission=submission, timeout=settings.CO_SUBMISSION_WAIT_SECONDS)
        return _show(submission)

    @extend_schema(
        operation_id="submissions_retrieve",
        summary="A submission's result (or its pending status)",
        tags=["submissions"],
        parameters=[OpenApiParameter("submission_id", str, OpenApiParameter.PATH)],
        responses={200: SubmissionResultSerializer, 202: SubmissionPendingSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, submission_id: str) -> Response:
        submission = selectors.submission_get_for_learner(learner_id=request.user.id, submission_id=submission_id)
        return _show(submission)


_TRACK_RESULTS_EXAMPLE = {
    "track": {
        "id": "3f6d2a4e-5b1c-4e8a-9f0d-2c7b1a9e8d11",
        "slug": "coding-interview-meta",
        "title": "Meta Coding Interview Prep (Pilot)",
    },
    "problems": [
        {
            "problem_id": "b0c1f7a2-8e0d-4c6b-a1f3-5d9e2c4b7a60",
            "slug": "two-sum",
            "module": "hashing",
            "status": "solved",
            "attempts": 3,
            "best_verdict": "passed",
            "last_verdict": "passed",
            "last_submitted_at": "2026-11-22T10:00:00+00:00",
        },
        {
            "problem_id": "c2d3e4f5-0a1b-4c2d-8e3f-405162738495",
            "slug": "group-anagrams",
            "module": "hashing",
            "status": "attempted",
            "attempts": 1,
            "best_verdict": "failed",
            "last_verdict": "failed",
            "last_submitted_at": "2026-11-21T18:30:00+00:00",
        },
        {
            "problem_id": "d4e5f6a7-1b2c-4d3e-9f40-5a6b7c8d9e0f",
            "slug": "first-unique-char",
            "module": "hashing",
            "status": "not_started",
            "attempts": 0,
            "best_verdict": None,
            "last_verdict": None,
            "last_submitted_at": None,
        },
    ],
    "totals": {"total": 3, "solved": 1, "attempted": 1, "not_started": 1},
}


class TrackResultsView(APIView):
    @extend_schema(
        operation_id="tracks_my_results",
        summary="Your result on each problem of a track",
        description=(
            "For every published problem of the track (in the track's order): `solved` when one of your graded "
            "submits passed, `attempted` when you have graded submits but none passed, else `not_started`; the "
            "number of graded submits, the best and the latest verdict, and when you last submitted. Graded "
            "submits from every front door count (sessions and study tasks); runs, submissions still being "
            "graded and `error` verdicts do not. Only your own submissions, and nothing of a hidden test."
        ),
        tags=["tracks"],
        parameters=[OpenApiParameter("reference", str, OpenApiParameter.PATH, description="Track UUID or slug.")],
        responses={200: TrackResultsSerializer, **error_responses(404)},
        examples=[OpenApiExample("results", value=_TRACK_RESULTS_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, reference: str) -> Response:
        results = selectors.track_results_for_learner(learner_id=request.user.id, track_reference=reference)
        return Response(TrackResultsSerializer(results).data)
