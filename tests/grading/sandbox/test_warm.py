"""Pre-started sandboxes (grading/sandbox/warm.py): the same sandbox as a cold run, with the
run's own limits, used once; a fork starts with an empty pool; dead ones are never used."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.conf import settings

from grading.sandbox import SandboxRun, run_in_sandbox
from grading.sandbox import warm as warm_module
from grading.sandbox.isolation import current_config
from grading.sandbox.results import EncodedInputs
from grading.sandbox.warm import WarmKey, WarmPool, warm_pool
from tests.grading.sandbox.conftest import prime_warm_pool

pytestmark = pytest.mark.usefixtures("isolated")

LIMITS = {
    "python": (
        "def solve(a):\n"
        "    with open('/proc/self/limits') as handle:\n"
        "        return [line.rstrip() for line in handle if line.startswith('Max')]\n"
    ),
    "javascript": (
        "const fs = require('fs');\nfunction solve(a) {\n"
        "  const lines = fs.readFileSync('/proc/self/limits', 'utf8').split('\\n');\n"
        "  return lines.filter((l) => l.startsWith('Max')).map((l) => l.trimEnd());\n}\n"
    ),
}


def _soft_limits(lines: list[str]) -> dict[str, str]:
    """{name: soft limit} from /proc/self/limits lines (fixed columns: name 26, soft 21, hard 21)."""
    return {line[:26].strip(): line[26:47].strip() for line in lines}


def _run(language: str, code: str, *, memory_limit_mb: int = 64, tests: int = 1):
    return run_in_sandbox(SandboxRun(language, code, "solve", ["a"], [{"a": i} for i in range(tests)], 1000, memory_limit_mb))


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_a_pre_started_sandbox_runs_with_exactly_the_limits_of_a_cold_one(language: str) -> None:
    """Address space, CPU time, processes, files: what the learner's process sees is the run's."""
    prime_warm_pool(language)
    warm = _run(language, LIMITS[language], tests=3)
    settings_warm = settings.CO_SANDBOX_WARM
    try:
        settings.CO_SANDBOX_WARM = 0
        cold = _run(language, LIMITS[language], tests=3)
    finally:
        settings.CO_SANDBOX_WARM = settings_warm

    assert (warm.warm, cold.warm) == (True, False)
    assert warm.tests[0].outcome == cold.tests[0].outcome == "ok"
    assert warm.tests[0].value == cold.tests[0].value
    soft = _soft_limits(warm.tests[0].value)
    assert soft["Max cpu time"] != "unlimited"
    assert soft["Max processes"] == str(settings.CO_SANDBOX_MAX_PROCESSES)
    if language == "python":  # Node's memory is bounded by V8's flags, with a generous RLIMIT_AS
        assert int(soft["Max address space"]) < 200 * 1024 * 1024


def test_a_memory_hog_in_a_pre_started_sandbox_hits_the_runs_memory_limit() -> None:
    """The pool starts Python with the largest address space any run may get; the run's is lower."""
    prime_warm_pool("python")
    result = _run("python", "def solve(a):\n    block = bytearray(300 * 1024 * 1024)\n    return len(block)\n")

    assert result.warm
    assert [(t.outcome, t.error) for t in result.tests] == [("memory_limit", "memory limit exceeded")]


def test_every_pre_started_sandbox_is_used_once() -> None:
    prime_warm_pool("python")
    first = _run("python", "import os\ndef solve(a):\n    return os.getpid()\n")
    second = _run("python", "import os\ndef solve(a):\n    return os.getpid()\n")

    assert first.warm and second.warm
    # Each is pid 1 of a namespace of its own: the same number, different processes (and uids).
    assert first.tests[0].value == second.tests[0].value == 1


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_fork_starts_with_an_empty_pool_and_the_parent_keeps_its_own() -> None:
    """Celery's prefork pool forks: a child must neither use nor hold open its parent's sandboxes
    (a child's copy of a job pipe would keep the harness from ever seeing the end of its job)."""
    prime_warm_pool("python")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write_end, str(warm_pool().idle_count()).encode())
        time.sleep(3)  # alive while the parent runs
        os._exit(0)
    os.close(write_end)
    try:
        child_idle = int(os.read(read_end, 16))
        result = _run("python", "def solve(a):\n    return a + 1\n")
    finally:
        os.close(read_end)
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)

    assert child_idle == 0
    assert result.warm
    assert [(t.outcome, t.value) for t in result.tests] == [("ok", 1)]


