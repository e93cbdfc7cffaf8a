"""Whole-run bounds: a run that finds no free uid slot ends as `error` after a deadline (never a
hang), and the coding verdict says the server was busy."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from grading.evaluators.coding import evaluate_code_embedded
from grading.problems import CodingProblem
from grading.sandbox import SANDBOX_BUSY, SandboxRun, run_in_sandbox
from grading.sandbox.isolation import current_config, uid_slot_acquire

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def every_slot_held(settings: Any) -> Any:
    """A pool of two uid slots, both held (as by two long runs), and a one-second wait."""
    settings.CO_SANDBOX_UID_POOL = 2
    settings.CO_SANDBOX_WARM = 0
    settings.CO_SANDBOX_SLOT_WAIT_SECONDS = 1.0
    cfg = current_config()
    held = [uid_slot_acquire(cfg, wait=False) for _ in range(2)]
    assert all(slot is not None and slot.lock_fd is not None for slot in held)
    yield held
    for slot in held:
        slot.release()


def test_a_run_that_finds_no_free_uid_slot_ends_as_error_after_the_deadline(every_slot_held) -> None:
    started = time.monotonic()
    result = run_in_sandbox(SandboxRun("python", "def solve(a):\n    return a\n", "solve", ["a"], [{"a": 1}], 1000, 64))
    waited = time.monotonic() - started

    assert result.status == "error" and result.error == SANDBOX_BUSY and result.tests == []
    assert 1.0 <= waited < 5.0


def test_the_busy_run_is_an_error_verdict_with_a_clear_reason(every_slot_held) -> None:
    bundle = CodingProblem(
        parameters=["a"], languages={"python": {"entrypoint": "solve"}}, visible_tests=[{"input": {"a": 1}, "expected": 1}]
    )
    verdict = evaluate_code_embedded(bundle=bundle, language="python", code="def solve(a):\n    return a\n", include_hidden=False)

    assert verdict.status == "error"
    assert verdict.error["kind"] == "sandbox_busy"
    assert "busy" in verdict.error["message"]


def test_a_slot_that_comes_free_while_waiting_is_taken(every_slot_held, settings: Any) -> None:
    settings.CO_SANDBOX_SLOT_WAIT_SECONDS = 10.0
    threading.Timer(0.5, every_slot_held.pop(0).release).start()
    result = run_in_sandbox(SandboxRun("python", "def solve(a):\n    return a\n", "solve", ["a"], [{"a": 1}], 1000, 64))

    assert result.status == "completed" and result.tests[0].value == 1, result
