"""`POST /v1/sessions`, `GET /v1/sessions/{id}`, `PATCH /v1/sessions/{id}` (advance / retry / giveup)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from co_project.openapi import error_responses
from sessions_app import selectors, services
from sessions_app.serializers import (
    SessionActionSerializer,
    SessionCreateRequest,
    SessionCreateSerializer,
    SessionSerializer,
)

_PATH_ID = OpenApiParameter("session_id", str, OpenApiParameter.PATH)


def _show(request: Request, session_id: object, code: int = status.HTTP_200_OK) -> Response:
    session = selectors.session_get_for_learner(learner_id=request.user.id, session_id=str(session_id))
    return Response(SessionSerializer(session).data, status=code)


class SessionViewSet(viewsets.GenericViewSet):
    lookup_url_kwarg = "session_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="sessions_create",
        summary="Start a practice, track or mock session",
        description=(
            "`practice`: one problem (the one named, else the recommender's pick for the subject). "
            "`track`: walks the track's modules in order, each next problem chosen by the recommender. "
            "`mock`: a time-boxed interview (default 45 minutes, 2 problems; `duration_minutes` "
            "1–180, `problem_count` 1–5); after the deadline submissions get 409 and the session "
            "ends on its own with a report."
        ),
        tags=["sessions"],
        request=SessionCreateRequest,
        responses={201: SessionSerializer, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample("track", value={"subject": "coding", "mode": "track", "track_id": "coding-interview-meta"}),
            OpenApiExample("mock", value={"subject": "coding", "mode": "mock", "duration_minutes": 45, "problem_count": 2}),
            OpenApiExample("practice", value={"subject": "math", "mode": "practice", "problem_id": "expand-binomial-square"}),
        ],
    )
    def create(self, request: Request) -> Response:
        serializer = SessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        session = services.session_create(
            learner_id=request.user.id,
            subject=data["subject"],
            mode=data["mode"],
            track_ref=data.get("track_id"),
            problem_ref=data.get("problem_id"),
            duration_minutes=data.get("duration_minutes"),
            problem_count=data.get("problem_count"),
        )
        return _show(request, session.id, status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="sessions_retrieve",
        summary="A session: current problem, attempts, hints, status, mock deadline and report",
        tags=["sessions"],
        parameters=[_PATH_ID],
        responses={200: SessionSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get_for_learner(learner_id=request.user.id, session_id=session_id)
        if services.session_refresh(session=session).status != session.status:
            session = selectors.session_get_for_learner(learner_id=request.user.id, session_id=session_id)
        return Response(SessionSerializer(session).data)

    @extend_schema(
        operation_id="sessions_update",
        summary="Advance, retry or give up",
        description=(
            "`advance`: move to the next problem (a practice session completes; a track session asks the "
            "recommender). `retry`: reopen the current problem. `giveup`: record a miss. Only an active "
            "session accepts actions (409 otherwise)."
        ),
        tags=["sessions"],
        parameters=[_PATH_ID],
        request=SessionActionSerializer,
        responses={200: SessionSerializer, **error_responses(400, 404, 409)},
        examples=[OpenApiExample("advance", value={"action": "advance"}, request_only=True)],
    )
    def partial_update(self, request: Request, session_id: str) -> Response:
        serializer = SessionActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = services.session_act(
            learner_id=request.user.id, session_id=session_id, action=serializer.validated_data["action"]
        )
        return _show(request, session.id)
