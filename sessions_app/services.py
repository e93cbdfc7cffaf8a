"""Session engine: start practice / track / mock sessions, advance / retry / give up, end mocks
at their deadline with a report, and keep each presented problem's attempts and hints.

State rules (an action that does not fit the state is a 409):

* only an `active` session accepts actions and submissions;
* `advance` ends the current problem (`skipped` unless it was passed or given up) and presents
  the next one — practice sessions complete, track sessions ask the recommender for the next
  problem of the track (practice and reviews included) until every topic of the track is mastered,
  then complete with a report saying so; mocks move to the next planned problem;
* `retry` reopens the current problem (after a give-up too);
* `giveup` records a miss in the learner model; a practice session is then abandoned, a track or
  mock session stays active so the learner can advance.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from itertools import takewhile
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from co_project.errors import Conflict, InvalidInput, NotFound
from co_project.prepared import Param, PreparedRead, PreparedUpdate
from co_project.telemetry import telemetry_emit
from personalization import services as learner_model
from personalization.recommendation import (
    MAX_IN_A_ROW,
    CatalogueEntry,
    catalogue_load,
    learner_snapshot,
    recommend,
    recommend_track,
)
from sessions_app.models import Session, SessionMode, SessionProblem, SessionProblemState, SessionStatus
from tracks.selectors import problem_published_get, problem_slugs, track_published_get

logger = logging.getLogger("co.sessions")


class SessionNotActive(Conflict):
    code = "session_not_active"


class MockFinished(Conflict):
    code = "mock_finished"
    default_message = "This mock interview is over: its time box has ended."


class NothingToPractise(Conflict):
    code = "nothing_to_practise"


# --- lookups -------------------------------------------------------------------------------------


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _locked_session(*, learner_id: str, session_id: uuid.UUID | str) -> Session:
    session_uuid = _uuid_or_none(str(session_id))
    session = Session.objects.select_for_update().filter(id=session_uuid, learner_id=learner_id).first() if session_uuid else None
    if session is None:
        raise NotFound("No such session.")
    return session


# --- presenting problems ---------------------------------------------------------------------------


def _present(session: Session, problem_id: uuid.UUID, *, now: datetime, recommendation: dict[str, Any] | None) -> None:
    """Make a problem the session's current one and emit `problem_open`."""
    position = session.problems.count()
    SessionProblem.objects.create(
        session=session,
        problem_id=problem_id,
        position=position,
        is_review=bool(recommendation and recommendation.get("kind") == "review"),
        recommendation=recommendation or {},
        opened_at=now,
    )
    session.current_problem_id = problem_id
    session.last_hint_level = 0
    slug = problem_slugs(problem_ids=[problem_id]).get(problem_id, "")
    telemetry_emit(
        event="problem_open",
        user_id=session.learner_id,
        session_id=session.id,
        problem_id=slug,
        attrs={"mode": session.mode, "position": position, "kind": (recommendation or {}).get("kind", "chosen")},
        ts=now,
    )


def _recommendation_payload(recommendation: Any) -> dict[str, Any]:
    data = recommendation.as_dict()
    return {key: data[key] for key in ("kind", "score", "terms", "reasons", "guardrails")}


def _next_track_problem(session: Session, *, now: datetime) -> tuple[CatalogueEntry, dict[str, Any]] | None:
    """The recommender's pick for the track; None once every topic of the track is mastered.

    Solved problems come back as practice while one of their topics is not mastered, and failed
    ones come back too (the recommender keeps the previous problem from coming straight back)."""
    catalogue = catalogue_load(track_id=session.track_id)
    snapshot = learner_snapshot(learner_id=session.learner_id)
    last = list(session.problems.order_by("-position").values_list("problem_id", flat=True)[:MAX_IN_A_ROW])
    previous = next((entry for entry in catalogue if last and entry.id == last[0]), None)
    in_a_row = sum(1 for _ in takewhile(lambda problem_id: problem_id == last[0], last))
    pick = recommend_track(catalogue=catalogue, snapshot=snapshot, now=now, previous=previous, in_a_row=in_a_row)
    return (pick.problem, _recommendation_payload(pick)) if pick is not None else None


def _emit_recommendation(session: Session, entry: CatalogueEntry, payload: dict[str, Any], now: datetime) -> None:
    telemetry_emit(
        event="recommendation_served",
        user_id=session.learner_id,
        session_id=session.id,
        problem_id=entry.slug,
        attrs={"kind": payload["kind"], "score": payload["score"], "mode": session.mode},
        ts=now,
    )


