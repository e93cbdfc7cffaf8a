"""Review tasks from the review queue (seeds/004 CO-003-012).

Due review items become `review` tasks on the learner's active path for the item's track by the
planner's own injection (study_paths.planner): `study_path_reviews_schedule` regenerates a
path's pending tail when the planner would now put a due review on it that the path does not
have yet. Run for every learner with due reviews by Celery beat (`study_paths.review_tasks_create`)
and `manage.py create_review_tasks`. The planner keeps the rules: at most one open task per
problem, at most `max_reviews_per_day` review-queue tasks a day (a backlog spreads over the
following days of the plan; what is left is planned by later runs), never against the guardrails.

A review task is graded like any task, through the one pipeline: its verdict updates the review
item through `personalization`'s services (promoted or reset by the configured scheduler, the
review logged with its rating and predicted recall), exactly as a session's attempt would.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from co_project.errors import NotFound, ProblemRepositoryNotReady
from personalization.selectors import learners_with_due_reviews
from study_paths.models import StudyPath, StudyPathStatus
from study_paths.planner import QUEUE_REVIEW_SOURCE
from study_paths.services import study_path_plan, study_path_tail_reshape

logger = logging.getLogger("co.study_paths")

LEARNERS_PER_BATCH = 500


def _review_keys(review_sources: list[dict]) -> set[str]:
    return {source["key"] for source in review_sources if source.get("source") == QUEUE_REVIEW_SOURCE and source.get("key")}


def study_path_reviews_schedule(*, path_id: uuid.UUID, now: datetime | None = None) -> int:
    """Put the due reviews the planner would now inject on an active path (reshaping its pending
    tail under the path's lock, as a verdict does); returns how many review tasks were created.
    A path the planner would give no new review keeps its tail untouched."""
    now = now or timezone.now()
    with transaction.atomic():
        path = StudyPath.objects.select_for_update().filter(id=path_id, status=StudyPathStatus.ACTIVE).first()
        if path is None:
            return 0
        replan = study_path_plan(path=path, now=now)
        on_path = _review_keys([row["metadata"].get("review_source") or {} for row in replan.rows])
        wanted = _review_keys([dict(task.review_source) for task in replan.plan.tasks if task.review_source])
        if not wanted - on_path:
            return 0
        _, created = study_path_tail_reshape(path=path, replan=replan, now=now, reason="review_due", changes=[])
        path.updated_at = now
        path.save(update_fields=["catalogue_digest", "updated_at"])
    reviews = [task for task in created if (task.metadata.get("review_source") or {}).get("source") == QUEUE_REVIEW_SOURCE]
    logger.info("review tasks created", extra={"path_id": str(path.id), "count": len(reviews)})
    return len(reviews)


def review_tasks_create(*, now: datetime | None = None, learner_id: str | None = None) -> int:
    """For every learner with due review items (or just `learner_id`), schedule them on each of
    their active paths; returns how many review tasks were created. A path whose plan cannot be
    regenerated now (track unpublished, remote bank down) is left for the next run."""
    now = now or timezone.now()
    learners = learners_with_due_reviews(now=now, learner_id=learner_id)
    total = 0
    for start in range(0, len(learners), LEARNERS_PER_BATCH):
        batch = learners[start : start + LEARNERS_PER_BATCH]
        path_ids = list(
            StudyPath.objects.filter(learner_id__in=batch, status=StudyPathStatus.ACTIVE)
            .order_by("learner_id", "created_at", "id")
            .values_list("id", flat=True)
        )
        for path_id in path_ids:
            try:
                total += study_path_reviews_schedule(path_id=path_id, now=now)
            except (NotFound, ProblemRepositoryNotReady) as exc:
                logger.warning("review tasks not scheduled", extra={"path_id": str(path_id), "reason": exc.message})
    return total
