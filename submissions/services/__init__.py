"""The one evaluation pipeline: persist → commit → enqueue (on commit) → grade → persist → emit.

Every front door (`POST /v1/submissions`, session submissions, study-task submissions) calls
`submission_create`; the Celery task calls `submission_evaluate`; the beat task calls
`submission_sweep`. Exactly one verdict per submission is guaranteed by the database, not by
the queue: an evaluation first *claims* the row (`pending → running` with a fresh claim token,
a conditional UPDATE) and may only *finish* it while it still holds
that claim. Without a broker the queue is Celery's eager mode: the same task runs in the process
that commits the row, through the same claim. A redelivered task finds nothing to claim; a task
whose worker died leaves a `running` row that only becomes claimable again once it is stale, and
the sweeper (beat, or the serving process itself without a broker: co_project/beat.py) re-queues it.
"""

from __future__ import annotations

from submissions.services.create import submission_create, submission_enqueue, submission_queue
from submissions.services.evaluate import submission_evaluate
from submissions.services.sweep import submission_sweep
from submissions.services.wait import WAIT_SLICE_SECONDS, submission_wait

__all__ = [
    "WAIT_SLICE_SECONDS",
    "submission_create",
    "submission_enqueue",
    "submission_evaluate",
    "submission_queue",
    "submission_sweep",
    "submission_wait",
]