def _pick_for_subject(session: Session, *, now: datetime, exclude: set[uuid.UUID]) -> tuple[CatalogueEntry, dict] | None:
    catalogue = catalogue_load(track_id=session.track_id, subject=session.subject)
    pick = recommend(
        catalogue=catalogue,
        snapshot=learner_snapshot(learner_id=session.learner_id),
        now=now,
        exclude=exclude,
        inject_reviews=session.mode != SessionMode.MOCK,
    )
    return (pick.problem, _recommendation_payload(pick)) if pick else None


# --- create ----------------------------------------------------------------------------------------


def session_create(
    *,
    learner_id: str,
    subject: str,
    mode: str = SessionMode.PRACTICE,
    track_ref: str | None = None,
    problem_ref: str | None = None,
    duration_minutes: int | None = None,
    problem_count: int | None = None,
) -> Session:
    """Start a session and present its first problem (chosen, or recommended)."""
    track = track_published_get(reference=track_ref) if track_ref else None
    if track is not None and track.subject != subject:
        raise InvalidInput(
            f"Track '{track.slug}' is a {track.subject} track, not {subject}.",
            fields={"subject": [f"Must be '{track.subject}' for this track."]},
        )
    if mode == SessionMode.TRACK and track is None:
        raise InvalidInput("A track session needs a track.", fields={"track_id": ["Required for mode 'track'."]})
    problem = problem_published_get(reference=problem_ref) if problem_ref else None
    if problem is not None:
        if problem.subject != subject:
            raise InvalidInput(
                f"Problem '{problem.slug}' is a {problem.subject} problem, not {subject}.",
                fields={"problem_id": [f"Not a {subject} problem."]},
            )
        if track is not None and problem.module.track_id != track.id:
            raise InvalidInput(
                f"Problem '{problem.slug}' is not part of track '{track.slug}'.", fields={"problem_id": ["Not in this track."]}
            )
    if mode != SessionMode.MOCK and (duration_minutes is not None or problem_count is not None):
        raise InvalidInput(
            "Only mock sessions take a duration and a problem count.",
            fields={"duration_minutes" if duration_minutes is not None else "problem_count": ["Only for mode 'mock'."]},
        )

    now = timezone.now()
    with transaction.atomic():
        session = Session(learner_id=learner_id, subject=subject, mode=mode, track=track)
        if mode == SessionMode.MOCK:
            session.duration_minutes = duration_minutes or settings.CO_MOCK_DEFAULT_MINUTES
            session.problem_count = problem_count or settings.CO_MOCK_DEFAULT_PROBLEMS
            session.deadline_at = now + timedelta(minutes=session.duration_minutes)
        session.save()
        if mode == SessionMode.MOCK:
            _plan_mock(session, first=problem, now=now)
        elif problem is not None:
            _present(session, problem.id, now=now, recommendation=None)
        else:
            pick = (
                _next_track_problem(session, now=now)
                if mode == SessionMode.TRACK
                else _pick_for_subject(session, now=now, exclude=set())
            )
            if pick is None and mode == SessionMode.TRACK and catalogue_load(track_id=session.track_id):
                raise learner_model.TrackMastered(learner_model.track_mastered_message(track_ref=track.slug))
            if pick is None:
                raise NothingToPractise("There is no published problem to practise here yet.")
            _present(session, pick[0].id, now=now, recommendation=pick[1])
            _emit_recommendation(session, pick[0], pick[1], now)
        session.save(update_fields=["current_problem", "last_hint_level", "updated_at"])
    return session


def _plan_mock(session: Session, *, first: Any | None, now: datetime) -> None:
    """Choose the mock's problems up front (the interviewer's plan); the first one is open."""
    chosen: list[tuple[uuid.UUID, dict[str, Any] | None]] = []
    if first is not None:
        chosen.append((first.id, None))
    while len(chosen) < (session.problem_count or 1):
        pick = _pick_for_subject(session, now=now, exclude={problem_id for problem_id, _ in chosen})
        if pick is None:
            break
        chosen.append((pick[0].id, pick[1]))
    if not chosen:
        raise NothingToPractise("There is no published problem for a mock interview here yet.")
    for position, (problem_id, recommendation) in enumerate(chosen):
        SessionProblem.objects.create(
            session=session,
            problem_id=problem_id,
            position=position,
            recommendation=recommendation or {},
            opened_at=now,
        )
    session.problem_count = len(chosen)
    session.current_problem_id = chosen[0][0]
    session.save(update_fields=["problem_count", "current_problem", "updated_at"])
    slugs = problem_slugs(problem_ids=[pid for pid, _ in chosen])
    for position, (problem_id, _) in enumerate(chosen):
        telemetry_emit(
            event="problem_open",
            user_id=session.learner_id,
            session_id=session.id,
            problem_id=slugs.get(problem_id, ""),
            attrs={"mode": session.mode, "position": position, "kind": "mock-plan"},
            ts=now,
        )


