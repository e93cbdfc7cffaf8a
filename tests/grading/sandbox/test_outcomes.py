"""Per-test outcomes in real sandboxes, Python and JavaScript: correct, wrong answer, runtime
error, syntax error, time limit, memory limit, output limit, non-JSON values, a missing
entrypoint, and all tests of a run sharing one process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from grading.sandbox import SandboxRun, SandboxTestResult, run_in_sandbox

PAIRS = [{"a": 1, "b": 2}, {"a": 2, "b": 5}, {"a": 10, "b": -4}]
FIVE = [{"a": a, "b": 1} for a in range(5)]

PROGRAMS = {
    "python": {
        "correct": "def solve(a, b):\n    return a + b\n",
        "wrong": "def solve(a, b):\n    return a - b\n",
        "runtime_error": ("def solve(a, b):\n    if a == 2:\n        raise ValueError(f'no twos, got {a}')\n    return a + b\n"),
        "division": "def solve(a, b):\n    return a // (b - b)\n",
        "module_error": "import math\nvalue = math.sqrt(-1)\n\ndef solve(a, b):\n    return a\n",
        "syntax_error": "def solve(a, b)\n    return a + b\n",
        "busy_loop": "def solve(a, b):\n    if a == 2:\n        while True:\n            pass\n    return a + b\n",
        "sleep": "import time\n\ndef solve(a, b):\n    if a == 2:\n        time.sleep(1000)\n    return a + b\n",
        "memory": (
            "def solve(a, b):\n"
            "    if a == 2:\n"
            "        blocks = [bytearray(1024 * 1024) for _ in range(2 * 64)]\n"
            "        return len(blocks)\n"
            "    return a + b\n"
        ),
        "print_flood": "def solve(a, b):\n    print('x' * (50 * 1024 * 1024))\n    return a + b\n",
        "print_lines": "def solve(a, b):\n    for i in range(10 ** 6):\n        print(i)\n    return a + b\n",
        "print_small": "def solve(a, b):\n    print('working on', a, b)\n    return a + b\n",
        "big_return": "def solve(a, b):\n    return 'x' * (10 * 1024 * 1024)\n",
        "not_json": "def solve(a, b):\n    return {a, b}\n",
        "nan": "def solve(a, b):\n    return float('nan')\n",
        "missing_entrypoint": "def solution(a, b):\n    return a + b\n",
        "counter": "import os\n\ncalls = []\n\ndef solve(a, b):\n    calls.append(a)\n    return [len(calls), os.getpid()]\n",
        "echo": "def solve(a, b):\n    return [a, b]\n",
    },
    "javascript": {
        "correct": "function solve(a, b) {\n  return a + b;\n}\n",
        "wrong": "function solve(a, b) {\n  return a - b;\n}\n",
        "runtime_error": (
            "function solve(a, b) {\n  if (a === 2) {\n    throw new RangeError(`no twos, got ${a}`);\n  }\n  return a + b;\n}\n"
        ),
        "division": "function solve(a, b) {\n  return a.toFixed(-1);\n}\n",
        "module_error": "const value = undefinedThing + 1;\n\nfunction solve(a, b) {\n  return a;\n}\n",
        "syntax_error": "function solve(a, b) {\n  return a +;\n}\n",
        "busy_loop": "function solve(a, b) {\n  if (a === 2) {\n    for (;;) {}\n  }\n  return a + b;\n}\n",
        "sleep": (
            "function solve(a, b) {\n"
            "  if (a === 2) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);\n"
            "  return a + b;\n"
            "}\n"
        ),
        "memory": (
            "function solve(a, b) {\n"
            "  if (a === 2) {\n"
            "    const blocks = [];\n"
            "    for (let i = 0; i < 2 * 64; i++) blocks.push(new Array(128 * 1024).fill(i + 0.5));\n"
            "    return blocks.length;\n"
            "  }\n"
            "  return a + b;\n"
            "}\n"
        ),
        "print_flood": "function solve(a, b) {\n  console.log('x'.repeat(50 * 1024 * 1024));\n  return a + b;\n}\n",
        "print_lines": "function solve(a, b) {\n  for (let i = 0; i < 2e5; i++) console.log(i);\n  return a + b;\n}\n",
        "print_small": "function solve(a, b) {\n  console.log('working on', a, b);\n  return a + b;\n}\n",
        "big_return": "function solve(a, b) {\n  return 'x'.repeat(10 * 1024 * 1024);\n}\n",
        "not_json": "function solve(a, b) {\n  return BigInt(a) + BigInt(b);\n}\n",
        "nan": "function solve(a, b) {\n  return [a / 0];\n}\n",
        "missing_entrypoint": "function solution(a, b) {\n  return a + b;\n}\n",
        "counter": "const calls = [];\n\nfunction solve(a, b) {\n  calls.push(a);\n  return [calls.length, process.pid];\n}\n",
        "echo": "const solve = (a, b) => [a, b];\n",
    },
}

LANGUAGES = ["python", "javascript"]


def ok(value: object) -> SandboxTestResult:
    return SandboxTestResult("ok", value=value)


def outcomes(result) -> list[tuple[str, object, str | None]]:
    return [(test.outcome, test.value, test.error) for test in result.tests]


@pytest.mark.parametrize("language", LANGUAGES)
def test_correct_program_returns_every_value_in_order(sandbox, language: str) -> None:
    result = sandbox(language, PROGRAMS[language]["correct"], PAIRS)

    assert result.status == "completed"
    assert result.error is None
    assert [(t.outcome, t.value, t.error) for t in result.tests] == [("ok", 3, None), ("ok", 7, None), ("ok", 6, None)]
    assert all(isinstance(t.time_ms, int) and t.time_ms >= 0 for t in result.tests)
    assert result.isolation in {"zygote", "bubblewrap", "unshare", "none"}
    assert result.wall_ms > 0
    assert result.peak_memory_kb > 1000


@pytest.mark.parametrize("language", LANGUAGES)
def test_wrong_answer_is_a_returned_value_the_caller_compares(sandbox, language: str) -> None:
    result = sandbox(language, PROGRAMS[language]["wrong"], PAIRS)

    assert result.status == "completed"
    assert [t.value for t in result.tests] == [-1, -3, 14]
    assert [t.outcome for t in result.tests] == ["ok", "ok", "ok"]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("python", "ValueError: no twos, got 2 (line 3)"),
        ("javascript", "RangeError: no twos, got 2 (line 3)"),
    ],
)
def test_runtime_error_names_the_exception_and_line_and_other_tests_still_run(sandbox, language, message) -> None:
    result = sandbox(language, PROGRAMS[language]["runtime_error"], PAIRS)

    assert result.status == "completed"
    assert outcomes(result) == [("ok", 3, None), ("runtime_error", None, message), ("ok", 6, None)]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("python", "ZeroDivisionError: integer division or modulo by zero (line 2)"),
        ("javascript", "RangeError: toFixed() digits argument must be between 0 and 100 (line 2)"),
    ],
)
def test_errors_from_the_runtime_carry_no_host_paths_or_harness_frames(sandbox, language, message) -> None:
    result = sandbox(language, PROGRAMS[language]["division"], PAIRS[:1])

    assert outcomes(result) == [("runtime_error", None, message)]
    for forbidden in ("/work", "/sandbox", "harness", "Traceback", "    at "):
        assert forbidden not in repr(result)


@pytest.mark.parametrize(
    ("language", "code", "message"),
    [
        ("python", "import numpy\n\ndef solve(a, b):\n    return a\n", "ModuleNotFoundError: No module named 'numpy' (line 1)"),
        (
            "javascript",
            "const _ = require('lodash');\nfunction solve(a, b) {\n  return a;\n}\n",
            "Error: Cannot find module 'lodash' (line 1)",
        ),
    ],
)
def test_only_the_standard_library_is_there(sandbox, language: str, code: str, message: str) -> None:
    result = sandbox(language, code, PAIRS[:1])

    assert outcomes(result) == [("runtime_error", None, message)]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("python", "ValueError: math domain error (line 2)"),
        ("javascript", "ReferenceError: undefinedThing is not defined (line 1)"),
    ],
)
def test_an_error_while_loading_the_program_fails_every_test(sandbox, language, message) -> None:
    result = sandbox(language, PROGRAMS[language]["module_error"], PAIRS)

    assert result.status == "completed"
    assert outcomes(result) == [("runtime_error", None, message)] * 3


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("python", "SyntaxError: expected ':' (line 1, column 16)"),
        ("javascript", "SyntaxError: Unexpected token ';' (line 2, column 13)"),
    ],
)
def test_syntax_error_is_reported_as_such_with_line_and_column(sandbox, language, message) -> None:
    result = sandbox(language, PROGRAMS[language]["syntax_error"], PAIRS)

    assert result.status == "syntax_error"
    assert result.tests == []
    assert result.error == message


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("program", ["busy_loop", "sleep"])
def test_time_limit_in_the_middle_test_keeps_the_earlier_results_and_ends_the_run(sandbox, language, program) -> None:
    limit_ms = 500
    result = sandbox(language, PROGRAMS[language][program], FIVE, time_limit_ms=limit_ms)

    assert result.status == "completed"
    assert outcomes(result) == [
        ("ok", 1, None),
        ("ok", 2, None),
        ("time_limit", None, "time limit exceeded"),
        ("time_limit", None, "not run: test 2 exceeded the time limit"),
        ("time_limit", None, "not run: test 2 exceeded the time limit"),
    ]
    # The limit is enforced inside the run: it ends right after the test that ran out of time.
    assert [test.ran for test in result.tests] == [True, True, True, False, False]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_program_slow_on_every_input_costs_one_time_limit_not_one_per_test(sandbox, language: str) -> None:
    inputs = [{"a": 2, "b": 0}] * 10
    result = sandbox(language, PROGRAMS[language]["busy_loop"], inputs, time_limit_ms=500)

    assert [t.outcome for t in result.tests] == ["time_limit"] * 10
    assert [t.ran for t in result.tests] == [True] + [False] * 9  # one time limit, not ten


def test_a_slow_test_that_still_returns_is_time_limit(sandbox) -> None:
    # The CPU-time timer is the harness's; a program that dodges it still ran too long.
    code = (
        "import signal, time\n\ndef solve(a, b):\n    signal.setitimer(signal.ITIMER_PROF, 0)\n"
        "    signal.setitimer(signal.ITIMER_REAL, 0)\n    end = time.process_time() + 0.7\n"
        "    while time.process_time() < end:\n        pass\n    return a + b\n"
    )
    result = sandbox("python", code, PAIRS[:1], time_limit_ms=500)

    assert outcomes(result) == [("time_limit", None, "time limit exceeded")]


@pytest.mark.parametrize("language", LANGUAGES)
def test_memory_limit_when_allocating_twice_the_limit(sandbox, language: str) -> None:
    result = sandbox(language, PROGRAMS[language]["memory"], PAIRS[:2], memory_limit_mb=64)

    assert result.status == "completed"
    assert outcomes(result) == [("ok", 3, None), ("memory_limit", None, "memory limit exceeded")]


def test_python_memory_limit_leaves_later_tests_running(sandbox) -> None:
    result = sandbox("python", PROGRAMS["python"]["memory"], PAIRS, memory_limit_mb=64)

    assert outcomes(result) == [("ok", 3, None), ("memory_limit", None, "memory limit exceeded"), ("ok", 6, None)]


def test_javascript_heap_exhaustion_ends_the_run_and_marks_the_rest(sandbox) -> None:
    # V8 cannot recover from an exhausted heap: the process ends, the tests after it are not run.
    result = sandbox("javascript", PROGRAMS["javascript"]["memory"], PAIRS, memory_limit_mb=64)

    assert outcomes(result) == [
        ("ok", 3, None),
        ("memory_limit", None, "memory limit exceeded"),
        ("memory_limit", None, "not run: the program was stopped during test 1"),
    ]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("program", ["print_flood", "print_lines"])
def test_printing_past_the_output_limit_is_output_limit(sandbox, language: str, program: str) -> None:
    result = sandbox(language, PROGRAMS[language][program], PAIRS[:2], output_limit_bytes=64 * 1024)

    assert result.status == "completed"
    assert outcomes(result) == [("output_limit", None, "output limit exceeded (printed too much)")] * 2


@pytest.mark.parametrize("language", LANGUAGES)
def test_printing_a_little_is_fine_and_goes_nowhere(sandbox, language: str) -> None:
    result = sandbox(language, PROGRAMS[language]["print_small"], PAIRS)

    assert outcomes(result) == [("ok", 3, None), ("ok", 7, None), ("ok", 6, None)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_returning_a_value_larger_than_the_output_limit_is_output_limit(sandbox, language: str) -> None:
    result = sandbox(language, PROGRAMS[language]["big_return"], PAIRS[:2])

    assert outcomes(result) == [("output_limit", None, "the return value is larger than 65536 bytes")] * 2


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("python", "the return value is not JSON-serializable: TypeError: Object of type set is not JSON serializable"),
        ("javascript", "the return value is not JSON-serializable: TypeError: Do not know how to serialize a BigInt"),
    ],
)
def test_a_value_json_cannot_hold_is_a_runtime_error(sandbox, language: str, message: str) -> None:
    result = sandbox(language, PROGRAMS[language]["not_json"], PAIRS[:1])

    assert outcomes(result) == [("runtime_error", None, message)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_nan_and_infinity_are_refused(sandbox, language: str) -> None:
    result = sandbox(language, PROGRAMS[language]["nan"], PAIRS[:1])

    assert outcomes(result) == [("runtime_error", None, "the return value contains NaN or Infinity, which JSON cannot hold")]


@pytest.mark.parametrize("language", LANGUAGES)
def test_missing_entrypoint_fails_every_test_with_a_clear_message(sandbox, language: str) -> None:
    result = sandbox(language, PROGRAMS[language]["missing_entrypoint"], PAIRS)

    assert result.status == "completed"
    assert outcomes(result) == [("runtime_error", None, "entrypoint 'solve' is not defined")] * 3


@pytest.mark.parametrize("language", LANGUAGES)
def test_all_tests_of_a_run_share_one_process(sandbox, language: str) -> None:
    inputs = [{"a": a, "b": 0} for a in range(8)]
    result = sandbox(language, PROGRAMS[language]["counter"], inputs)

    assert [t.value[0] for t in result.tests] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert len({t.value[1] for t in result.tests}) == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_two_runs_share_nothing(sandbox, language: str) -> None:
    first = sandbox(language, PROGRAMS[language]["counter"], PAIRS)
    second = sandbox(language, PROGRAMS[language]["counter"], PAIRS)

    assert [t.value[0] for t in first.tests] == [t.value[0] for t in second.tests] == [1, 2, 3]


@pytest.mark.parametrize("language", LANGUAGES)
def test_json_values_round_trip(sandbox, language: str) -> None:
    values = [
        {"a": [1, 2.5, -3, 10**15], "b": {"nested": [True, False, None], "ünï": "çødé ✓"}},
        {"a": "", "b": []},
        {"a": [[[[[1]]]]], "b": "x" * 10000},
    ]
    result = sandbox(language, PROGRAMS[language]["echo"], values)

    assert [t.value for t in result.tests] == [[v["a"], v["b"]] for v in values]


def test_concurrent_runs_from_threads_keep_to_themselves(sandbox) -> None:
    # The pipeline runs visible and hidden tests in parallel, reference checks four at a time.
    jobs = [(language, offset) for offset in range(4) for language in LANGUAGES]

    def one(job: tuple[str, int]):
        language, offset = job
        return sandbox(language, PROGRAMS[language]["correct"], [{"a": offset, "b": k} for k in range(5)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, jobs))

    for (_language, offset), result in zip(jobs, results, strict=True):
        assert [(t.outcome, t.value) for t in result.tests] == [("ok", offset + k) for k in range(5)]


def test_javascript_async_entrypoints_are_awaited(sandbox) -> None:
    code = "async function solve(a, b) {\n  await new Promise((r) => setTimeout(r, 10));\n  return a * b;\n}\n"
    result = sandbox("javascript", code, PAIRS)

    assert outcomes(result) == [("ok", 2, None), ("ok", 10, None), ("ok", -40, None)]


def test_javascript_undefined_is_null(sandbox) -> None:
    result = sandbox("javascript", "function solve(a, b) {}\n", PAIRS[:1])

    assert outcomes(result) == [("ok", None, None)]


def test_python_sys_exit_is_a_runtime_error(sandbox) -> None:
    code = "import sys\n\ndef solve(a, b):\n    if a == 2:\n        sys.exit(3)\n    return a\n"
    result = sandbox("python", code, PAIRS)

    assert outcomes(result) == [("ok", 1, None), ("runtime_error", None, "SystemExit: 3 (line 5)"), ("ok", 10, None)]


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "import os\n\ndef solve(a, b):\n    os._exit(0)\n"),
        ("javascript", "function solve(a, b) {\n  process.reallyExit(0);\n}\n"),
    ],
)
def test_a_program_that_exits_mid_test_fails_that_test_and_the_rest(sandbox, language: str, code: str) -> None:
    result = sandbox(language, code, PAIRS)

    assert outcomes(result) == [
        ("runtime_error", None, "the program exited during the test (exit code 0)"),
        ("runtime_error", None, "not run: the program was stopped during test 0"),
        ("runtime_error", None, "not run: the program was stopped during test 0"),
    ]


def test_no_inputs_still_checks_the_syntax(sandbox) -> None:
    assert sandbox("python", PROGRAMS["python"]["syntax_error"], [], parameters=["a", "b"]).status == "syntax_error"
    result = sandbox("python", PROGRAMS["python"]["correct"], [], parameters=["a", "b"])
    assert (result.status, result.tests) == ("completed", [])


@pytest.mark.parametrize(
    "change",
    [
        {"language": "ruby"},
        {"entrypoint": "not an identifier"},
        {"entrypoint": "class"},
        {"inputs": [{"a": 1}]},
        {"time_limit_ms": 0},
        {"memory_limit_mb": 1},
        {"code": "x" * (64 * 1024 + 1)},
    ],
)
def test_a_run_that_breaks_the_contract_is_refused(change: dict) -> None:
    fields = {
        "language": "python",
        "code": "def solve(a, b):\n    return a\n",
        "entrypoint": "solve",
        "parameters": ["a", "b"],
        "inputs": [{"a": 1, "b": 2}],
        "time_limit_ms": 1000,
        "memory_limit_mb": 64,
    }
    with pytest.raises(ValueError):
        run_in_sandbox(SandboxRun(**{**fields, **change}))
