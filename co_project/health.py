"""`GET /health`: is this process able to serve? Reports database, cache and broker.

200 while the database answers (a broken cache or broker degrades the service but it still
serves); 503 when the database is unreachable, so a load balancer takes the instance out.
Failures are named, never described: driver messages can carry host names and users.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger("co.health")


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = check() or {}
        result.setdefault("status", "ok")
    except Exception as exc:  # noqa: BLE001 - a health probe reports any failure
        logger.warning("health check %s failed: %s", check.__name__, type(exc).__name__)
        result = {"status": "unavailable", "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"engine": connection.vendor}


def _cache() -> dict[str, Any]:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)
    backend = settings.CACHES["default"]["BACKEND"]
    return {"backend": "redis" if "redis" in backend.lower() else "local-memory"}


def _broker() -> dict[str, Any]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"status": "ok", "mode": "eager"}
    from co_project.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    return {"mode": "broker"}


def _sandbox() -> dict[str, Any]:
    """Which isolation learner code gets. Production without namespace isolation refuses to run
    code (fails closed), which this reports as unavailable."""
    from grading.sandbox import isolation_level
    from grading.sandbox.isolation import language_level

    level = isolation_level()
    if level == "none" and settings.IS_PRODUCTION:
        return {"status": "unavailable", "isolation": level}
    return {"isolation": level, "python": language_level("python")}


def health_report() -> tuple[int, dict[str, Any]]:
    checks = {
        "database": _timed(_database),
        "cache": _timed(_cache),
        "broker": _timed(_broker),
        "sandbox": _timed(_sandbox),
    }
    if checks["database"]["status"] != "ok":
        overall, status_code = "unavailable", 503
    elif any(check["status"] != "ok" for check in checks.values()):
        overall, status_code = "degraded", 200
    else:
        overall, status_code = "ok", 200
    return status_code, {"status": overall, "environment": settings.CO_ENV, "checks": checks}


class HealthCheckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    error = serializers.CharField(required=False, help_text="The failure's exception class, never its message.")
    engine = serializers.CharField(required=False, help_text="database: the database vendor.")
    backend = serializers.ChoiceField(choices=["redis", "local-memory"], required=False, help_text="cache.")
    mode = serializers.CharField(required=False, help_text="broker: `eager` (tasks run in process) or `broker`.")
    isolation = serializers.CharField(required=False, help_text="sandbox: the isolation learner code gets.")
    python = serializers.CharField(required=False, help_text="sandbox: how Python runs start.")
    latency_ms = serializers.FloatField()


class HealthReportSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "unavailable"])
    environment = serializers.CharField()
    checks = serializers.DictField(child=HealthCheckSerializer())


_EXAMPLE = {
    "status": "ok",
    "environment": "production",
    "checks": {
        "database": {"status": "ok", "engine": "postgresql", "latency_ms": 0.8},
        "cache": {"status": "ok", "backend": "redis", "latency_ms": 0.4},
        "broker": {"status": "ok", "mode": "broker", "latency_ms": 1.2},
        "sandbox": {"status": "ok", "isolation": "bubblewrap", "latency_ms": 0.0},
    },
}


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="health",
        summary="Service health (no authentication)",
        tags=["health"],
        auth=[],
        responses={200: HealthReportSerializer, 503: HealthReportSerializer},
        examples=[OpenApiExample("healthy", value=_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        status_code, report = health_report()
        return Response(HealthReportSerializer(report).data, status=status_code)
