"""`GET /metrics`: the Prometheus scrape, for the operator's Prometheus only.

A bearer token (`CO_METRICS_TOKEN`) guards it, compared in constant time. Without a token the
route does not exist (404) outside development, so a deployment that forgot the token exposes
nothing; `make run` (development) serves it openly on its local bind. Not under `/v1/`: no
learner authentication, no throttle, not in the OpenAPI schema.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from co_project.errors import error_body, handler404
from co_project.metrics import metrics_exposition


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.CO_METRICS_TOKEN
    if token is None and settings.CO_ENV != "development":
        return handler404(request)
    if token is not None and not _bearer_matches(request, token):
        response = JsonResponse(
            error_body("not_authenticated", "Scraping /metrics needs `Authorization: Bearer <CO_METRICS_TOKEN>`."),
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_exposition()
    return HttpResponse(body, content_type=content_type)


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), token.encode())
