"""Periodic study-path work run by Celery beat (CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from study_paths import lifecycle, monitoring, peers, reviews


@shared_task(name="study_paths.expire_tasks", acks_late=True, ignore_result=True, time_limit=120)
def expire_tasks() -> int:
    return lifecycle.study_tasks_expire()


@shared_task(name="study_paths.peer_distributions_refresh", acks_late=True, ignore_result=True, time_limit=600)
def peer_distributions_refresh() -> int:
    return peers.peer_distributions_refresh()


@shared_task(name="study_paths.learning_gauges_refresh", acks_late=True, ignore_result=True, time_limit=60)
def learning_gauges_refresh() -> None:
    monitoring.learning_gauges_refresh()


@shared_task(name="study_paths.review_tasks_create", acks_late=True, ignore_result=True, time_limit=300)
def review_tasks_create() -> int:
    return reviews.review_tasks_create()
