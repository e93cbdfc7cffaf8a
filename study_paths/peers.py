"""Peer comparison (seeds/004 CO-003-025): where a learner stands among the learners of the same
track, module by module, computed by a periodic job and never per request.

The job (`peer_distributions_refresh`, Celery beat every `CO_PEER_REFRESH_SECONDS`) reads every
learner's figures per track and module in two aggregate queries and stores, per track and
module, only how many learners reached each value — never who. A request places the learner's
own current figures in that distribution. A module shows percentiles only when at least
`CO_PEER_MIN_COHORT` learners contributed, so no answer can single anyone out.

A learner **contributes** to a module once they have a graded attempt in it on any of their
paths on the track. Their **accuracy** is the share of their graded attempts there that passed,
**completed** the tasks they completed there (passed or failed). A **percentile** is the
percentile rank: the share of contributors with a lower value plus half of those with the same
value, × 100, rounded to one decimal (a learner in the middle of the cohort is at 50).
"""

from __future__ import annotations

import logging
import uuid
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from study_paths.models import PeerModuleDistribution, StudyTask, TaskEvaluation, TaskStatus

logger = logging.getLogger("co.study_paths")

COMPLETED_STATUSES = (TaskStatus.PASSED, TaskStatus.FAILED)
Key = tuple[uuid.UUID, uuid.UUID, str]  # (track, module, learner)


def _accuracy(attempts: int, passed: int) -> float:
    return round(passed / attempts, 4)


def _figures(*, learner_id: str | None = None, track_id: uuid.UUID | None = None) -> dict[Key, tuple[float, int]]:
    """(accuracy, completed) per (track, module, learner) with a graded attempt — everyone's, or
    one learner's on one track (two aggregate queries)."""
    evaluations = TaskEvaluation.objects.all()
    tasks = StudyTask.objects.filter(status__in=COMPLETED_STATUSES)
    if learner_id is not None:
        evaluations = evaluations.filter(task__learner_id=learner_id, task__path__track_id=track_id)
        tasks = tasks.filter(learner_id=learner_id, path__track_id=track_id)
    attempts = (
        evaluations.values_list("task__path__track_id", "task__module_id", "task__learner_id")
        .annotate(attempts=Count("id"), passed=Count("id", filter=Q(score__gte=1.0)))
        .order_by()
    )
    completed = {
        (track, module, learner): count
        for track, module, learner, count in tasks.values_list("path__track_id", "module_id", "learner_id")
        .annotate(count=Count("id"))
        .order_by()
    }
    return {
        (track, module, learner): (_accuracy(n, passed), completed.get((track, module, learner), 0))
        for track, module, learner, n, passed in attempts
    }


def _counts(values: list[Any]) -> list[list[Any]]:
    return [[value, learners] for value, learners in sorted(Counter(values).items())]


def peer_distributions_refresh(*, now: datetime | None = None) -> int:
    """Recompute every track's per-module distributions from all learners' figures and replace
    the stored ones in one transaction (a module nobody contributes to any more is removed).
    Returns how many distributions were stored."""
    now = now or timezone.now()
    by_module: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[float, int]]] = defaultdict(list)
    for (track, module, _learner), figures in _figures().items():
        by_module[(track, module)].append(figures)
    rows = [
        PeerModuleDistribution(
            track_id=track,
            module_id=module,
            contributors=len(figures),
            accuracy_counts=_counts([accuracy for accuracy, _ in figures]),
            completed_counts=_counts([completed for _, completed in figures]),
            computed_at=now,
        )
        for (track, module), figures in sorted(by_module.items(), key=lambda item: (str(item[0][0]), str(item[0][1])))
    ]
    with transaction.atomic():  # readers see the old distributions until this commits
        PeerModuleDistribution.objects.all().delete()
        PeerModuleDistribution.objects.bulk_create(rows)
    logger.info("peer distributions refreshed", extra={"distributions": len(rows)})
    return len(rows)


def percentile_rank(counts: list[list[Any]], value: float) -> float:
    """The percentile rank of `value` among the counted values (module docstring)."""
    values = [v for v, _ in counts]
    cumulative = [0]
    for _, learners in counts:
        cumulative.append(cumulative[-1] + learners)
    total = cumulative[-1]
    below = cumulative[bisect_left(values, value)]
    equal = cumulative[bisect_right(values, value)] - below
    return round(100 * (below + equal / 2) / total, 1)


def peer_comparison(*, learner_id: str, track_id: uuid.UUID, module_slugs: dict[uuid.UUID, str]) -> dict[str, Any]:
    """The learner's percentiles per module of the track among its learners (three queries): the
    stored distributions and the learner's own current figures."""
    minimum = settings.CO_PEER_MIN_COHORT
    distributions = {row.module_id: row for row in PeerModuleDistribution.objects.filter(track_id=track_id)}
    own = {module: figures for (_, module, _), figures in _figures(learner_id=learner_id, track_id=track_id).items()}
    computed = [row.computed_at for row in distributions.values()]
    modules: dict[str, Any] = {}
    for module_id, slug in module_slugs.items():
        row = distributions.get(module_id)
        entry: dict[str, Any] = {"contributors": None, "accuracy_percentile": None, "completed_percentile": None}
        if row is None or row.contributors < minimum:
            entry["reason"] = f"Fewer than {minimum} learners of this track have a graded attempt in this module yet."
        elif module_id not in own:
            entry["contributors"] = row.contributors
            entry["reason"] = "You have no graded attempt in this module yet."
        else:
            accuracy, completed = own[module_id]
            entry.update(
                contributors=row.contributors,
                accuracy_percentile=percentile_rank(row.accuracy_counts, accuracy),
                completed_percentile=percentile_rank(row.completed_counts, completed),
                reason=None,
            )
        modules[slug] = entry
    return {
        "min_cohort": minimum,
        "computed_at": max(computed).isoformat() if computed else None,
        "modules": modules,
    }
