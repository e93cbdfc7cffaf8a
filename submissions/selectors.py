"""Reads of submissions: a learner sees only their own."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q

from co_project.errors import NotFound
from submissions.models import FINAL_STATUSES, ProblemResultStatus, Submission, SubmissionKind, SubmissionStatus
from tracks.selectors import TrackProblemEntry, track_problems


def submission_get_for_learner(*, learner_id: str, submission_id: str) -> Submission:
    try:
        key = uuid.UUID(submission_id)
    except ValueError:
        raise NotFound("No such submission.") from None
    submission = Submission.objects.filter(id=key, learner_id=learner_id).first()
    if submission is None:
        raise NotFound("No such submission.")
    return submission


def submission_last_graded_by_problem(*, session_id: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    """The latest graded verdict of each problem in a session: {problem id: {status, categories, finished_at}}."""
    latest: dict[uuid.UUID, dict[str, Any]] = {}
    rows = (
        Submission.objects.filter(session_id=session_id, kind=SubmissionKind.SUBMIT, status__in=FINAL_STATUSES)
        .order_by("finished_at")
        .values_list("problem_id", "status", "failed_categories", "finished_at")
    )
    for problem_id, status, categories, finished_at in rows:
        latest[problem_id] = {"status": status, "categories": categories, "finished_at": finished_at}
    return latest


PAST_RESULTS_LIMIT = 5
FAILING_DETAILS_LIMIT = 3
DETAIL_VALUE_CHARS = 400
# What a visible test's detail may carry into the tutor's context (all of it visible to the learner).
VISIBLE_DETAIL_FIELDS = ("index", "input", "expected", "actual", "outcome", "error")


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


def submission_results_for_tutor(*, learner_id: str, problem_id: uuid.UUID) -> list[dict[str, Any]]:
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


@dataclass(frozen=True)
class SessionAttempt:
    """A finished, submitted (not run) answer in a session, as a study task's evaluation records it."""

    id: uuid.UUID
    session_id: uuid.UUID
    problem_id: uuid.UUID | None
    status: str
    graded: bool  # passed, failed or timed out; an `error` is ours and grades nothing
    language: str
    created_at: datetime
    finished_at: datetime
    exec_ms: int
    peak_memory_kb: int
    visible_passed: int
    visible_total: int
    hidden_passed: int
    hidden_total: int
    failed_categories: tuple[str, ...]
    visible_outcomes: tuple[str, ...]


LEARNER_GRADED = frozenset({SubmissionStatus.PASSED, SubmissionStatus.FAILED, SubmissionStatus.TIMEOUT})


def session_attempts(*, session_ids: list[uuid.UUID]) -> list[SessionAttempt]:
    """The sessions' submitted answers that have a verdict, oldest first (one query). Only
    counts, categories and visible-test outcomes: nothing of a hidden test."""
    rows = (
        Submission.objects.filter(
            session_id__in=session_ids, kind=SubmissionKind.SUBMIT, status__in=FINAL_STATUSES, finished_at__isnull=False
        )
        .order_by("created_at", "id")
        .values_list(
            "id", "session_id", "problem_id", "status", "language", "created_at", "finished_at", "exec_ms", "peak_memory_kb",
            "visible_passed", "visible_total", "hidden_passed", "hidden_total", "failed_categories", "visible_details",
        )
    )  # fmt: skip
    return [
        SessionAttempt(
            id=row[0],
            session_id=row[1],
            problem_id=row[2],
            status=row[3],
            graded=row[3] in LEARNER_GRADED,
            language=row[4],
            created_at=row[5],
            finished_at=row[6],
            exec_ms=row[7],
            peak_memory_kb=row[8],
            visible_passed=row[9],
            visible_total=row[10],
            hidden_passed=row[11],
            hidden_total=row[12],
            failed_categories=tuple(row[13] or ()),
            visible_outcomes=tuple(str(d.get("outcome", "")) for d in row[14] or () if isinstance(d, dict)),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ProblemResult:
    """A learner's graded submits of one problem, summed up: counts and verdicts, nothing of a
    hidden test."""

    problem_id: uuid.UUID
    slug: str
    module: str
    status: ProblemResultStatus
    attempts: int  # graded submits: passed, failed or timed out
    best_verdict: str | None
    last_verdict: str | None
    last_submitted_at: datetime | None


@dataclass(frozen=True)
class TrackResults:
    track_id: uuid.UUID
    track_slug: str
    track_title: str
    problems: tuple[ProblemResult, ...]

    @property
    def totals(self) -> dict[str, int]:
        counts = {status.value: 0 for status in ProblemResultStatus}
        for problem in self.problems:
            counts[problem.status] += 1
        return {"total": len(self.problems), **counts}


# Best first: a timeout is a miss like a wrong answer, but one that did not even finish.
_VERDICT_RANK = (SubmissionStatus.PASSED, SubmissionStatus.FAILED, SubmissionStatus.TIMEOUT)


def _problem_result(problem: TrackProblemEntry, row: dict[str, Any] | None) -> ProblemResult:
    if row is None:
        return ProblemResult(
            problem_id=problem.id,
            slug=problem.slug,
            module=problem.module,
            status=ProblemResultStatus.NOT_STARTED,
            attempts=0,
            best_verdict=None,
            last_verdict=None,
            last_submitted_at=None,
        )
    latest = {verdict: row[f"last_{verdict}_at"] for verdict in _VERDICT_RANK}
    return ProblemResult(
        problem_id=problem.id,
        slug=problem.slug,
        module=problem.module,
        status=ProblemResultStatus.SOLVED if latest[SubmissionStatus.PASSED] else ProblemResultStatus.ATTEMPTED,
        attempts=row["attempts"],
        best_verdict=next(str(verdict) for verdict in _VERDICT_RANK if latest[verdict]),
        # The verdict whose latest submit is the latest of all (a tie of timestamps goes to the better).
        last_verdict=next(str(verdict) for verdict in _VERDICT_RANK if latest[verdict] == row["last_submitted_at"]),
        last_submitted_at=row["last_submitted_at"],
    )


def track_results_for_learner(*, learner_id: str, track_reference: str) -> TrackResults:
    """The learner's standing on each published problem of a published track, in the track's
    order. Only graded submits count — from any front door (a session, a study task), since they
    all go through this pipeline — never a run, a pending one or our own `error`. Three queries
    at any history size: the track, its problems, and one aggregate over the learner's submits
    grouped per problem (the latest submit per verdict tells the last verdict, so no per-row
    subquery is needed)."""
    track = track_problems(reference=track_reference)
    rows = (
        Submission.objects.filter(
            learner_id=learner_id,
            kind=SubmissionKind.SUBMIT,
            status__in=LEARNER_GRADED,
            problem_id__in=[problem.id for problem in track.problems],
        )
        .order_by()
        .values("problem_id")
        .annotate(
            attempts=Count("id"),
            last_submitted_at=Max("created_at"),
            **{f"last_{verdict}_at": Max("created_at", filter=Q(status=verdict)) for verdict in _VERDICT_RANK},
        )
    )
    summed = {row["problem_id"]: row for row in rows}
    results = tuple(_problem_result(problem, summed.get(problem.id)) for problem in track.problems)
    return TrackResults(track_id=track.id, track_slug=track.slug, track_title=track.title, problems=results)
