"""Celery beat's schedule run by the serving process itself when there is no broker.

The embedded default (`make run`) has no beat process, yet its guarantees are the production
ones: a submission whose evaluation failed is graded again by the sweeper, expired mocks end,
due reviews surface. So without a broker the ASGI process runs `CELERY_BEAT_SCHEDULE` in one
daemon thread — every task at start-up, then at its interval — through the same task code that
beat sends to a worker (eagerly, in that thread). With a broker, `celery beat` does it.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger("co.beat")

_started_in: int | None = None  # the pid that started the thread: a forked child starts its own


def in_process_beat_start() -> bool:
    """Start the schedule thread once per process when tasks run eagerly; True when started."""
    global _started_in
    from co_project.celery import app

    if not (settings.CO_IN_PROCESS_BEAT and app.conf.task_always_eager) or _started_in == os.getpid():
        return False
    _started_in = os.getpid()
    threading.Thread(target=_run_schedule, name="in-process-beat", daemon=True).start()
    return True


def _run_schedule() -> None:
    from co_project.celery import app, grading_warm_up

    # This process grades too: warm it up here, in a thread that lives as long as the process
    # (the fork helper and bubblewrap end with the thread that started them).
    try:
        grading_warm_up()
    except Exception:  # the schedule matters more; a cold first verdict is only slower
        logger.exception("warming up grading failed")
    app.loader.import_default_modules()  # registers the apps' tasks (a web process imports none)
    schedule = {entry["task"]: float(entry["schedule"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    due = dict.fromkeys(schedule, time.monotonic())
    while True:
        now = time.monotonic()
        for task_name, interval in schedule.items():
            if due[task_name] > now:
                continue
            due[task_name] = now + interval
            try:
                app.tasks[task_name].apply()
            except Exception:  # one failed round must not stop the schedule
                logger.exception("periodic task %s failed; it runs again in %.0f s", task_name, interval)
            finally:
                connections.close_all()
        time.sleep(max(0.0, min(due.values()) - time.monotonic()))
