"""Celery tasks of sessions: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task

from sessions_app import services


@shared_task(name="sessions.finish_expired_mocks", acks_late=True, ignore_result=True, time_limit=120)
def finish_expired_mocks() -> int:
    return services.session_finish_expired_mocks()
