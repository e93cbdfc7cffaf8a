"""Routing: each kind of grading has a queue of its own, and a worker started without `-Q`
consumes them all (the two-worker test is in test_worker.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from co_project.celery import app
from submissions.services import submission_queue


@pytest.mark.parametrize(
    ("subject", "language", "queue"),
    [
        ("coding", "python", "grade-python"),
        ("coding", "javascript", "grade-javascript"),
        ("math", "", "grade-math"),
        ("systems", "", "grade-systems"),
    ],
)
def test_each_kind_of_grading_has_its_queue(subject: str, language: str, queue: str) -> None:
    assert submission_queue(subject=subject, language=language) == queue


def test_a_worker_without_a_queue_option_consumes_every_queue() -> None:
    """What `celery -A co_project worker` consumes when `-Q` does not select: the periodic tasks'
    default queue and every grading queue, so a single worker still does all the work."""
    assert app.conf.task_default_queue == "celery"
    assert set(app.amqp.queues.consume_from) == {"celery", "grade-python", "grade-javascript", "grade-math", "grade-systems"}


def test_a_worker_with_a_misspelt_queue_refuses_to_start() -> None:
    """Rather than wait on a queue nothing is ever sent to while the real one fills up."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CO_")}, "CO_ENV": "test"}
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "co_project", "worker", "-Q", "grade-pyhton", "--concurrency", "1"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 1
    assert "ImproperlyConfigured: Trying to select queue subset of ['grade-pyhton']" in worker.stderr
