"""Periodic study-path work run by Celery beat (CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from study_paths import lifecycle, reviews


@shared_task(name="study_paths.expire_tasks", acks_late=True, ignore_result=True, time_limit=120)
def expire_tasks() -> int:
    return lifecycle.study_tasks_expire()


@shared_task(name="study_paths.review_tasks_create", acks_late=True, ignore_result=True, time_limit=300)
def review_tasks_create() -> int:
    return reviews.review_tasks_create()
