"""Production web server: gunicorn managing uvicorn workers (ASGI, so SSE streams do not hold a
worker thread). Tune with CO_WEB_* environment variables; `gunicorn -c gunicorn.conf.py`."""

import multiprocessing
import os

wsgi_app = "co_project.asgi:application"
worker_class = "uvicorn_worker.UvicornWorker"
bind = os.environ.get("CO_WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CO_WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
timeout = int(os.environ.get("CO_WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
accesslog = "-"
forwarded_allow_ips = os.environ.get("CO_WEB_FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker: object) -> None:
    """The access log never shows a tutor stream token (co_project/access_log.py); the app's
    start-up installs the same filter, this keeps it independent of when the app is loaded."""
    from co_project.access_log import access_log_redaction_install

    access_log_redaction_install()


def on_starting(server: object) -> None:
    """Metrics (co_project/metrics.py): the workers write as `web`; the last run's files go."""
    from co_project.metrics import metrics_service_start

    metrics_service_start("web")


def child_exit(server: object, worker: object) -> None:
    """A worker that exited no longer counts in the live-summed gauges (open tutor streams)."""
    from co_project.metrics import metrics_process_dead

    metrics_process_dead(worker.pid, "web")  # type: ignore[attr-defined]
