"""Stable time-limit verdicts: judged on CPU time, a time limit re-checked once in a fresh sandbox.

A program at 90% of its CPU limit passes every time while another process keeps a core busy; a
program far over the limit still ends `time_limit`, after exactly one re-run. Only verdicts are
asserted, never timings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

import grading.sandbox
from grading.evaluators.coding import evaluate_code
from grading.problems import CodingProblem
from grading.sandbox import SandboxResult, SandboxRun

LIMIT_MS = 1000

SPIN = {
    # Spends `seconds` of its own CPU time (not wall time: a loaded machine stretches that).
    "python": (
        "import time\n\ndef spin(seconds):\n    start = time.process_time()\n"
        "    while time.process_time() - start < seconds:\n        pass\n    return seconds\n"
    ),
    "javascript": (
        "function spin(seconds) {\n  const start = process.cpuUsage();\n"
        "  for (;;) {\n    const used = process.cpuUsage(start);\n"
        "    if ((used.user + used.system) / 1e6 >= seconds) return seconds;\n  }\n}\n"
    ),
}
FOREVER = {
    "python": "def spin(seconds):\n    while True:\n        pass\n",
    "javascript": "function spin(seconds) {\n  for (;;) {}\n}\n",
}


def _problem(seconds: list[float]) -> CodingProblem:
    return CodingProblem(
        parameters=["seconds"],
        languages={"python": {"entrypoint": "spin"}, "javascript": {"entrypoint": "spin"}},
        time_limit_ms=LIMIT_MS,
        memory_limit_mb=128,
        visible_tests=[{"input": {"seconds": value}, "expected": value} for value in seconds],
    )


@pytest.fixture
def busy_core() -> Iterator[None]:
    """Another process burning a core for the whole test (the machine has two)."""
    process = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        yield
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def sandbox_runs(monkeypatch: pytest.MonkeyPatch) -> list[SandboxRun]:
    """Every sandbox run the evaluator starts (the real sandbox runs them)."""
    runs: list[SandboxRun] = []
    real: Callable[[SandboxRun], SandboxResult] = grading.sandbox.run_in_sandbox

    def counted(run: SandboxRun) -> SandboxResult:
        runs.append(run)
        return real(run)

    monkeypatch.setattr(grading.sandbox, "run_in_sandbox", counted)
    return runs


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_a_solution_at_nine_tenths_of_the_limit_passes_every_time_on_a_busy_machine(busy_core, settings, language: str) -> None:
    problem = _problem([0.9 * LIMIT_MS / 1000, 0.9 * LIMIT_MS / 1000])

    verdicts = [evaluate_code(bundle=problem, language=language, code=SPIN[language], include_hidden=False) for _ in range(3)]

    assert [(v.status, [d["outcome"] for d in v.visible_details]) for v in verdicts] == [("passed", ["passed", "passed"])] * 3


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_a_solution_far_over_the_limit_is_a_time_limit_after_one_re_run(
    busy_core, sandbox_runs: list[SandboxRun], language: str
) -> None:
    problem = _problem([0.0, 5.0, 0.0])

    verdict = evaluate_code(bundle=problem, language=language, code=FOREVER[language], include_hidden=False)

    assert verdict.status == "timeout"
    assert [(d["outcome"], d["error"]) for d in verdict.visible_details] == [
        ("time_limit", "time limit exceeded (confirmed by a second run)"),
        ("time_limit", "not run: test 0 exceeded the time limit"),
        ("time_limit", "not run: test 0 exceeded the time limit"),
    ]
    # The first run, then one re-run from the test that timed out, with a wider wall backstop only.
    assert [(len(run.inputs), run.time_limit_ms) for run in sandbox_runs] == [(3, LIMIT_MS), (3, LIMIT_MS)]
    first, again = (run.wall_limit_ms for run in sandbox_runs)
    assert first is None and 6 * LIMIT_MS <= again <= 30 * LIMIT_MS  # wider on a loaded machine


def test_the_re_run_starts_at_the_test_that_timed_out_and_keeps_the_ones_before(sandbox_runs: list[SandboxRun]) -> None:
    code = "def spin(seconds):\n    while seconds > 1:\n        pass\n    return seconds\n"
    problem = _problem([0.0, 1.0, 5.0, 0.0])

    verdict = evaluate_code(bundle=problem, language="python", code=code, include_hidden=False)

    assert [d["outcome"] for d in verdict.visible_details] == ["passed", "passed", "time_limit", "time_limit"]
    assert [d["error"] for d in verdict.visible_details][2:] == [
        "time limit exceeded (confirmed by a second run)",
        "not run: test 2 exceeded the time limit",
    ]
    assert [run.inputs for run in sandbox_runs] == [
        [{"seconds": 0.0}, {"seconds": 1.0}, {"seconds": 5.0}, {"seconds": 0.0}],
        [{"seconds": 5.0}, {"seconds": 0.0}],
    ]


def test_a_program_within_its_limit_runs_once(sandbox_runs: list[SandboxRun]) -> None:
    verdict = evaluate_code(bundle=_problem([0.0, 0.0]), language="python", code=SPIN["python"], include_hidden=False)

    assert verdict.status == "passed"
    assert len(sandbox_runs) == 1
