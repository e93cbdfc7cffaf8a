"""Periodic study-path work run by Celery beat (CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from study_paths import lifecycle


@shared_task(name="study_paths.expire_tasks", acks_late=True, ignore_result=True, time_limit=120)
def expire_tasks() -> int:
    return lifecycle.study_tasks_expire()
