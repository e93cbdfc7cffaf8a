"""Reads for the tutor: a turn by its stream token, the learner's past results on a problem and
their mastery. Every read returns plain values picked field by field (an allow-list), so nothing
hidden can ride along into a prompt, an event or a log line."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.db.models import Q

from personalization.models import MasteryKeyType
from personalization.selectors import mastery_list
from submissions.models import FINAL_STATUSES, Submission
from tutoring.models import TutorTurn

PAST_RESULTS_LIMIT = 5
FAILING_DETAILS_LIMIT = 3
DETAIL_VALUE_CHARS = 400
# What a visible test's detail may carry into the tutor's context (all of it visible to the learner).
VISIBLE_DETAIL_FIELDS = ("index", "input", "expected", "actual", "outcome", "error")


def stream_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def turn_get_by_stream_token(*, token: str) -> TutorTurn | None:
    """The turn a stream token was issued for (used or not); None for an unknown token."""
    if not token or len(token) > 200:
        return None
    return TutorTurn.objects.select_related("problem").filter(token_digest=stream_token_digest(token)).first()


def _short(value: Any) -> Any:
    """A visible value, bounded: long values become a truncated JSON text."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= DETAIL_VALUE_CHARS:
        return value
    return text[:DETAIL_VALUE_CHARS] + "…"


def visible_failures(details: Any) -> list[dict[str, Any]]:
    """The first failing visible tests, with only the fields a learner already sees."""
    if not isinstance(details, list):
        return []
    failing = [d for d in details if isinstance(d, dict) and d.get("outcome") not in (None, "passed")]
    return [
        {key: _short(detail[key]) for key in VISIBLE_DETAIL_FIELDS if detail.get(key) is not None}
        for detail in failing[:FAILING_DETAILS_LIMIT]
    ]


def problem_results_for_learner(*, learner_id: str, problem_id: uuid.UUID) -> list[dict[str, Any]]:
    """The learner's latest finished runs and submissions of a problem, newest first: visible
    details, hidden counts and failed hidden categories only (never a hidden input or output)."""
    rows = (
        Submission.objects.filter(learner_id=learner_id, problem_id=problem_id, status__in=FINAL_STATUSES)
        .order_by("-created_at")
        .only(
            "kind",
            "status",
            "language",
            "visible_passed",
            "visible_total",
            "visible_details",
            "hidden_passed",
            "hidden_total",
            "failed_categories",
            "error_reason",
            "created_at",
        )[:PAST_RESULTS_LIMIT]
    )
    return [
        {
            "kind": row.kind,
            "status": row.status,
            "language": row.language,
            "visible": {
                "passed": row.visible_passed,
                "total": row.visible_total,
                "failing": visible_failures(row.visible_details),
            },
            "hidden": {
                "passed": row.hidden_passed,
                "total": row.hidden_total,
                "failed_categories": [str(c) for c in row.failed_categories or []],
            },
            "error": row.error_reason[:200],
            "at": row.created_at.isoformat(),
        }
        for row in rows
    ]


def mastery_for_problem(*, learner_id: str, topics: list[str], outcomes: list[str]) -> list[dict[str, Any]]:
    """The learner's mastery of the problem's topics and its module's outcomes (0–100)."""
    rows = mastery_list(learner_id=learner_id).filter(
        Q(key_type=MasteryKeyType.TOPIC, key_id__in=topics)
        | Q(key_type=MasteryKeyType.OUTCOME, key_id__in=[str(o)[:100] for o in outcomes])
    )
    return [{"kind": row.key_type, "key": row.key_id, "score": row.score, "attempts": row.attempts} for row in rows]
