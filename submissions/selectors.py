"""Reads of submissions: a learner sees only their own."""

from __future__ import annotations

import uuid

from co_project.errors import NotFound
from submissions.models import Submission


def submission_get_for_learner(*, learner_id: str, submission_id: str) -> Submission:
    try:
        key = uuid.UUID(submission_id)
    except ValueError:
        raise NotFound("No such submission.") from None
    submission = Submission.objects.filter(id=key, learner_id=learner_id).first()
    if submission is None:
        raise NotFound("No such submission.")
    return submission