def test_a_pre_started_sandbox_that_died_is_not_used() -> None:
    prime_warm_pool("python")
    for sandboxes in warm_pool()._idle.values():
        for sandbox in sandboxes:
            os.kill(sandbox.pid, signal.SIGKILL)
    time.sleep(0.2)
    result = _run("python", "def solve(a):\n    return a + 1\n")

    assert not result.warm
    assert [(t.outcome, t.value) for t in result.tests] == [("ok", 1)]


def test_idle_sandboxes_hold_at_most_half_of_the_uid_slots(settings) -> None:
    """A run must always find a uid: the pool never keeps more than half of them idle."""
    settings.CO_SANDBOX_UID_POOL = 4
    settings.CO_SANDBOX_WARM = 5
    _run("python", "def solve(a):\n    return a\n")
    deadline = time.monotonic() + 15  # pre-started sandboxes are built on spare CPU
    while warm_pool().idle_count() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # a third would be under way by now

    assert warm_pool().idle_count() == 2
    result = _run("python", "def solve(a):\n    return a\n")
    assert result.warm and result.status == "completed"


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_inputs_encoded_by_the_caller_reach_the_program_as_given(language: str) -> None:
    """A problem's hidden inputs are encoded once per bundle (tracks.problem_bank) and passed on:
    Python gets them marshalled, Node as JSON, and both see what a list of inputs gives."""
    inputs = [{"a": [1, 2, 3]}, {"a": {"k": "ü🙂", "n": None, "t": True}}, {"a": 0.1}, {"a": -(2**40)}, {"a": {}}]
    code = {"python": "def solve(a):\n    return a\n", "javascript": "function solve(a) { return a; }\n"}[language]
    plain = run_in_sandbox(SandboxRun(language, code, "solve", ["a"], inputs, 1000, 64))
    given = run_in_sandbox(SandboxRun(language, code, "solve", ["a"], EncodedInputs.of(inputs), 1000, 64))

    expected = [case["a"] for case in inputs]
    assert [t.value for t in plain.tests] == [t.value for t in given.tests] == expected
    assert [t.outcome for t in given.tests] == ["ok"] * 5


def test_encoded_inputs_are_checked_like_a_list_of_inputs() -> None:
    code = "def solve(a):\n    return a\n"
    with pytest.raises(ValueError, match="every parameter"):
        run_in_sandbox(SandboxRun("python", code, "solve", ["a", "b"], EncodedInputs.of([{"a": 1, "b": 2}, {"a": 1}]), 1000, 64))
    with pytest.raises(ValueError, match="JSON values"):
        EncodedInputs.of([{"a": float("nan")}])
    with pytest.raises(ValueError, match="list of dicts"):
        EncodedInputs.of([[1, 2]])
    assert repr(EncodedInputs.of([{"a": "secret"}])) == "EncodedInputs(count=1)"


def test_refills_wait_while_a_run_is_under_way_but_not_for_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """A verdict's visible and hidden runs go in parallel: the one that ends first must not make
    the pool start sandboxes on the cores the other one still needs (nor wait past the bound)."""
    pool = WarmPool()
    key = WarmKey("zygote", current_config(), ("python3",), "harness_python.py", b"", ("--self-limit",), None)
    pool._wanted[key] = 2
    assert pool._shortfall() == [key, key]

    pool.run_started()
    assert pool._shortfall() == []
    assert pool._deferred_until() is not None
    monkeypatch.setattr(warm_module, "REFILL_DEFER_SECONDS", 0.0)
    assert pool._shortfall() == [key, key]  # under way for longer than the bound

    monkeypatch.setattr(warm_module, "REFILL_DEFER_SECONDS", 60.0)
    pool.run_started()
    pool._wanted.clear()  # (no refill thread for this made-up key)
    pool.run_finished()
    assert pool._deferred_until() is not None  # one run is still under way
    pool.run_finished()
    assert pool._deferred_until() is None
