"""Emit learner telemetry: stored append-only and written to the structured log.

Call it inside the transaction that makes the event true (e.g. the verdict's), so an event is
recorded exactly when — and exactly as often as — the thing it reports happened.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone

from co_project.models import TelemetryEvent

logger = logging.getLogger("co.telemetry")


def telemetry_emit(
    *,
    event: str,
    user_id: str,
    session_id: uuid.UUID | str | None = None,
    problem_id: str = "",
    attrs: dict[str, Any] | None = None,
    ts: datetime | None = None,
) -> TelemetryEvent:
    record = TelemetryEvent.objects.create(
        event=event,
        user_id=user_id,
        session_id=session_id,
        problem_id=problem_id,
        ts=ts or timezone.now(),
        attrs=attrs or {},
    )
    logger.info(
        "telemetry",
        extra={
            "event": event,
            "user_id": user_id,
            "session_id": str(session_id) if session_id else None,
            "problem_id": problem_id,
            "event_ts": record.ts.isoformat(),
            "attrs": record.attrs,
        },
    )
    return record
