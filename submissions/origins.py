"""Front doors of the pipeline: where a submission comes from (a session, a study task).

The pipeline knows a front door only through this registry, never by importing it: a front door
registers an `Origin` in its `AppConfig.ready()`, the pipeline asks it to check a new submission
before the row is written, and hands it the verdict inside the verdict's transaction. So the
front doors sit on top of `submissions` and nothing in `submissions` imports them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class AttemptVerdict:
    """A finished attempt as a front door records it."""

    origin_id: uuid.UUID
    learner_id: str
    problem_id: uuid.UUID | None  # None: a remote bank's problem (sessions never see those)
    graded: bool  # a submit with a learner-graded status (not a run, not our `error`)
    status: str
    categories: list[str]
    at: datetime
    # The counts and figures of the verdict (never a hidden test's data), for front doors that
    # keep their own record of an attempt (a study task's evaluation).
    submission_id: uuid.UUID | None = None
    exec_ms: int = 0
    peak_memory_kb: int = 0
    visible_passed: int = 0
    visible_total: int = 0
    hidden_passed: int = 0
    hidden_total: int = 0
    visible_outcomes: tuple[str, ...] = ()  # per visible test, in order: passed, wrong_answer, …


@dataclass(frozen=True)
class AttemptContext:
    """What the front door knows of the attempt that the learner model weighs."""

    max_hint_level: int = 0
    seconds_taken: float | None = None


class Origin(Protocol):
    name: str

    def check_submission(self, *, learner_id: str, origin_id: uuid.UUID, problem_id: uuid.UUID | None) -> None:
        """Raise an ApplicationError when the learner may not submit this problem here."""

    def record_verdict(self, verdict: AttemptVerdict) -> AttemptContext:
        """Record the attempt; runs inside the verdict's transaction."""


SESSION_ORIGIN = "session"
STUDY_TASK_ORIGIN = "study_task"

_origins: dict[str, Origin] = {}


def origin_register(origin: Origin) -> None:
    _origins[origin.name] = origin


def origin_get(name: str) -> Origin:
    try:
        return _origins[name]
    except KeyError:
        raise LookupError(f"no front door registered as {name!r}") from None
