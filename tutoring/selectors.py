"""Reads for the tutor: a turn by its stream token and the learner's mastery (past results come
from `submissions.selectors.submission_results_for_tutor`). Every read returns plain values picked
field by field (an allow-list), so nothing hidden can ride along into a prompt, an event or a log."""

from __future__ import annotations

import hashlib
from typing import Any

from personalization.selectors import mastery_of_topics_and_outcomes
from tutoring.models import TutorTurn


def stream_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def turn_get_by_stream_token(*, token: str) -> TutorTurn | None:
    """The turn a stream token was issued for (used or not); None for an unknown token."""
    if not token or len(token) > 200:
        return None
    return TutorTurn.objects.select_related("problem").filter(token_digest=stream_token_digest(token)).first()


def mastery_for_problem(*, learner_id: str, topics: list[str], outcomes: list[str]) -> list[dict[str, Any]]:
    """The learner's mastery of the problem's topics and its module's outcomes (0–100)."""
    rows = mastery_of_topics_and_outcomes(learner_id=learner_id, topics=topics, outcomes=outcomes)
    return [{"kind": row.key_type, "key": row.key_id, "score": row.score, "attempts": row.attempts} for row in rows]
