"""Reads of sessions: a learner sees only their own (anyone else's is a 404)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from co_project.errors import Conflict, NotFound
from sessions_app.choices import SessionMode
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


# --- history for the sessions → study-tasks migration (study_paths/migration_from_sessions.py) ----


@dataclass(frozen=True)
class PresentedProblem:
    """A problem a track session presented, with what the learner did on it."""

    id: int
    problem_id: uuid.UUID
    module_id: uuid.UUID
    difficulty: int
    position: int
    state: str
    is_review: bool
    hints_used: int
    max_hint_level: int
    opened_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class TrackSessionHistory:
    id: uuid.UUID
    learner_id: str
    track_id: uuid.UUID
    status: str
    started_at: datetime
    ended_at: datetime | None
    problems: tuple[PresentedProblem, ...]


def _track_sessions(*, learner_id: str | None, since: datetime | None) -> QuerySet[Session]:
    sessions = Session.objects.filter(mode=SessionMode.TRACK)
    if learner_id is not None:
        sessions = sessions.filter(learner_id=learner_id)
    if since is not None:
        sessions = sessions.filter(started_at__gte=since)
    return sessions


def track_session_learners(*, learner_id: str | None = None, since: datetime | None = None) -> list[str]:
    """The learners with track sessions (started at or after `since`), sorted (one query)."""
    sessions = _track_sessions(learner_id=learner_id, since=since)
    return list(sessions.order_by("learner_id").values_list("learner_id", flat=True).distinct())


def track_sessions_history(*, learner_id: str, since: datetime | None = None) -> list[TrackSessionHistory]:
    """The learner's track sessions, oldest first, each with the problems it presented in order
    (two queries, whatever the history)."""
    problems = SessionProblem.objects.select_related("problem").only(
        *[f.name for f in SessionProblem._meta.concrete_fields if f.name != "problem"],
        "problem__id",
        "problem__module_id",
        "problem__difficulty",
    )
    sessions = (
        _track_sessions(learner_id=learner_id, since=since)
        .order_by("started_at", "id")
        .prefetch_related(Prefetch("problems", queryset=problems.order_by("position")))
    )
    return [
        TrackSessionHistory(
            id=session.id,
            learner_id=session.learner_id,
            track_id=session.track_id,
            status=session.status,
            started_at=session.started_at,
            ended_at=session.ended_at,
            problems=tuple(
                PresentedProblem(
                    id=row.id,
                    problem_id=row.problem_id,
                    module_id=row.problem.module_id,
                    difficulty=row.problem.difficulty,
                    position=row.position,
                    state=row.state,
                    is_review=row.is_review,
                    hints_used=row.hints_used,
                    max_hint_level=row.max_hint_level,
                    opened_at=row.opened_at,
                    finished_at=row.finished_at,
                )
                for row in session.problems.all()
            ),
        )
        for session in sessions
    ]