# --- actions ---------------------------------------------------------------------------------------


def _current(session: Session) -> SessionProblem | None:
    if session.current_problem_id is None:
        return None
    return session.problems.select_for_update().filter(problem_id=session.current_problem_id).order_by("-position").first()


def _end(session: Session, status: str, now: datetime) -> None:
    session.status = status
    session.ended_at = now
    session.save(update_fields=["status", "ended_at", "current_problem", "last_hint_level", "updated_at"])


def session_act(*, learner_id: str, session_id: uuid.UUID | str, action: str) -> Session:
    """Apply advance / retry / giveup; 409 when the session's state does not allow it."""
    now = timezone.now()
    expired = False
    with transaction.atomic():
        session = _locked_session(learner_id=learner_id, session_id=session_id)
        if session.mode == SessionMode.MOCK and session.status == SessionStatus.ACTIVE and now >= session.deadline_at:
            _finish_mock(session, now=session.deadline_at)  # committed before the 409 below
            expired = True
    if expired:
        raise MockFinished()
    with transaction.atomic():
        session = _locked_session(learner_id=learner_id, session_id=session_id)
        if session.status != SessionStatus.ACTIVE:
            raise SessionNotActive(f"This session is {session.status}; '{action}' needs an active session.")
        current = _current(session)
        if action == "advance":
            _advance(session, current, now=now)
        elif action == "retry":
            if current is None:
                raise SessionNotActive("There is no current problem to retry.")
            if current.state == SessionProblemState.PASSED:
                raise Conflict("The current problem is already solved; advance instead.")
            current.state = SessionProblemState.OPEN
            current.retries = F("retries") + 1
            current.finished_at = None
            current.save(update_fields=["state", "retries", "finished_at"])
        elif action == "giveup":
            if current is None:
                raise SessionNotActive("There is no current problem to give up.")
            if current.state != SessionProblemState.OPEN:
                raise Conflict(f"The current problem is {current.get_state_display().lower()}; only an open one can be given up.")
            current.state = SessionProblemState.GIVEN_UP
            current.finished_at = now
            current.save(update_fields=["state", "finished_at"])
            learner_model.attempt_record(
                attempt=learner_model.GradedAttempt(
                    learner_id=learner_id,
                    problem_id=current.problem_id,
                    passed=False,
                    gave_up=True,
                    max_hint_level=current.max_hint_level,
                    seconds_taken=(now - current.opened_at).total_seconds(),
                    at=now,
                )
            )
            if session.mode == SessionMode.PRACTICE:
                _end(session, SessionStatus.ABANDONED, now)
        else:  # the serializer only lets the three actions through
            raise InvalidInput(f"Unknown action '{action}'.", fields={"action": ["Use advance, retry or giveup."]})
        session.save(update_fields=["updated_at"])
    return session


def _advance(session: Session, current: SessionProblem | None, *, now: datetime) -> None:
    if current is not None and current.state == SessionProblemState.OPEN:
        current.state = SessionProblemState.SKIPPED
        current.finished_at = now
        current.save(update_fields=["state", "finished_at"])
    if session.mode == SessionMode.PRACTICE:
        _end(session, SessionStatus.COMPLETED, now)
        return
    if session.mode == SessionMode.MOCK:
        following = session.problems.filter(position__gt=current.position if current else -1).order_by("position").first()
        if following is None:
            _finish_mock(session, now=now)
            return
        session.current_problem_id = following.problem_id
        session.last_hint_level = following.max_hint_level
        session.save(update_fields=["current_problem", "last_hint_level", "updated_at"])
        return
    pick = _next_track_problem(session, now=now)
    if pick is None:
        session.current_problem_id = None
        session.report = {
            "finished_at": now.isoformat(),
            "ended_by": "track_mastered",
            "message": learner_model.track_mastered_message(track_ref=session.track.slug),
        }
        session.save(update_fields=["report"])
        _end(session, SessionStatus.COMPLETED, now)
        return
    _present(session, pick[0].id, now=now, recommendation=pick[1])
    _emit_recommendation(session, pick[0], pick[1], now)
    session.save(update_fields=["current_problem", "last_hint_level", "updated_at"])


