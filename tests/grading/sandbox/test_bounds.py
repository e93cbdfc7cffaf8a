"""Whole-run bounds: a run that finds no free uid slot ends as `error` after a deadline (never a
hang), and the coding verdict says the server was busy; memory is bounded and CPU counted for
the run's processes together (its cgroup), at every isolation level, cold and pre-started."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from grading.evaluators.coding import evaluate_code_embedded
from grading.problems import CodingProblem
from grading.sandbox import SANDBOX_BUSY, SandboxRun, run_in_sandbox
from grading.sandbox.isolation import current_config, language_level, uid_slot_acquire
from tests.grading.sandbox.conftest import prime_warm_pool

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


# --- memory, processes and CPU of the run as a whole (cgroups) -----------------------------

CHILDREN_BURN_CPU = """
import os, time

def solve(n):
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            start = time.process_time()
            while time.process_time() - start < 1.0:
                pass
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)  # the harness's own process spends next to no CPU
    return 'done'
"""

CHILDREN_HOLD_MEMORY = """
import os, time

def solve(n):
    children = []
    for _ in range(n):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            hoard = bytearray(50 * 1024 * 1024)  # below one process's limit (RLIMIT_AS)
            for index in range(0, len(hoard), 4096):
                hoard[index] = 1
            os.write(ready_w, b'x')
            time.sleep(30)
            os._exit(0)
        os.close(ready_w)
        children.append((pid, ready_r))
    for pid, ready_r in children:
        os.read(ready_r, 1)  # filled its memory, or was killed
    time.sleep(0.3)
    alive = sum(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid, _ in children)
    for pid, _ in children:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass  # killed for the run's memory, and reaped above
    return alive
"""


@pytest.fixture
def with_cgroups(isolated: str) -> None:
    from grading.sandbox import cgroups

    if not cgroups.available():
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail("no cgroups for sandboxes here: runs would be bounded per process only")
        pytest.skip("cgroups need root")


@pytest.fixture
def level(request: pytest.FixtureRequest, settings: Any, with_cgroups: None) -> str:
    wanted = request.param
    settings.CO_SANDBOX_ISOLATION = "auto" if wanted == "zygote" else wanted
    settings.CO_SANDBOX_ZYGOTE = wanted == "zygote"
    assert language_level("python") == wanted
    return wanted


@pytest.mark.parametrize("level", ["zygote", "bubblewrap", "unshare"], indirect=True)
def test_cpu_spent_by_a_runs_children_counts_towards_its_time_limit(level: str, start: str) -> None:
    if start == "warm":
        prime_warm_pool("python")
    # Four children of 1 s CPU each while the program waits: 4 s of CPU, well under the 3 s wall
    # limit on two cores, for a 2 s time limit.
    result = run_in_sandbox(SandboxRun("python", CHILDREN_BURN_CPU, "solve", ["n"], [{"n": 4}], 2000, 64))

    assert result.isolation == level and result.warm == (start == "warm")
    assert [t.outcome for t in result.tests] == ["time_limit"], result


@pytest.mark.parametrize("level", ["zygote", "bubblewrap", "unshare"], indirect=True)
def test_memory_is_bounded_for_the_run_as_a_whole_not_per_process(level: str, start: str) -> None:
    if start == "warm":
        prime_warm_pool("python")
    # Six children of 50 MB each, every one within its own 128 MB address space: 300 MB in all,
    # for a 64 MB run.
    result = run_in_sandbox(SandboxRun("python", CHILDREN_HOLD_MEMORY, "solve", ["n"], [{"n": 6}], 3000, 64))

    assert result.isolation == level and result.warm == (start == "warm")
    outcome = result.tests[0]
    assert outcome.outcome == "memory_limit" or (outcome.outcome == "ok" and outcome.value <= 2), result


def test_a_runs_cgroup_is_gone_once_the_run_is(with_cgroups: None, settings: Any) -> None:
    from grading.sandbox.cgroups import _layout

    settings.CO_SANDBOX_WARM = 0
    parents = _layout().parents.values()
    before = {parent: set(os.listdir(parent)) for parent in parents}
    result = run_in_sandbox(SandboxRun("python", "def solve(a):\n    return a\n", "solve", ["a"], [{"a": 1}], 1000, 64))
    assert result.status == "completed"

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(set(os.listdir(p)) - before[p] for p in parents):
        time.sleep(0.05)
    assert not any({name for name in set(os.listdir(p)) - before[p] if name.startswith("run-")} for p in parents)


def test_without_cgroups_the_fallback_is_the_rlimits_per_uid_slot_and_process(isolated: str, settings: Any) -> None:
    """CO_SANDBOX_CGROUPS=off (or a machine without them): RLIMIT_NPROC holds the run's own uid
    (its slot) below the process limit, and RLIMIT_AS each process's memory."""
    from tests.grading.sandbox.test_attacks import PY_FORK_BOMB

    settings.CO_SANDBOX_CGROUPS = "off"
    settings.CO_SANDBOX_WARM = 0
    bomb = run_in_sandbox(SandboxRun("python", PY_FORK_BOMB, "attack", ["x"], [{"x": 0}], 2000, 64))
    hog = run_in_sandbox(
        SandboxRun("python", "def solve(a):\n    return len(bytearray(512 * 2**20))\n", "solve", ["a"], [{"a": 0}], 2000, 64)
    )

    assert bomb.tests[0].outcome == "ok" and bomb.tests[0].value.startswith("stopped after "), bomb
    assert int(bomb.tests[0].value.split()[2].rstrip(":")) < current_config().max_processes
    assert [t.outcome for t in hog.tests] == ["memory_limit"], hog


def test_production_refuses_to_run_code_without_the_seccomp_filter(isolated: str, settings: Any, monkeypatch) -> None:
    """libseccomp's binding missing (as on a machine set up by hand): fail closed."""
    import sys

    from grading.sandbox import SandboxUnavailable, seccomp

    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # `import pyseccomp` raises ImportError
    seccomp.filter_program.cache_clear()
    settings.IS_PRODUCTION = True
    try:
        with pytest.raises(SandboxUnavailable, match="seccomp"):
            run_in_sandbox(SandboxRun("python", "def solve(a):\n    return a\n", "solve", ["a"], [{"a": 1}], 1000, 64))
    finally:
        seccomp.filter_program.cache_clear()
