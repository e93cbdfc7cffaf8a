"""What `OPTIONS` on an API route answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.metadata import SimpleMetadata

if TYPE_CHECKING:  # DRF imports this class while `rest_framework.views` is loading
    from rest_framework.request import Request
    from rest_framework.views import APIView


class ApiMetadata(SimpleMetadata):
    """Name, description, renders and parses; no field listing. Requests are described by the
    OpenAPI schema at `/v1/schema`. DRF lists a view's fields through a view-wide
    `serializer_class`, which our views do not have (each action validates with its own
    serializer): asking for it made `OPTIONS` a 500."""

    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        return {}
