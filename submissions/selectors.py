"""Reads of submissions: a learner sees only their own."""

from __future__ import annotations

import uuid
from typing import Any

from co_project.errors import NotFound
from submissions.models import FINAL_STATUSES, Submission, SubmissionKind


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
