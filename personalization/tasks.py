"""Celery tasks of the learner model: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task

from personalization import services


@shared_task(name="personalization.surface_due_reviews", acks_late=True, ignore_result=True, time_limit=120)
def surface_due_reviews() -> int:
    return services.review_surface_due()
