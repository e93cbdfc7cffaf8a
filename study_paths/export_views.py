"""`GET /v1/study-tasks/export` (seeds/004 CO-003-013): the learner's study history as a CSV or
JSON file, streamed while it is read (`study_paths.export`)."""

from __future__ import annotations

import time as time_module
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from co_project.metrics import export_duration_observe
from co_project.openapi import error_responses
from co_project.serializer_fields import QueryParamsSerializer
from study_paths.export import EXPORT_FORMATS, ExportRange, export_file_name
from study_paths.throttles import StudyTaskExportThrottle


class DayOrTimeField(serializers.Field):
    """A day (`2026-03-01`) or an ISO 8601 time (`2026-03-01T12:00:00Z`; no offset means UTC)."""

    default_error_messages = {"invalid": "Use a date (YYYY-MM-DD) or an ISO 8601 date-time."}

    def to_internal_value(self, data: Any) -> date | datetime | None:
        if data == "":  # `?to=` as a form leaves it: no bound, as if left out
            return None
        if isinstance(data, str):
            try:
                # A day first: parse_datetime would read `2026-03-01` as its midnight.
                day = parse_date(data)
                if day is not None:
                    return day
                moment = parse_datetime(data)
            except ValueError:
                moment = None
            if moment is not None:
                return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)
        self.fail("invalid")

    def to_representation(self, value: Any) -> str:
        return value.isoformat()


class StudyTaskExportQuerySerializer(QueryParamsSerializer):
    """`format`, and the range on the tasks' creation: `from` inclusive, `to` exclusive for a time
    and inclusive for a day (the whole day)."""

    format = serializers.ChoiceField(choices=sorted(EXPORT_FORMATS))

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = DayOrTimeField(required=False)  # `from` is a keyword: declared here
        fields["to"] = DayOrTimeField(required=False)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = _start_of(attrs.get("from")), _end_of(attrs.get("to"))
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"to": ["Must be after from."]})
        return {**attrs, "window": ExportRange(start=start, end=end)}


def _start_of(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, tzinfo=UTC)


def _end_of(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC)


def _timed(pieces: Iterator[bytes], *, export_format: str) -> Iterator[bytes]:
    """The export's pieces, its duration observed once the last one is sent (co_export_duration_seconds)."""
    started = time_module.monotonic()
    yield from pieces
    export_duration_observe(export_format=export_format, seconds=time_module.monotonic() - started)


def _day(value: date | datetime | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


class IgnoreFormatParameter(BaseContentNegotiation):
    """`?format=` names the file's format here, not a DRF renderer: errors are always JSON."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class StudyTaskExportView(APIView):
    content_negotiation_class = IgnoreFormatParameter

    @extend_schema(
        operation_id="study_tasks_export",
        summary="Download your study history (CSV or JSON)",
        description=(
            "Every study task you were given whose creation falls in the range (`from` inclusive; `to` "
            "exclusive for a time, the whole day for a date; either may be left out), oldest first, with "
            "all its evaluations and events, streamed as it is read (`Content-Disposition: attachment`). "
            "CSV: one `task` row, then its `evaluation` rows, then its `event` rows; a `record` column says "
            "which, each fills its own columns, lists and payloads are JSON. JSON: `{format, version, "
            "exported_at, from, to, tasks: [{…task, evaluations: [...], events: [...]}]}`. Hidden tests "
            "appear only as counts and failed categories. `format=revlog`: your review log (the reviews "
            "made in the range) as CSV in the FSRS optimizer's columns `card_id, review_time, "
            "review_rating, review_state, review_duration`, to tune your own scheduler. At most "
            "`CO_EXPORT_RATE` exports per learner (default 5 an hour; a refused request is not "
            "counted): past it 429 with Retry-After. A bad parameter is 400."
        ),
        tags=["study-tasks"],
        parameters=[
            OpenApiParameter("format", str, enum=sorted(EXPORT_FORMATS), required=True),
            OpenApiParameter("from", OpenApiTypes.STR, description="Date (YYYY-MM-DD) or ISO 8601 time; inclusive."),
            OpenApiParameter("to", OpenApiTypes.STR, description="Date (whole day included) or ISO 8601 time (exclusive)."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="CSV file.",
                examples=[
                    OpenApiExample(
                        "csv",
                        value=(
                            "record,task_id,path_id,track,module,problem,kind,difficulty,topics,position,status,…\r\n"
                            "task,7d0c…,5a1e…,coding-interview-meta,arrays,two-sum,practice,2,"
                            '"[""arrays""]",1,passed,…\r\n'
                            "evaluation,7d0c…,5a1e…,,,,,,,,,…,1.0,12,2048,3,3,5,5,[],…\r\n"
                            'event,7d0c…,5a1e…,,,,,,,,,…,1,created,"{""kind"":""practice"",…}",…\r\n'
                        ),
                    )
                ],
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="JSON file.",
                examples=[
                    OpenApiExample(
                        "json",
                        value={
                            "format": "study-tasks",
                            "version": 1,
                            "exported_at": "2026-03-02T09:00:00+00:00",
                            "from": "2026-03-01T00:00:00+00:00",
                            "to": None,
                            "tasks": [
                                {
                                    "id": "7d0c2a8e-…",
                                    "path_id": "5a1e…",
                                    "track": "coding-interview-meta",
                                    "module": "arrays",
                                    "problem": "two-sum",
                                    "kind": "practice",
                                    "difficulty": 2,
                                    "topics": ["arrays"],
                                    "position": 1,
                                    "status": "passed",
                                    "attempt_count": 1,
                                    "hint_count": 0,
                                    "due_at": None,
                                    "created_at": "2026-03-01T08:00:00+00:00",
                                    "started_at": "2026-03-01T08:01:00+00:00",
                                    "finished_at": "2026-03-01T08:05:00+00:00",
                                    "evaluations": [{"id": "…", "submission_id": "…", "score": 1.0, "hidden_passed": 5}],
                                    "events": [{"sequence": 1, "event_type": "created", "payload": {"position": 1}}],
                                }
                            ],
                        },
                    )
                ],
            ),
            **error_responses(400),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = StudyTaskExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        # Counted only once the request is valid: a typo does not use up an export.
        self.check_throttles_of(request, StudyTaskExportThrottle())
        chosen = EXPORT_FORMATS[data["format"]]
        window: ExportRange = data["window"]
        name = export_file_name(
            format_name=data["format"],
            first_day=_day(data.get("from")),
            last_day=_day(data.get("to")) or timezone.now().date(),
        )
        pieces = chosen.render(learner_id=request.user.id, window=window)
        response = StreamingHttpResponse(_timed(pieces, export_format=data["format"]), content_type=chosen.content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response

    def check_throttles_of(self, request: Request, throttle: StudyTaskExportThrottle) -> None:
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait())
