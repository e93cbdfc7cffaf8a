"""The Celery app. Configured from Django settings (`CELERY_*`): JSON only, acks_late,
reject_on_worker_lost, time limits; with no broker configured tasks run eagerly in-process."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

app = Celery("co")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up_math_worker(**kwargs: object) -> None:
    """Start the SymPy worker when a Celery worker process starts, not on a learner's first answer."""
    from grading.evaluators.math import warm_up

    warm_up()
