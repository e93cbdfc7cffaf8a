"""`POST /v1/tutor/messages` (start a hint turn) and `GET /v1/tutor/stream?token=…` (its SSE stream).

The stream is a plain async Django view returning a StreamingHttpResponse over an async
generator: under ASGI (uvicorn, gunicorn + uvicorn workers) an open stream is a coroutine on the
event loop, not a thread. It is authenticated by its single-use token (EventSource cannot send
headers); a client that does send `Authorization` must be the turn's learner.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from co_project.authentication import verify_learner_token
from co_project.errors import ApplicationError, error_body
from co_project.openapi import error_responses
from co_project.throttles import LearnerRateThrottle
from tutoring import services
from tutoring.serializers import TutorMessageCreateSerializer, TutorTurnStartedSerializer
from tutoring.slots import StreamSlotsUnavailable, stream_slots
from tutoring.sse import turn_event_stream
from tutoring.throttles import TutorHintThrottle

STREAM_DESCRIPTION = """
Starts a hint turn on one of the caller's active session's problems and returns a single-use
stream token (valid `CO_TUTOR_STREAM_TOKEN_SECONDS`, default 60 s). Open `stream_url`
(`GET /v1/tutor/stream?token=…`, no Authorization header needed) with `EventSource` or `curl -N`.
The stream sends Server-Sent Events, each `data` one line of JSON:

* `start` `{"turn_id", "hint_level", "tutor"}`
* `token` `{"text"}` — append to the answer
* `fallback` `{"reason", "message", "tutor": "builtin"}` — the LLM failed: discard the text so far, the built-in hint follows
* `done` `{"turn_id", "hint_level", "tutor", "outcome"}` — the last event; close the EventSource
* `error` `{"code", "message"}` — the turn failed; the stream ends
* `: heartbeat` comments while nothing else is sent

Stream errors use the error envelope: 401 `stream_token_invalid` (unknown, used or expired token),
404 (an Authorization header for another learner), 429 `too_many_streams` (the learner already has
`CO_SSE_MAX_STREAMS` open streams; the token stays usable). Hint requests are limited per learner
(`CO_TUTOR_HINT_RATE`, default 20/min). Each turn counts a hint on the session's problem (a pass
after hints counts for less in mastery).
"""


class TutorMessageView(APIView):
    throttle_classes = [LearnerRateThrottle, TutorHintThrottle]

    @extend_schema(
        operation_id="tutor_messages_create",
        summary="Start a tutor hint turn; returns a stream URL and token (SSE)",
        description=STREAM_DESCRIPTION,
        tags=["tutor"],
        request=TutorMessageCreateSerializer,
        responses={202: TutorTurnStartedSerializer, **error_responses(400, 404, 409, 413)},
        examples=[
            OpenApiExample(
                "level 2 after a failed submission",
                value={
                    "session_id": "6f1c9a52-3d0b-4e43-9a57-0b1f7f3a2c11",
                    "problem_id": "two-sum",
                    "hint_level": 2,
                    "message": "Why does my solution fail on duplicates?",
                    "language": "python",
                    "code": "def two_sum(nums, t):\n    ...\n",
                },
                request_only=True,
            ),
            OpenApiExample(
                "accepted",
                value={
                    "turn_id": "0b7e2f0e-8a4f-4c57-9a3e-55d8f0f5b2aa",
                    "stream_url": "https://co.example.com/v1/tutor/stream?token=Jx3…",
                    "token": "Jx3…",
                    "expires_at": "2026-01-05T10:00:60Z",
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = TutorMessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        started = services.tutor_turn_start(
            learner_id=request.user.id,
            session_id=data["session_id"],
            problem_ref=data["problem_id"],
            hint_level=data["hint_level"],
            message=data["message"],
            code=data["code"],
            language=data["language"],
            last_eval=data.get("last_eval"),
        )
        stream_url = request.build_absolute_uri("/v1/tutor/stream?" + urlencode({"token": started.token}))
        body = {
            "turn_id": started.turn.id,
            "stream_url": stream_url,
            "token": started.token,
            "expires_at": started.turn.token_expires_at,
        }
        return Response(TutorTurnStartedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


def _error(code: str, message: str, status_code: int, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code, headers=headers)


def _authenticated_learner(request: HttpRequest) -> str | None:
    """The learner of an Authorization header, when the client sent one (EventSource cannot)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0] != "Bearer":
        raise drf_exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
    return verify_learner_token(parts[1]).id


async def tutor_stream(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return _error("method_not_allowed", f'Method "{request.method}" not allowed.', 405, {"Allow": "GET"})
    token = request.GET.get("token", "")
    if not token:
        return _error("not_authenticated", "The stream token (?token=…) is missing.", 401)
    try:
        learner_id = _authenticated_learner(request)
        turn = await sync_to_async(services.tutor_stream_check)(token=token, learner_id=learner_id)
    except drf_exceptions.AuthenticationFailed as exc:
        return _error("authentication_failed", str(exc.detail), 401)
    except ApplicationError as exc:
        return _error(exc.code, exc.message, exc.status_code)

    slots, stream_id = stream_slots(), uuid.uuid4().hex
    try:
        acquired = await slots.acquire(turn.learner_id, stream_id)
    except StreamSlotsUnavailable:
        return _error("service_unavailable", "Stream counting is unavailable; try again shortly.", 503)
    if not acquired:
        return _error(
            "too_many_streams",
            f"You already have {settings.CO_SSE_MAX_STREAMS} open tutor streams; close one first. This token stays usable.",
            429,
            {"Retry-After": str(max(1, round(settings.CO_TUTOR_HEARTBEAT_SECONDS)))},
        )
    try:
        if not await sync_to_async(services.tutor_stream_claim)(turn_id=turn.id):
            raise services.StreamTokenInvalid()
        secrets = await sync_to_async(services.tutor_turn_open)(turn=turn)
    except ApplicationError as exc:
        await slots.release(turn.learner_id, stream_id)
        return _error(exc.code, exc.message, exc.status_code)
    except BaseException:
        await slots.release(turn.learner_id, stream_id)
        raise

    body = turn_event_stream(
        turn_id=str(turn.id),
        learner_id=turn.learner_id,
        hint_level=turn.hint_level,
        tutor=turn.tutor,
        context=turn.context,
        secrets=secrets,
        slots=slots,
        stream_id=stream_id,
    )
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
