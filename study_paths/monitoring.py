"""Study-path figures for Prometheus (co_project/metrics.py): task completions as they commit,
and the whole-deployment gauges — open tasks by status, the review backlog — counted by a
periodic job instead of at every scrape (a count over the tasks table on each scrape of each
process would cost more than the scrape).

The job (`study_paths.learning_gauges_refresh`, every `CO_LEARNING_GAUGES_SECONDS`) counts in
two queries that read index ranges of open tasks and due review items only, keeps the counts in
the cache and sets the gauges in its own process; before each scrape a hook sets them in the
scraping process from the cache. So every process and host reports the same latest counts
(aggregate them with max()), and co_learning_gauges_updated_timestamp_seconds says how old they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from co_project import metrics
from personalization.selectors import review_backlog_count
from study_paths.models import StudyPathStatus, StudyTask, TaskEventType, TaskStatus

GAUGED_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED)
CACHE_KEY = "study-paths:learning-gauges"
CACHE_SECONDS = 24 * 3600
COMPLETION_OUTCOMES = (TaskStatus.PASSED, TaskStatus.FAILED, TaskStatus.SKIPPED)


def learning_gauges_count(*, now: datetime | None = None) -> dict[str, Any]:
    """Open tasks of active paths by status and the due review items, now (two queries)."""
    now = now or timezone.now()
    counts = dict(
        StudyTask.objects.filter(status__in=GAUGED_STATUSES, path__status=StudyPathStatus.ACTIVE)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "tasks_by_status": {status: counts.get(status, 0) for status in GAUGED_STATUSES},
        "review_backlog": review_backlog_count(now=now),
        "counted_at": now.timestamp(),
    }


def learning_gauges_refresh(*, now: datetime | None = None) -> dict[str, Any]:
    """Count, keep the counts for every scrape (the cache) and set this process's gauges."""
    snapshot = learning_gauges_count(now=now)
    cache.set(CACHE_KEY, snapshot, CACHE_SECONDS)
    metrics.learning_gauges_set(**snapshot)
    return snapshot


def learning_gauges_from_cache() -> None:
    """The scrape hook: the latest counts into this process's gauges (none yet: nothing set)."""
    snapshot = cache.get(CACHE_KEY)
    if snapshot is not None:
        metrics.learning_gauges_set(**snapshot)


def completions_count(specs: Sequence[Any]) -> None:
    """Count the verdicts among task events being appended, once their transaction commits: a
    `status_changed` to passed/failed/skipped for a verdict (not a replanning's drop) or an
    `expired` event. Run by `task_events_append`, inside its caller's transaction."""
    found: Counter[tuple[str, str]] = Counter()
    for spec in specs:
        if spec.event_type == TaskEventType.EXPIRED:
            found[(spec.task.kind, TaskStatus.EXPIRED.value)] += 1
        elif (
            spec.event_type == TaskEventType.STATUS_CHANGED
            and spec.payload.get("reason") == "verdict"
            and spec.payload.get("to") in COMPLETION_OUTCOMES
        ):
            found[(spec.task.kind, str(spec.payload["to"]))] += 1
    if found:
        transaction.on_commit(
            lambda: [
                metrics.study_task_completion_observe(kind=kind, outcome=outcome, count=count)
                for (kind, outcome), count in found.items()
            ]
        )
