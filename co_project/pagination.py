"""List responses are `{"items": [...], "next": <cursor URL or null>}` (DESIGN §4)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from co_project.errors import InvalidInput


class ItemsCursorPagination(CursorPagination):
    """DRF's cursor pagination with the two query parameters checked like any other input:
    an unreadable cursor or a `limit` outside 1–100 is a 400 naming the parameter (DRF answers
    404 for the first and silently falls back to the default page size for the second)."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = "slug"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdecimal() or not 1 <= int(raw) <= self.max_page_size:
            raise InvalidInput(
                f"limit must be a whole number from 1 to {self.max_page_size}.",
                fields={self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]},
            )
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise InvalidInput(
                "The cursor is not valid; use the `next` URL of a previous page.",
                fields={self.cursor_query_param: ["Not a cursor this API issued."]},
            ) from None

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response({"items": data, "next": self.get_next_link()})

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The `next` URL of the previous page carries it; 400 when it is not one this API issued.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Page size, 1–{self.max_page_size} (default {self.page_size}); 400 outside that range.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "next"],
            "properties": {
                "items": schema,
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "URL of the next page, or null.",
                    "example": None,
                },
            },
        }
