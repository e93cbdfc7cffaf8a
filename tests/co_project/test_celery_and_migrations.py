"""The Celery app's safety settings, and migrations that are complete and reversible."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from co_project.celery import app


def test_celery_is_json_only_acks_late_and_time_limited() -> None:
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT == 90
    assert conf.task_soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT == 60
    assert conf.worker_prefetch_multiplier == 1
    # Configured eager exactly when no broker is configured (SQLite run), a real broker in the
    # PostgreSQL run; tests other than the real-worker ones force eager themselves.
    assert settings.CELERY_TASK_ALWAYS_EAGER is (settings.CELERY_BROKER_URL == "memory://")
    assert conf.broker_url == settings.CELERY_BROKER_URL


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_migrations_are_reversible() -> None:
    call_command("migrate", "tracks", "zero", verbosity=0)
    assert "tracks_problem" not in connection.introspection.table_names()
    call_command("migrate", verbosity=0)
    assert {"tracks_problem", "tracks_hiddentest", "tracks_coursepack"} <= set(connection.introspection.table_names())