# --- mock interviews -------------------------------------------------------------------------------


def _finish_mock(session: Session, *, now: datetime) -> None:
    """End a mock: write its report, queue its gaps for review, emit `mock_finish`. Runs once:
    the caller holds the session's row lock and the status moves off `active` here."""
    from submissions.selectors import submission_last_graded_by_problem

    rows = list(session.problems.select_related("problem").order_by("position"))
    last = submission_last_graded_by_problem(session_id=session.id)
    report_problems = []
    for row in rows:
        submission = last.get(row.problem_id)
        if row.state == SessionProblemState.PASSED:
            result = "passed"
        elif submission is not None:
            result = submission["status"]
        else:
            result = "not_attempted"
        end = row.finished_at or (submission["finished_at"] if submission else None) or now
        gaps = [] if result == "passed" else (list(row.last_categories) or [result.replace("_", " ")])
        report_problems.append(
            {
                "problem_id": str(row.problem_id),
                "slug": row.problem.slug,
                "title": row.problem.title,
                "difficulty": row.problem.difficulty,
                "result": result,
                "attempts": row.attempts,
                "time_used_seconds": max(0, round((min(end, now) - row.opened_at).total_seconds())) if row.attempts else 0,
                "hints_used": row.hints_used,
                "max_hint_level": row.max_hint_level,
                "gaps": gaps,
            }
        )
        if result != "passed":
            learner_model.review_record_mock_gap(learner_id=session.learner_id, problem_id=row.problem_id, at=now)
    solved = sum(1 for p in report_problems if p["result"] == "passed")
    session.report = {
        "finished_at": now.isoformat(),
        "ended_by": "deadline" if session.deadline_at and now >= session.deadline_at else "learner",
        "duration_minutes": session.duration_minutes,
        "time_used_seconds": round((now - session.started_at).total_seconds()),
        "solved": solved,
        "total": len(report_problems),
        "problems": report_problems,
    }
    session.status = SessionStatus.COMPLETED
    session.ended_at = now
    session.save(update_fields=["report", "status", "ended_at", "updated_at"])
    telemetry_emit(
        event="mock_finish",
        user_id=session.learner_id,
        session_id=session.id,
        attrs={
            "solved": solved,
            "total": len(report_problems),
            "ended_by": session.report["ended_by"],
            "gaps": {p["slug"]: p["gaps"] for p in report_problems if p["gaps"]},
        },
        ts=now,
    )


def session_finish_expired_mocks(*, now: datetime | None = None) -> int:
    """End every active mock past its deadline (Celery beat; no request needed). Returns how many."""
    now = now or timezone.now()
    finished = 0
    expired = Session.objects.filter(mode=SessionMode.MOCK, status=SessionStatus.ACTIVE, deadline_at__lte=now)
    for session_id in expired.values_list("id", flat=True)[:500]:
        with transaction.atomic():
            session = Session.objects.select_for_update().filter(id=session_id, status=SessionStatus.ACTIVE).first()
            if session is None:
                continue
            _finish_mock(session, now=session.deadline_at)
            finished += 1
    if finished:
        logger.info("expired mock interviews finished", extra={"count": finished})
    return finished


def session_refresh(*, session: Session) -> Session:
    """A read that finds a mock past its deadline ends it first, so no one sees it active."""
    if session.mode == SessionMode.MOCK and session.status == SessionStatus.ACTIVE and timezone.now() >= session.deadline_at:
        with transaction.atomic():
            locked = Session.objects.select_for_update().get(id=session.id)
            if locked.status == SessionStatus.ACTIVE:
                _finish_mock(locked, now=locked.deadline_at)
        session.refresh_from_db()
    return session


# --- hooks for submissions and the tutor -------------------------------------------------------------


# Only what the check reads (not the mock report); this runs on every submission.
_session_for_submission = PreparedRead(
    Session,
    lambda _: Session.objects.filter(
        id=Param("session_id", Session._meta.pk), learner_id=Param("learner_id", Session._meta.get_field("learner_id"))
    ).only("id", "mode", "status", "deadline_at", "current_problem_id")[:1],
)


