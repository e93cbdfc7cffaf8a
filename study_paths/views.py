"""`POST /v1/study-paths` and `GET /v1/study-tasks/next` (seeds/004 CO-003-004/007)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from co_project.openapi import error_responses
from study_paths import selectors, services
from study_paths.serializers import StudyPathCreateSerializer, StudyPathSerializer, StudyTaskNextSerializer


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
        path = selectors.study_path_with_upcoming(learner_id=request.user.id, path_id=path.id)
        return Response(StudyPathSerializer(path).data, status=status.HTTP_201_CREATED)


class StudyTaskViewSet(viewsets.GenericViewSet):
    @extend_schema(
        operation_id="study_tasks_next",
        summary="The next study task to do",
        description=(
            "Across your active study paths: a task you started, else a due review, else the next task "
            "of the plan. Never 404: when there is no task, `task` is null and `reason` says why."
        ),
        tags=["study-tasks"],
        responses={200: StudyTaskNextSerializer, **error_responses()},
    )
    @action(detail=False, methods=["get"], url_path="next")
    def next_task(self, request: Request) -> Response:
        found = selectors.study_task_next_for(learner_id=request.user.id, now=timezone.now())
        return Response(StudyTaskNextSerializer({"task": found.task, "reason": found.reason}).data)
