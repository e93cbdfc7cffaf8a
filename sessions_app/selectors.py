"""Reads of sessions: a learner sees only their own (anyone else's is a 404)."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch

from co_project.errors import Conflict, NotFound
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


def session_problem_for_reference(*, session: Session, problem_ref: str) -> SessionProblem:
    """The session's row for the named problem (id or slug), from the problems
    `session_get_for_learner` prefetched; 409 when the problem is not the session's."""
    try:
        problem_uuid = uuid.UUID(problem_ref)
    except ValueError:
        problem_uuid = None
    for row in session.problems.all():
        if row.problem_id == problem_uuid or row.problem.slug == problem_ref:
            return row
    raise Conflict("This problem is not part of the session.", fields={"problem_id": ["Not a problem of this session."]})