def session_check_for_submission(*, learner_id: str, session_id: uuid.UUID, problem_id: uuid.UUID | None) -> Session:
    """A submission must name the caller's active session and one of its problems."""
    session = _session_for_submission.instance(session_id=session_id, learner_id=learner_id)
    if session is None:
        raise NotFound("No such session.", fields={"session_id": ["No such session."]})
    if session.mode == SessionMode.MOCK and session.status == SessionStatus.ACTIVE and timezone.now() >= session.deadline_at:
        session_refresh(session=session)
        raise MockFinished()
    if session.status != SessionStatus.ACTIVE:
        if session.mode == SessionMode.MOCK:
            raise MockFinished("This mock interview is over; start a new one to keep practising.")
        raise SessionNotActive(f"This session is {session.status}; submissions need an active session.")
    allowed = (
        set(session.problems.values_list("problem_id", flat=True))
        if session.mode == SessionMode.MOCK
        else {session.current_problem_id}
    )
    if problem_id is None or problem_id not in allowed:
        raise Conflict(
            "This problem is not the session's current problem.", fields={"problem_id": ["Not a problem of this session."]}
        )
    return session


# A submission's problem in its session: the live (latest) row, locked; only the columns the
# update and the learner model need.
_live_session_problem = PreparedRead(
    SessionProblem,
    lambda _: (
        SessionProblem.objects.select_for_update()
        .filter(
            session_id=Param("session_id", SessionProblem._meta.get_field("session").target_field),
            problem_id=Param("problem_id", SessionProblem._meta.get_field("problem").target_field),
        )
        .order_by("-position")
        .values_list("pk", "state", "max_hint_level", "opened_at")[:1]
    ),
)


def _attempt_counted(shape: tuple[bool, bool]) -> tuple[Any, dict[str, Any]]:
    """The UPDATE for (graded, passes now): a run is counted; a graded attempt is counted with
    its status and categories, and a first pass also finishes the problem."""
    graded, passes = shape
    field = SessionProblem._meta.get_field
    changes: dict[str, Any] = {"runs": F("runs") + 1}
    if graded:
        changes = {
            "attempts": F("attempts") + 1,
            "last_status": Param("last_status", field("last_status")),
            "last_categories": Param("last_categories", field("last_categories")),
        }
    if passes:
        changes |= {"state": SessionProblemState.PASSED, "finished_at": Param("finished_at", field("finished_at"))}
    return SessionProblem.objects.filter(pk=Param("pk", SessionProblem._meta.pk)), changes


_count_attempt = PreparedUpdate(SessionProblem, _attempt_counted)


def session_record_attempt(
    *, session_id: uuid.UUID, problem_id: uuid.UUID, graded: bool, status: str, categories: list[str], at: datetime
) -> dict[str, Any]:
    """Count a finished attempt on the session's problem; returns the hints used and the time taken
    so far, which the learner model weighs. Called inside the verdict's transaction."""
    row = _live_session_problem.first(session_id=session_id, problem_id=problem_id)
    if row is None:
        return {"max_hint_level": 0, "seconds_taken": None}
    pk, state, max_hint_level, opened_at = row
    passes = graded and status == "passed" and state != SessionProblemState.PASSED
    _count_attempt.run((graded, passes), pk=pk, last_status=status, last_categories=categories, finished_at=at)
    return {"max_hint_level": max_hint_level, "seconds_taken": max(0.0, (at - opened_at).total_seconds())}


def session_record_hint(*, learner_id: str, session_id: uuid.UUID | str, problem_id: uuid.UUID, level: int) -> Session:
    """A hint was requested on a session's problem: count it and raise `last_hint_level`."""
    with transaction.atomic():
        session = _locked_session(learner_id=learner_id, session_id=session_id)
        row = session.problems.select_for_update().filter(problem_id=problem_id).order_by("-position").first()
        if row is None:
            raise Conflict("This problem is not part of the session.", fields={"problem_id": ["Not in this session."]})
        row.hints_used += 1
        row.max_hint_level = max(row.max_hint_level, level)
        row.save(update_fields=["hints_used", "max_hint_level"])
        session.last_hint_level = level
        session.save(update_fields=["last_hint_level", "updated_at"])
    return session
