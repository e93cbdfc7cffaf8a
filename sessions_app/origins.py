"""Sessions as a front door of the evaluation pipeline (registered in `SessionsAppConfig.ready`)."""

from __future__ import annotations

import uuid

from sessions_app.services import session_check_for_submission, session_record_attempt
from submissions.origins import SESSION_ORIGIN, AttemptContext, AttemptVerdict


class SessionOrigin:
    """A submission made in a session: the session must be the learner's, active, and hold the problem."""

    name = SESSION_ORIGIN

    def check_submission(self, *, learner_id: str, origin_id: uuid.UUID, problem_id: uuid.UUID | None) -> None:
        session_check_for_submission(learner_id=learner_id, session_id=origin_id, problem_id=problem_id)

    def record_verdict(self, verdict: AttemptVerdict) -> AttemptContext:
        context = session_record_attempt(
            session_id=verdict.origin_id,
            problem_id=verdict.problem_id,
            graded=verdict.graded,
            status=verdict.status,
            categories=verdict.categories,
            at=verdict.at,
        )
        return AttemptContext(max_hint_level=context["max_hint_level"], seconds_taken=context["seconds_taken"])
