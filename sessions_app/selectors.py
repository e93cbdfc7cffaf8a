"""Reads of sessions: a learner sees only their own (anyone else's is a 404)."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch

from co_project.errors import NotFound
from sessions_app.models import Session, SessionProblem


def session_get_for_learner(*, learner_id: str, session_id: str | uuid.UUID) -> Session:
    """The session with its problems: two queries whatever its length."""
    try:
        key = uuid.UUID(str(session_id))
    except ValueError:
        raise NotFound("No such session.") from None
    session = (
        Session.objects.filter(id=key, learner_id=learner_id)
        .select_related("track", "current_problem")
        .prefetch_related(
            Prefetch(
                "problems",
                queryset=SessionProblem.objects.select_related("problem").only(
                    *[f.name for f in SessionProblem._meta.concrete_fields if f.name != "problem"],
                    "problem__id",
                    "problem__slug",
                    "problem__title",
                    "problem__difficulty",
                ),
            )
        )
        .first()
    )
    if session is None:
        raise NotFound("No such session.")
    return session
