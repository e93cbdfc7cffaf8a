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
def _warm_up_grading(**kwargs: object) -> None:
    """A worker process (each of the prefork pool's) starts its SymPy workers, probes its sandbox
    isolation and starts pre-starting sandboxes now, not on a learner's first answer."""
    grading_warm_up()


def grading_warm_up() -> None:
    from django.conf import settings

    from grading.evaluators.math import warm_up
    from grading.sandbox import sandbox_warm_up

    warm_up()
    if settings.CO_EVAL_BASE is None:  # the embedded sandbox grades code here
        sandbox_warm_up(memory_limit_mb=settings.CO_SANDBOX_WARM_UP_MEMORY_MB)
