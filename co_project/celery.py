"""The Celery app. Configured from Django settings (`CELERY_*`): JSON only, acks_late,
reject_on_worker_lost, time limits; with no broker configured tasks run eagerly in-process."""

import os
from collections.abc import Callable, Collection

from celery import Celery
from celery.signals import (
    beat_init,
    before_task_publish,
    celeryd_init,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_revoked,
    task_success,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

from co_project import metrics
from co_project.middleware import current_request_id, request_id_bind, request_id_reset

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

app = Celery("co")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _tracing_worker(**kwargs: object) -> None:
    """Each pool process traces its own tasks (co_project/tracing.py; off without an endpoint),
    connected first so that the warm-up's connections are traced too."""
    from co_project.tracing import tracing_install

    tracing_install("co-worker")


@worker_process_init.connect
def _warm_up_grading(**kwargs: object) -> None:
    """A worker process (each of the prefork pool's) starts its SymPy workers, probes its sandbox
    isolation and starts pre-starting sandboxes now, not on a learner's first answer: for the
    grading queues its worker consumes (`-Q`; all of them without it), since the others' tasks
    never reach it."""
    grading_warm_up(queues=set(app.amqp.queues.consume_from))


@worker_process_shutdown.connect
def _tracing_flush(**kwargs: object) -> None:
    """A pool process exits without atexit hooks: export its last spans first."""
    from co_project.tracing import tracing_flush

    tracing_flush()


@beat_init.connect
def _tracing_beat(**kwargs: object) -> None:
    """Beat's publish spans start the traces of the periodic tasks (the sweeper's re-queues)."""
    from co_project.tracing import tracing_install

    tracing_install("co-beat")


@setup_logging.connect
def _logging_as_configured(**kwargs: object) -> None:
    """The worker and beat log as the web process does: Django's LOGGING, one JSON object per
    line on stderr with the request id, at CO_LOG_LEVEL. A receiver of this signal is what stops
    Celery from replacing the root logger's handlers with its own text format (and `--loglevel`
    from overriding CO_LOG_LEVEL)."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


# The header that carries the id of the request that queued a task, so the worker's log lines of
# an evaluation carry the id of the submission's request.
REQUEST_ID_HEADER = "co_request_id"


@before_task_publish.connect
def _carry_request_id(headers: dict[str, object] | None = None, **kwargs: object) -> None:
    request_id = current_request_id()
    if headers is not None and request_id is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def _bind_request_id(task: object = None, **kwargs: object) -> None:
    """The queuing request's id for the task's log lines (a task queued by beat has none). An
    eager task runs inside its request, which has bound the id already."""
    request = getattr(task, "request", None)
    if request is not None and not getattr(request, "is_eager", False):
        request.co_request_id_token = request_id_bind(getattr(request, REQUEST_ID_HEADER, None))


@task_postrun.connect
def _unbind_request_id(task: object = None, **kwargs: object) -> None:
    token = getattr(getattr(task, "request", None), "co_request_id_token", None)
    if token is not None:
        request_id_reset(token)


@task_prerun.connect
@task_postrun.connect
def _close_broken_connections(task: object = None, **kwargs: object) -> None:
    """Around each task, as Django does around each request: a connection that failed (the
    database restarted) or outlived CONN_MAX_AGE is closed, and a kept one is health-checked
    before its first use (CONN_HEALTH_CHECKS). Celery's own handling, with CELERY_DB_REUSE_MAX,
    keeps a connection for many tasks without looking at it. Not for an eager task: it runs
    inside a request (or a test's transaction), which does this itself."""
    from django.db import close_old_connections

    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()


def grading_warm_up(*, queues: Collection[str] | None = None) -> None:
    """Warm up the grading of the given queues (None: all grading, as the serving process without
    a broker does). A queue added later with `control add_consumer` warms up on its first task."""
    from django.conf import settings

    from grading.evaluators.math import warm_up
    from grading.sandbox import sandbox_warm_up

    def grades(kind: str) -> bool:
        return queues is None or settings.CO_GRADING_QUEUES[kind] in queues

    if grades("math"):
        warm_up()
    languages = tuple(language for language in ("python", "javascript") if grades(language))
    if languages and settings.CO_EVAL_BASE is None:  # the embedded sandbox grades code here
        sandbox_warm_up(memory_limit_mb=settings.CO_SANDBOX_WARM_UP_MEMORY_MB, languages=languages)


# --- metrics (co_project/metrics.py): the worker's pool processes share its directory ------------


@celeryd_init.connect
def _metrics_worker_start(sender: object = None, **kwargs: object) -> None:
    """In the worker's main process, before it forks its pool: its processes write as
    `worker.<node name>`."""
    metrics.metrics_service_start(metrics.worker_service(str(sender)))


@worker_ready.connect
def _metrics_worker_serve(**kwargs: object) -> None:
    """A worker host without a web process: the main process serves the scrape (CO_METRICS_WORKER_BIND)."""
    metrics.metrics_worker_serve()


def _outcome_counter(outcome: str) -> Callable[..., None]:
    def observe(sender: object = None, **kwargs: object) -> None:
        metrics.celery_task_observe(task=getattr(sender, "name", "unknown"), outcome=outcome)

    return observe


for _signal, _outcome in ((task_success, "success"), (task_failure, "failure"), (task_retry, "retry"), (task_revoked, "revoked")):
    _signal.connect(_outcome_counter(_outcome), weak=False)
