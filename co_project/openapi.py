"""Shared OpenAPI pieces: the error envelope and the standard error responses per endpoint."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorEnvelope = inline_serializer(
    "ErrorEnvelope",
    fields={
        "error": inline_serializer(
            "ErrorDetail",
            fields={
                "code": serializers.CharField(help_text="Stable machine-readable code, e.g. `not_found`."),
                "message": serializers.CharField(help_text="Readable explanation."),
                "fields": serializers.DictField(help_text="Per-field problems for validation errors."),
            },
        ),
        "request_id": serializers.CharField(help_text="Echo of X-Request-ID; quote it when reporting."),
    },
)

_EXAMPLES = {
    400: ("validation_error", 'subject: "chemistry" is not a valid choice.', {"subject": ['"chemistry" is not a valid choice.']}),
    401: ("authentication_failed", "Token is invalid.", {}),
    404: ("not_found", "No published track 'unknown'.", {}),
    409: ("problem_repository_not_ready", "Problem repository not ready: the problem bank has no such problem.", {}),
    413: ("code_too_large", "Code is 70000 bytes; the limit is 65536 bytes (64 KiB).", {}),
    429: ("throttled", "Request was throttled. Expected available in 12 seconds.", {}),
}
_DESCRIPTIONS = {
    400: "Invalid input (validation_error, malformed_request).",
    401: "Missing, malformed, expired or untrusted token.",
    404: "Not found, or not yours.",
    409: "Conflicts with the current state.",
    413: "Too large (code over 64 KiB, an over-long answer or body).",
    429: "Per-learner rate limit exceeded (see Retry-After), or too many of the learner's submissions are being graded.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The envelope for each status, with an example, for `extend_schema(responses=...)`."""
    responses = {}
    for status in (401, 429, *statuses):
        code, message, fields = _EXAMPLES[status]
        responses[status] = OpenApiResponse(
            response=ErrorEnvelope,
            description=_DESCRIPTIONS[status],
            examples=[
                OpenApiExample(
                    code,
                    value={"error": {"code": code, "message": message, "fields": fields}, "request_id": "4f1c2b0e9a7d4e5f"},
                    response_only=True,
                    status_codes=[str(status)],
                )
            ],
        )
    return responses


def require_request_bodies(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS: every request body of this API is required. drf-spectacular derives
    that from a serializer's required fields, which a oneOf request (one shape per subject or per
    session mode) does not have, and would mark those bodies optional."""
    for operations in result["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result
