"""Front doors of the tutor other than sessions (a study task), reached through a registry.

The tutor knows such a front door only by name: it registers a `HintOrigin` in its
`AppConfig.ready()`; the tutor asks it which problem a hint is for (checking the learner may ask
there), has it count the hint inside the turn's transaction, and hands it what the learner was
shown once the stream ended. So nothing in `tutoring` imports the front doors built on it.
Sessions keep their own path (`tutor_turn_start`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

SESSION_TURN_ORIGIN = "session"


class HintOrigin(Protocol):
    name: str

    def hint_problem(self, *, learner_id: str, origin_id: uuid.UUID | str) -> uuid.UUID:
        """The problem (database row id) a hint here is for; raise an ApplicationError (404 for
        anyone else's record, 409 for one that takes no hints now) otherwise."""

    def record_hint(self, *, learner_id: str, origin_id: uuid.UUID, turn_id: uuid.UUID, hint_level: int, at: datetime) -> None:
        """Count the hint; runs inside the turn's transaction."""

    def record_hint_shown(
        self, *, origin_id: uuid.UUID, turn_id: uuid.UUID, hint_level: int, outcome: str, content: str, at: datetime
    ) -> None:
        """What the learner was shown (no hidden data: the tutor never had any); runs inside the
        transaction that finishes the turn."""


_origins: dict[str, HintOrigin] = {}


def hint_origin_register(origin: HintOrigin) -> None:
    _origins[origin.name] = origin


def hint_origin_get(name: str) -> HintOrigin:
    try:
        return _origins[name]
    except KeyError:
        raise LookupError(f"no tutor front door registered as {name!r}") from None
