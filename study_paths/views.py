"""/v1/study-paths and /v1/study-tasks (seeds/004 CO-003-004/007/014/015), and a task's attempts:
`POST /v1/study-tasks/{id}/submit` and `/hint` (CO-003-008/014)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from co_project.errors import InvalidInput, NotFound
from co_project.openapi import error_responses
from co_project.pagination import ItemsCursorPagination
from co_project.throttles import LearnerRateThrottle
from study_paths import attempts, cache, lifecycle, peers, progress, selectors, services
from study_paths.progress_serializers import (
    LearnerDashboardSerializer,
    StudyPathProgressQuerySerializer,
    StudyPathProgressSerializer,
)
from study_paths.serializers import (
    STUDY_TASK_PAYLOADS,
    StudyPathActiveQuerySerializer,
    StudyPathActiveSerializer,
    StudyPathChangeSerializer,
    StudyPathCreateSerializer,
    StudyPathDetailSerializer,
    StudyPathSerializer,
    StudyPathSummarySerializer,
    StudyTaskActionSerializer,
    StudyTaskDetailSerializer,
    StudyTaskHintSerializer,
    StudyTaskNextSerializer,
    StudyTaskQuerySerializer,
    StudyTaskSerializer,
    StudyTaskSubmitRequest,
)
from submissions.serializers import SubmissionPendingSerializer, SubmissionResultSerializer
from submissions.services import submission_wait
from tutoring.serializers import TutorTurnStartedSerializer
from tutoring.throttles import TutorHintThrottle


class StudyPathViewSet(viewsets.GenericViewSet):
    @extend_schema(
        operation_id="study_paths_create",
        summary="Start a study path on a track",
        description=(
            "Plans the first tasks from the track (modules in order, starting at your level, never more "
            "than one difficulty step at a time, topics rotating, due reviews injected) and returns the "
            "path with them. One active path per track: a second is 409 `study_path_active_exists`. A "
            "bad config is 400 `study_path_config_invalid` naming each problem."
        ),
        tags=["study-paths"],
        request=StudyPathCreateSerializer,
        responses={201: StudyPathSerializer, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample("defaults", value={"track": "coding-interview-meta"}, request_only=True),
            OpenApiExample(
                "configured",
                value={
                    "track": "coding-interview-meta",
                    "config": {"daily_task_target": 2, "difficulty_range": {"min": 1, "max": 4}, "batch_size": 8},
                },
                request_only=True,
            ),
        ],
    )
    def create(self, request: Request) -> Response:
        serializer = StudyPathCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        path = services.study_path_create(learner_id=request.user.id, track=data["track"], config=data.get("config"))
        return Response(StudyPathSerializer(path).data, status=status.HTTP_201_CREATED)


class StudyTaskViewSet(viewsets.GenericViewSet):
    @extend_schema(
        operation_id="study_tasks_next",
        summary="The next study task to do",
        description=(
            "Across your active study paths: a task you started, else the next task of the plan (due "
            "reviews are placed first in the plan wherever they fit its difficulty steps). "
            "Never 404: when there is no task, `task` is null and `reason` says why."
        ),
        tags=["study-tasks"],
        responses={200: StudyTaskNextSerializer, **error_responses()},
    )
    @action(detail=False, methods=["get"], url_path="next")
    def next_task(self, request: Request) -> Response:
        found = selectors.study_task_next_for(learner_id=request.user.id, now=timezone.now())
        return Response(StudyTaskNextSerializer({"task": found.task, "reason": found.reason}).data)


# --- paths and tasks: read, list, change


class StudyPathPagination(ItemsCursorPagination):
    ordering = ("-created_at", "id")


class StudyTaskPagination(ItemsCursorPagination):
    # Plan order: a batch shares its creation time and is ordered by position within it.
    ordering = ("created_at", "position", "id")


def _active_answer(learner_id: str, track: str | None) -> dict[str, Any]:
    path = selectors.study_path_active_of(learner_id=learner_id, track=track)
    reason = "" if path is not None else selectors.study_path_none_reason(learner_id=learner_id, track=track)
    return dict(StudyPathActiveSerializer({"path": path, "reason": reason}).data)


PATH_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The study path's id.")
TASK_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The study task's id.")


class StudyPathsViewSet(StudyPathViewSet):
    """The learner's study paths: create (above), list, read, the active one, change."""

    pagination_class = StudyPathPagination
    serializer_class = StudyPathSummarySerializer

    @extend_schema(
        operation_id="study_paths_list",
        summary="Your study paths, newest first",
        tags=["study-paths"],
        responses={200: StudyPathSummarySerializer(many=True), **error_responses(400)},
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.study_paths_of(learner_id=request.user.id))
        return self.get_paginated_response(StudyPathSummarySerializer(page, many=True).data)

    @extend_schema(
        operation_id="study_paths_active",
        summary="Your active study path with its upcoming tasks",
        description=(
            "Never 404: with no active path (on `track`, when given) `path` is null and `reason` says why. "
            "With several active paths (one per track) and no `track`, the newest. Cached; every change to "
            "your paths or tasks is visible at once."
        ),
        tags=["study-paths"],
        parameters=[StudyPathActiveQuerySerializer],
        responses={200: StudyPathActiveSerializer, **error_responses(400)},
    )
    @action(detail=False, methods=["get"], url_path="active")
    def active(self, request: Request) -> Response:
        query = StudyPathActiveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        track = query.validated_data.get("track")
        answer = cache.active_path_answer(
            learner_id=request.user.id, track=track or "", compute=lambda: _active_answer(request.user.id, track)
        )
        return Response(answer)

    @extend_schema(
        operation_id="study_paths_retrieve",
        summary="One of your study paths with its upcoming tasks and task counts",
        tags=["study-paths"],
        parameters=[PATH_ID],
        responses={200: StudyPathDetailSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        path = selectors.study_path_detail(learner_id=request.user.id, path_id=_uuid(pk, "study path"))
        return Response(StudyPathDetailSerializer(path).data)

    @extend_schema(
        operation_id="study_paths_partial_update",
        summary="Change a study path's config or status",
        description=(
            "`config`: the keys given replace the stored ones, validated like at creation (400 "
            "`study_path_config_invalid`); only pending tasks are regenerated — dropped ones become `skipped` "
            "(`replanned`) with a `status_changed` event, new ones get a `created` event. `status`: `paused` "
            "(from active), `active` (resume, from paused; 409 `study_path_active_exists` when another path on "
            "the track is active), `archived` (from any status; final: any later change is 409 "
            "`study_path_archived`). Other moves are 409 `study_path_transition_invalid`."
        ),
        tags=["study-paths"],
        parameters=[PATH_ID],
        request=StudyPathChangeSerializer,
        responses={200: StudyPathDetailSerializer, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample("pause", value={"status": "paused"}, request_only=True),
            OpenApiExample("resume", value={"status": "active"}, request_only=True),
            OpenApiExample("archive", value={"status": "archived"}, request_only=True),
            OpenApiExample("fewer tasks a day", value={"config": {"daily_task_target": 1, "batch_size": 5}}, request_only=True),
        ],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        path_id = _uuid(pk, "study path")
        serializer = StudyPathChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lifecycle.study_path_change(
            learner_id=request.user.id, path_id=path_id, config=data.get("config"), status=data.get("status")
        )
        path = selectors.study_path_detail(learner_id=request.user.id, path_id=path_id)
        return Response(StudyPathDetailSerializer(path).data)


class StudyTasksViewSet(StudyTaskViewSet):
    """The learner's study tasks: next (above), list, read, start and skip."""

    pagination_class = StudyTaskPagination
    serializer_class = StudyTaskSerializer

    @extend_schema(
        operation_id="study_tasks_list",
        summary="Your study tasks, in plan order",
        description="Filters combine; `due_before` is exclusive, `due_after` inclusive. A bad filter value is a 400.",
        tags=["study-tasks"],
        parameters=[StudyTaskQuerySerializer],
        responses={200: StudyTaskSerializer(many=True), **error_responses(400)},
    )
    def list(self, request: Request) -> Response:
        query = StudyTaskQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tasks = selectors.study_tasks_of(learner_id=request.user.id, filters=selectors.TaskFilters(**query.validated_data))
        page = self.paginate_queryset(tasks)
        return self.get_paginated_response(StudyTaskSerializer(page, many=True).data)

    @extend_schema(
        operation_id="study_tasks_retrieve",
        summary="One of your study tasks with its events and evaluations",
        tags=["study-tasks"],
        parameters=[TASK_ID],
        responses={200: StudyTaskDetailSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        task = selectors.study_task_detail(learner_id=request.user.id, task_id=_uuid(pk, "study task"))
        return Response(StudyTaskDetailSerializer(task).data)

    @extend_schema(
        operation_id="study_tasks_partial_update",
        summary="Start or skip a study task",
        description=(
            "`start`: a pending task becomes `in_progress` (a `started` event; starting it again changes "
            "nothing). `skip`: a pending or started task becomes `skipped` (a `status_changed` event) and the "
            "plan reshapes as after any skip. 409 `study_task_finished` for a finished task, "
            "`study_task_awaiting_verdict` while a submission is graded, `study_path_not_active` on a paused, "
            "completed or archived path."
        ),
        tags=["study-tasks"],
        parameters=[TASK_ID],
        request=StudyTaskActionSerializer,
        responses={200: StudyTaskDetailSerializer, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample("start", value={"action": "start"}, request_only=True),
            OpenApiExample("skip", value={"action": "skip"}, request_only=True),
        ],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        task_id = _uuid(pk, "study task")
        serializer = StudyTaskActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.study_task_act(learner_id=request.user.id, task_id=task_id, action=serializer.validated_data["action"])
        task = selectors.study_task_detail(learner_id=request.user.id, task_id=task_id)
        return Response(StudyTaskDetailSerializer(task).data)


def _uuid(raw: str, what: str) -> uuid.UUID:
    """Ids are UUIDs; anything else names nothing (404, like another learner's id)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No such {what}.") from None


# --- task attempts: submit and hint

_SUBMIT_DESCRIPTION = (
    "Submits an answer to one of your study tasks through the same evaluation pipeline as "
    "`POST /v1/submissions`: the body is the task's subject's payload — `{language, code}` for "
    "coding, `{steps, expression}` for math, `{text}` for design. It waits briefly for the verdict: "
    "200 with the result (the `/v1/submissions` shape) when it is ready, else 202 `{id, status}` — "
    "then poll `GET /v1/submissions/{id}`. The verdict updates your mastery and review queue as a "
    "session's does, is stored as the task's evaluation, and moves the task on: `passed`, or back "
    "to `in_progress` after a failed attempt, or `failed` once `attempts_per_task` attempts failed "
    "(the plan then adapts). One submission at a time per task: while one is graded another is 409 "
    "`study_task_awaiting_verdict`; a finished task is 409 `study_task_finished`, a task of a "
    "paused or archived path 409 `study_path_not_active`. `Idempotency-Key` makes retries safe."
)


class StudyTaskSubmitView(APIView):
    @extend_schema(
        operation_id="study_tasks_submit",
        summary="Submit an answer to a study task",
        description=_SUBMIT_DESCRIPTION,
        tags=["study-tasks"],
        parameters=[
            OpenApiParameter("task_id", str, OpenApiParameter.PATH),
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False, description="≤ 255 characters."),
        ],
        request=StudyTaskSubmitRequest,
        responses={
            200: SubmissionResultSerializer,
            202: OpenApiResponse(SubmissionPendingSerializer, description="Accepted; the verdict is not ready yet."),
            **error_responses(400, 404, 409, 413, 429),
        },
        examples=[
            OpenApiExample("coding", value={"language": "python", "code": "def two_sum(nums, t):\n    ..."}, request_only=True),
            OpenApiExample("math", value={"steps": ["(x+3)*(x+3)"], "expression": "x^2 + 6x + 9"}, request_only=True),
        ],
    )
    def post(self, request: Request, task_id: str) -> Response:
        key = request.headers.get("Idempotency-Key", "")
        if len(key) > 255:
            raise InvalidInput("Idempotency-Key may be at most 255 characters.", fields={"Idempotency-Key": ["Too long."]})
        target = attempts.study_task_attempt_target(learner_id=request.user.id, task_id=task_id)
        serializer = STUDY_TASK_PAYLOADS[target.subject](data=request.data)
        serializer.is_valid(raise_exception=True)
        submission = attempts.study_task_submit(
            learner_id=request.user.id, target=target, payload=dict(serializer.validated_data), idempotency_key=key
        )
        submission = submission_wait(submission=submission, timeout=settings.CO_SUBMISSION_WAIT_SECONDS)
        if submission.is_final:
            return Response(SubmissionResultSerializer(submission).data, status=status.HTTP_200_OK)
        return Response(SubmissionPendingSerializer(submission).data, status=status.HTTP_202_ACCEPTED)


class StudyTaskHintView(APIView):
    throttle_classes = [LearnerRateThrottle, TutorHintThrottle]

    @extend_schema(
        operation_id="study_tasks_hint",
        summary="Ask the tutor for a hint on a study task; returns a stream URL and token (SSE)",
        description=(
            "The tutor of `POST /v1/tutor/messages`, for one of your study tasks: the same context "
            "(never hidden test data), the same single-use stream token and SSE stream "
            "(`GET /v1/tutor/stream?token=…`: `start`, `token`…, `done`), the same per-learner limits "
            "(`CO_TUTOR_HINT_RATE`, `CO_SSE_MAX_STREAMS`). The hint is counted on the task (a pass after "
            "hints counts for less in mastery) and kept in its events: `hint_requested` with the level, "
            "then, when the stream ends, one with what you were shown. A finished task is 409 "
            "`study_task_finished`."
        ),
        tags=["study-tasks"],
        parameters=[OpenApiParameter("task_id", str, OpenApiParameter.PATH)],
        request=StudyTaskHintSerializer,
        responses={202: TutorTurnStartedSerializer, **error_responses(400, 404, 409, 413, 429)},
        examples=[
            OpenApiExample("level 1", value={"level": 1}, request_only=True),
            OpenApiExample(
                "with code and a question",
                value={
                    "level": 2,
                    "message": "Why does it fail on duplicates?",
                    "language": "python",
                    "code": "def f(x):\n    ...",
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request, task_id: str) -> Response:
        serializer = StudyTaskHintSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        started = attempts.study_task_hint(
            learner_id=request.user.id,
            task_id=task_id,
            level=data["level"],
            message=data["message"],
            code=data["code"],
            language=data["language"],
        )
        stream_url = request.build_absolute_uri("/v1/tutor/stream?" + urlencode({"token": started.token}))
        body = {
            "turn_id": started.turn.id,
            "stream_url": stream_url,
            "token": started.token,
            "expires_at": started.turn.token_expires_at,
        }
        return Response(TutorTurnStartedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


# --- progress analytics, dashboard, peer comparison (seeds/004 CO-003-011, 025)

_PROGRESS_EXAMPLE = {
    "path_id": "5b0f4f7e-8c1d-4c6a-9a57-1f2e3d4c5b6a",
    "track": {"id": "0e6a1c2b-3d4e-4f50-8a9b-7c6d5e4f3a2b", "slug": "coding-interview-meta", "title": "Meta coding interview"},
    "status": "active",
    "modules": {
        "arrays-strings": {
            "id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
            "title": "Arrays and strings",
            "completed": 15,
            "total": 25,
            "passed": 12,
            "accuracy": 0.7333,
            "avg_time_seconds": 1200,
            "time_spent_seconds": 18000,
            "attempts": 15,
        }
    },
    "topics": {
        "arrays": {
            "completed": 9,
            "total": 14,
            "passed": 7,
            "accuracy": 0.7,
            "avg_time_seconds": 1100,
            "time_spent_seconds": 9900,
            "attempts": 10,
        }
    },
    "totals": {
        "completed": 15,
        "total": 25,
        "passed": 12,
        "accuracy": 0.7333,
        "avg_time_seconds": 1200,
        "time_spent_seconds": 18000,
        "attempts": 15,
    },
    "overall_accuracy": 0.7333,
    "current_difficulty": 3,
    "difficulty_progression": {
        "by_task": [
            {
                "task_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                "position": 14,
                "module": "arrays-strings",
                "kind": "practice",
                "difficulty": 3,
                "status": "passed",
                "finished_at": "2026-03-02T18:20:00+00:00",
            }
        ],
        "by_day": [{"day": "2026-03-02", "completed": 3, "passed": 2, "avg_difficulty": 2.67, "max_difficulty": 3}],
    },
    "streaks": {"current_days": 4, "longest_days": 9, "last_pass_day": "2026-03-02"},
}
_PEERS_EXAMPLE = {
    "min_cohort": 20,
    "computed_at": "2026-03-02T18:00:00+00:00",
    "modules": {
        "arrays-strings": {"contributors": 48, "accuracy_percentile": 62.5, "completed_percentile": 71.9, "reason": None},
        "graphs": {
            "contributors": None,
            "accuracy_percentile": None,
            "completed_percentile": None,
            "reason": "Fewer than 20 learners of this track have a graded attempt in this module yet.",
        },
    },
}


class StudyPathProgressView(APIView):
    @extend_schema(
        operation_id="study_paths_progress",
        summary="Progress analytics of one of your study paths",
        description=(
            "Per module (by slug, in the track's order): `completed` (tasks graded passed or failed), `total` "
            "(tasks planned; a replanning's dropped tasks do not count), `accuracy` (share of graded attempts that "
            "passed), `avg_time_seconds` and `time_spent_seconds` (start to verdict of completed tasks); the same "
            "by topic and for the whole path; `overall_accuracy`; `current_difficulty` (the task you are on, else "
            "the last completed one); the difficulty progression per task (latest 100) and per UTC day; streaks "
            "(consecutive UTC days with a passed task). Cached; every task verdict or change shows at once. "
            "`?compare=peers` adds your anonymous percentile per module among the track's learners, computed "
            "periodically, shown only when at least `CO_PEER_MIN_COHORT` learners contributed (else a reason)."
        ),
        tags=["study-paths"],
        parameters=[
            OpenApiParameter("path_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The study path's id."),
            StudyPathProgressQuerySerializer,
        ],
        responses={200: StudyPathProgressSerializer, **error_responses(400, 404)},
        examples=[
            OpenApiExample("progress", value=_PROGRESS_EXAMPLE, response_only=True),
            OpenApiExample("with ?compare=peers", value={**_PROGRESS_EXAMPLE, "peers": _PEERS_EXAMPLE}, response_only=True),
        ],
    )
    def get(self, request: Request, path_id: str) -> Response:
        query = StudyPathProgressQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        answer = progress.study_path_progress(learner_id=request.user.id, path_id=_uuid(path_id, "study path"))
        if query.validated_data.get("compare") == "peers":
            modules = {uuid.UUID(module["id"]): slug for slug, module in answer["modules"].items()}
            answer = {
                **answer,
                "peers": peers.peer_comparison(
                    learner_id=request.user.id, track_id=uuid.UUID(answer["track"]["id"]), module_slugs=modules
                ),
            }
        return Response(answer)


class LearnerDashboardView(APIView):
    @extend_schema(
        operation_id="study_paths_dashboard",
        summary="Your dashboard: every study path, what is due today, done this week, mastery, review load",
        description=(
            "Every path of yours (newest first) with its task counts, what is due today (open tasks of active "
            "paths due before the end of the UTC day, overdue included) and done this week (completed since "
            "Monday 00:00 UTC); your mastery per topic (0–100, as `GET /v1/mastery`) and the review items "
            "falling due on each of the next 7 days (overdue ones on today). Cached; every task verdict or "
            "change shows at once."
        ),
        tags=["study-paths"],
        responses={200: LearnerDashboardSerializer, **error_responses()},
        examples=[
            OpenApiExample(
                "dashboard",
                value={
                    "day": "2026-03-04",
                    "week_start": "2026-03-02",
                    "due_today": 2,
                    "done_this_week": 5,
                    "paths": [
                        {
                            "id": "5b0f4f7e-8c1d-4c6a-9a57-1f2e3d4c5b6a",
                            "track": {
                                "id": "0e6a1c2b-3d4e-4f50-8a9b-7c6d5e4f3a2b",
                                "slug": "coding-interview-meta",
                                "title": "Meta coding interview",
                            },
                            "status": "active",
                            "tasks": {"total": 25, "completed": 15, "passed": 12},
                            "due_today": 2,
                            "done_this_week": 5,
                        }
                    ],
                    "mastery_by_topic": {"arrays": 72, "hash-map": 55},
                    "review_load": [
                        {"day": "2026-03-04", "reviews": 3},
                        {"day": "2026-03-05", "reviews": 0},
                        {"day": "2026-03-06", "reviews": 1},
                        {"day": "2026-03-07", "reviews": 0},
                        {"day": "2026-03-08", "reviews": 2},
                        {"day": "2026-03-09", "reviews": 0},
                        {"day": "2026-03-10", "reviews": 0},
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        return Response(progress.learner_dashboard(learner_id=request.user.id))
