"""Tutor turns (CO-003-014): start a hint turn on a session's problem, redeem its stream token,
finish it with what the learner was shown.

A turn is started by an authenticated request and streamed by a second, token-only request (a
browser EventSource cannot send an Authorization header). The token is random, stored only as a
digest, single-use (redeemed by a conditional UPDATE, so two racing requests cannot both win),
short-lived and bound to the learner and the turn.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from co_project.errors import ApplicationError, Conflict, NotFound, ProblemRepositoryNotReady
from co_project.telemetry import telemetry_emit
from sessions_app.choices import SessionStatus
from sessions_app.selectors import session_get_for_learner, session_problem_for_reference
from sessions_app.services import session_record_hint, session_refresh
from submissions.selectors import submission_results_for_tutor
from tracks.problem_bank import DatabaseProblemBank, problem_bundle_get
from tutoring import selectors
from tutoring.context import context_prepare
from tutoring.models import TurnOutcome, TutorKind, TutorTurn
from tutoring.origins import SESSION_TURN_ORIGIN, hint_origin_get
from tutoring.tutors import LlmSettings, solution_lines

logger = logging.getLogger("co.tutoring")


class StreamTokenInvalid(ApplicationError):
    status_code = 401
    code = "stream_token_invalid"
    default_message = "The stream token is unknown, already used or expired; request a new hint turn."


class SessionNotActive(Conflict):
    code = "session_not_active"


@dataclass(frozen=True)
class TurnStarted:
    turn: TutorTurn
    token: str


def tutor_kind_configured() -> str:
    return TutorKind.LLM if settings.CO_TUTOR_BASE else TutorKind.BUILTIN


def llm_settings() -> LlmSettings:
    return LlmSettings(
        base_url=settings.CO_TUTOR_BASE or "",
        model=settings.CO_TUTOR_MODEL or "default",
        api_key=settings.CO_TUTOR_API_KEY,
        connect_timeout=settings.CO_TUTOR_CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.CO_TUTOR_READ_TIMEOUT_SECONDS,
        total_timeout=settings.CO_TUTOR_TOTAL_TIMEOUT_SECONDS,
        max_tokens=settings.CO_TUTOR_MAX_TOKENS,
    )


def tutor_turn_start(
    *,
    learner_id: str,
    session_id: uuid.UUID | str,
    problem_ref: str,
    hint_level: int,
    message: str = "",
    code: str = "",
    language: str = "",
    last_eval: dict[str, Any] | None = None,
) -> TurnStarted:
    """Validate, prepare the context, store the turn with a fresh stream token, count the hint on
    the session (which the learner model reads) and emit `hint_request`."""
    session = session_get_for_learner(learner_id=learner_id, session_id=session_id)
    session = session_refresh(session=session)
    if session.status != SessionStatus.ACTIVE:
        raise SessionNotActive(f"This session is {session.status}; hints need an active session.")
    row = session_problem_for_reference(session=session, problem_ref=problem_ref)
    bundle, context = _context_for(
        learner_id=learner_id,
        problem_id=row.problem_id,
        hint_level=hint_level,
        message=message,
        code=code,
        language=language,
        last_eval=last_eval,
    )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        turn = TutorTurn.objects.create(
            learner_id=learner_id,
            session=session,
            problem_id=row.problem_id,
            hint_level=hint_level,
            message=message,
            context=context,
            tutor=tutor_kind_configured(),
            token_digest=selectors.stream_token_digest(token),
            token_expires_at=timezone.now() + timedelta(seconds=settings.CO_TUTOR_STREAM_TOKEN_SECONDS),
        )
        session_record_hint(learner_id=learner_id, session_id=session.id, problem_id=row.problem_id, level=hint_level)
        telemetry_emit(
            event="hint_request",
            user_id=learner_id,
            session_id=session.id,
            problem_id=bundle.slug,
            attrs={"level": hint_level, "turn_id": str(turn.id), "tutor": turn.tutor},
        )
    return TurnStarted(turn=turn, token=token)


def _context_for(
    *,
    learner_id: str,
    problem_id: uuid.UUID,
    hint_level: int,
    message: str,
    code: str,
    language: str,
    last_eval: dict[str, Any] | None,
) -> tuple[Any, dict[str, Any]]:
    """(the problem's bundle, the allow-listed context the tutor gets): one preparation for every front door."""
    bundle = problem_bundle_get(reference=str(problem_id))
    if bundle is None:
        raise ProblemRepositoryNotReady(fields={"problem_id": ["The problem bank no longer has this problem."]})
    context = context_prepare(
        bundle=bundle,
        hint_level=hint_level,
        message=message,
        code=code,
        language=language,
        last_eval=last_eval,
        past_results=submission_results_for_tutor(learner_id=learner_id, problem_id=problem_id),
        mastery=selectors.mastery_for_problem(
            learner_id=learner_id, topics=bundle.topics, outcomes=(bundle.module or {}).get("outcomes") or []
        ),
    )
    return bundle, context


def tutor_turn_start_for(
    *,
    learner_id: str,
    origin: str,
    origin_id: uuid.UUID | str,
    hint_level: int,
    message: str = "",
    code: str = "",
    language: str = "",
    last_eval: dict[str, Any] | None = None,
) -> TurnStarted:
    """A hint turn asked through another front door (a study task): the front door names the
    problem and counts the hint; the context, the stream token, the stream and the limits are the
    session's own."""
    front_door = hint_origin_get(origin)
    problem_id = front_door.hint_problem(learner_id=learner_id, origin_id=origin_id)
    bundle, context = _context_for(
        learner_id=learner_id,
        problem_id=problem_id,
        hint_level=hint_level,
        message=message,
        code=code,
        language=language,
        last_eval=last_eval,
    )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        turn = TutorTurn.objects.create(
            learner_id=learner_id,
            origin=origin,
            origin_id=uuid.UUID(str(origin_id)),
            problem_id=problem_id,
            hint_level=hint_level,
            message=message,
            context=context,
            tutor=tutor_kind_configured(),
            token_digest=selectors.stream_token_digest(token),
            token_expires_at=timezone.now() + timedelta(seconds=settings.CO_TUTOR_STREAM_TOKEN_SECONDS),
        )
        front_door.record_hint(
            learner_id=learner_id, origin_id=turn.origin_id, turn_id=turn.id, hint_level=hint_level, at=turn.created_at
        )
        telemetry_emit(
            event="hint_request",
            user_id=learner_id,
            problem_id=bundle.slug,
            attrs={"level": hint_level, "turn_id": str(turn.id), "tutor": turn.tutor, "origin": origin},
        )
    return TurnStarted(turn=turn, token=token)


def tutor_stream_check(*, token: str, learner_id: str | None = None) -> TutorTurn:
    """The turn a usable (unknown → 401, used → 401, expired → 401) token opens. When the caller
    also authenticated (a client that can send headers), the turn must be theirs (404 otherwise)."""
    turn = selectors.turn_get_by_stream_token(token=token)
    if turn is None or turn.stream_opened_at is not None or turn.token_expires_at <= timezone.now():
        raise StreamTokenInvalid()
    if learner_id is not None and learner_id != turn.learner_id:
        raise NotFound("No such tutor stream.")
    return turn


def tutor_stream_claim(*, turn_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Redeem the token: exactly one request wins, and only before the token expires."""
    now = now or timezone.now()
    return bool(
        TutorTurn.objects.filter(id=turn_id, stream_opened_at__isnull=True, token_expires_at__gt=now).update(stream_opened_at=now)
    )


def tutor_turn_open(*, turn: TutorTurn) -> list[str]:
    """For a redeemed token: the lines the tutors' output must never contain (read for the
    stream only; never stored, logged or put in a context). A turn that cannot be answered is
    finished as `error` at once."""
    bundle = DatabaseProblemBank().get(str(turn.problem_id), include_retired=True)
    if bundle is None:
        tutor_turn_finish(turn_id=turn.id, outcome=TurnOutcome.ERROR, tutor=turn.tutor, content="", error_reason="problem gone")
        raise ProblemRepositoryNotReady()
    return solution_lines(bundle)


def tutor_turn_finish(*, turn_id: uuid.UUID, outcome: str, tutor: str, content: str, error_reason: str = "") -> bool:
    """Record how the stream ended; once (a finished turn is never rewritten). A front door other
    than a session is handed what the learner was shown, in the same transaction."""
    now = timezone.now()
    with transaction.atomic():
        updated = TutorTurn.objects.filter(id=turn_id, outcome=TurnOutcome.PENDING).update(
            outcome=outcome, tutor=tutor, content=content, error_reason=error_reason[:300], finished_at=now
        )
        if updated:
            _hint_shown(turn_id=turn_id, outcome=outcome, content=content, at=now)
    logger.info("tutor turn finished", extra={"turn_id": str(turn_id), "outcome": outcome, "tutor": tutor})
    return bool(updated)


def _hint_shown(*, turn_id: uuid.UUID, outcome: str, content: str, at: datetime) -> None:
    turn = TutorTurn.objects.exclude(origin=SESSION_TURN_ORIGIN).filter(id=turn_id).values("origin", "origin_id", "hint_level")
    found = turn.first()
    if found is None:
        return
    try:
        with transaction.atomic():
            hint_origin_get(found["origin"]).record_hint_shown(
                origin_id=found["origin_id"],
                turn_id=uuid.UUID(str(turn_id)),
                hint_level=found["hint_level"],
                outcome=outcome,
                content=content,
                at=at,
            )
    except Exception:  # the turn's end is recorded whatever the front door makes of it
        logger.exception("front door could not record a tutor turn", extra={"turn_id": str(turn_id)})
