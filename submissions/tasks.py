"""Celery tasks: thin wrappers that fetch nothing themselves and call one service each."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from submissions import services


@shared_task(
    name="submissions.evaluate",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    ignore_result=True,
)
def evaluate_submission(submission_id: str) -> str:
    return services.submission_evaluate(submission_id=submission_id)


@shared_task(name="submissions.sweep", acks_late=True, ignore_result=True, time_limit=120)
def sweep_submissions() -> dict[str, int]:
    return services.submission_sweep()
