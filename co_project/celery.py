"""The Celery app. Configured from Django settings (`CELERY_*`): JSON only, acks_late,
reject_on_worker_lost, time limits; with no broker configured tasks run eagerly in-process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

app = Celery("co")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
