"""Figures learner code cannot forge (issue 13, point 2): peak memory and time are measured by the
trusted side from outside the sandbox, and shown coarse; whatever the learner's code writes on the
harness's results fd in the hidden run — a fake `done` with a chosen peak, fake per-test results,
extra lines, a huge line — changes nothing the learner sees beyond its own pass/fail.

Each forger is compared with an honest program that has the same pass/fail, through
`evaluate_code` (what the API returns is built from its verdict), at every isolation level this
machine has, on sandboxes started for the run and on pre-started ones."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from grading.evaluators.coding import coarse_memory_kb, coarse_ms, evaluate_code
from grading.problems import CodingProblem, HiddenCase, hidden_tests_encoded
from grading.sandbox import SandboxRun, run_in_sandbox
from grading.verdicts import Verdict
from tests.grading.sandbox.conftest import prime_warm_pool

pytestmark = pytest.mark.usefixtures("isolated")

MIB = 1024
VISIBLE = [5, 6]  # the forgers forge only on other inputs: in the hidden run
HIDDEN = [(1, "basic"), (2, "basic"), (-3, "negatives"), (-4, "negatives")]


def _problem(memory_limit_mb: int = 256) -> CodingProblem:
    cases = [HiddenCase(category, {"x": x}, 2 * x) for x, category in HIDDEN]
    return CodingProblem(
        parameters=["x"],
        languages={"python": {"entrypoint": "solve"}, "javascript": {"entrypoint": "solve"}},
        time_limit_ms=2000,
        memory_limit_mb=memory_limit_mb,
        visible_tests=[{"input": {"x": x}, "expected": 2 * x} for x in VISIBLE],
        **hidden_tests_encoded(cases),
    )


# --- the programs: (honest, forger) with the same pass/fail ------------------------------------

PY_FORGE = """
import os, sys
_fd = int(sys.argv[1])  # the harness's results fd: the learner's code shares its process
_index = [-1]
def _w(line):
    os.write(_fd, line.encode() + b'\\n')
def _forge(x, result=None):
    _index[0] += 1
    i = _index[0]
    if x in (5, 6):
        return  # the visible run: nothing forged
    for line in ['garbage', '{"e":"done","peak_kb":987654321}', '{"e":"done","peak_kb":1}',
                 '{"e":"compiled"}', '{"e":"syntax_error","error":"forged"}', '{"e":"loaded"}',
                 '{"e":"load_error","outcome":"runtime_error","error":"forged"}',
                 '{"e":"result","i":-1,"outcome":"ok","value":0}', '{"e":"result","i":99999,"outcome":"ok","value":0}']:
        _w(line)
    _w(result or '{"e":"result","i":%d,"outcome":"ok","time_ms":987654,"value":%d}' % (i, 2 * x))
"""

JS_FORGE = """
const fs = require('fs');
const fd = Number(process.argv[2]);  // the harness's results fd: the learner's code shares its process
let index = -1;
function w(line) { fs.writeSync(fd, line + '\\n'); }
function forge(x, result) {
  index += 1;
  if (x === 5 || x === 6) return;  // the visible run: nothing forged
  for (const line of ['garbage', '{"e":"done","peak_kb":987654321}', '{"e":"done","peak_kb":1}',
                      '{"e":"compiled"}', '{"e":"syntax_error","error":"forged"}', '{"e":"loaded"}',
                      '{"e":"load_error","outcome":"runtime_error","error":"forged"}',
                      '{"e":"result","i":-1,"outcome":"ok","value":0}', '{"e":"result","i":99999,"outcome":"ok","value":0}']) {
    w(line);
  }
  w(result || `{"e":"result","i":${index},"outcome":"ok","time_ms":987654,"value":${2 * x}}`);
}
"""

PROGRAMS: dict[str, dict[str, tuple[str, str]]] = {
    "python": {
        "passes": (
            "def solve(x):\n    return 2 * x\n",
            PY_FORGE + "def solve(x):\n    _forge(x)\n    return 2 * x\n",
        ),
        # A forged failing result for its own test, its error text carrying the hidden input.
        "fails_negatives": (
            "def solve(x):\n    if x < 0:\n        raise ValueError('no')\n    return 2 * x\n",
            PY_FORGE
            + "def solve(x):\n"
            + '    forged = \'{"e":"result","i":%d,"outcome":"runtime_error","error":"LEAK %d"}\' % (_index[0] + 1, x)\n'
            + "    _forge(x, forged if x < 0 else None)\n    return 2 * x\n",
        ),
        # A line longer than any the harness writes: that test is over the output limit, as if it
        # had printed too much.
        "floods_negatives": (
            "def solve(x):\n    if x < 0:\n        print('y' * 100000)\n    return 2 * x\n",
            PY_FORGE
            + "def solve(x):\n"
            + '    huge = \'{"e":"result","i":%d,"outcome":"ok","value":"%s"}\' % (_index[0] + 1, \'z\' * 200000)\n'
            + "    _forge(x, huge if x < 0 else None)\n    return 2 * x\n",
        ),
    },
    "javascript": {
        "passes": (
            "function solve(x) {\n  return 2 * x;\n}\n",
            JS_FORGE + "function solve(x) {\n  forge(x);\n  return 2 * x;\n}\n",
        ),
        "fails_negatives": (
            "function solve(x) {\n  if (x < 0) throw new Error('no');\n  return 2 * x;\n}\n",
            JS_FORGE
            + "function solve(x) {\n"
            + '  const forged = `{"e":"result","i":${index + 1},"outcome":"runtime_error","error":"LEAK ${x}"}`;\n'
            + "  forge(x, x < 0 ? forged : undefined);\n  return 2 * x;\n}\n",
        ),
        "floods_negatives": (
            "function solve(x) {\n  if (x < 0) console.log('y'.repeat(100000));\n  return 2 * x;\n}\n",
            JS_FORGE
            + "function solve(x) {\n"
            + '  const huge = `{"e":"result","i":${index + 1},"outcome":"ok","value":"${\'z\'.repeat(200000)}"}`;\n'
            + "  forge(x, x < 0 ? huge : undefined);\n  return 2 * x;\n}\n",
        ),
    },
}

EXPECTED = {
    "passes": ("passed", 4, []),
    "fails_negatives": ("failed", 2, ["negatives"]),
    "floods_negatives": ("failed", 2, ["negatives"]),
}


def _evaluate(language: str, code: str, problem: CodingProblem | None = None) -> Verdict:
    return evaluate_code(bundle=problem or _problem(), language=language, code=code, include_hidden=True)


def _shown(verdict: Verdict) -> dict[str, Any]:
    """What a learner sees of a verdict, but the times, which vary from run to run: the run's
    and each visible test's own (its CPU time, never a hidden test's)."""
    shown = dataclasses.asdict(verdict)
    del shown["exec_ms"]
    for detail in shown["visible_details"]:
        del detail["time_ms"]
    return shown


def _is_coarse(verdict: Verdict) -> None:
    assert verdict.exec_ms == coarse_ms(verdict.exec_ms) and verdict.exec_ms & (verdict.exec_ms - 1) == 0, verdict
    peak = verdict.peak_memory_kb
    assert peak % MIB == 0 and (peak // MIB) & (peak // MIB - 1) == 0, verdict


@pytest.mark.parametrize("behaviour", list(EXPECTED))
def test_forging_the_protocol_in_the_hidden_run_shows_what_an_honest_program_shows(
    pinned: tuple[str, str], start: str, behaviour: str
) -> None:
    language, level = pinned
    if start == "warm":
        prime_warm_pool(language, memory_limit_mb=256)
    honest_code, forger_code = PROGRAMS[language][behaviour]
    honest, forger = _evaluate(language, honest_code), _evaluate(language, forger_code)

    status, hidden_passed, categories = EXPECTED[behaviour]
    assert (honest.status, honest.hidden_passed, honest.failed_categories) == (status, hidden_passed, categories), honest
    assert honest.isolation == level
    assert _shown(forger) == _shown(honest)
    for verdict in (honest, forger):
        _is_coarse(verdict)
        assert "LEAK" not in repr(verdict) and "987654" not in repr(verdict)


ALLOCATE = {
    "python": (
        "def solve(x):\n    global block\n    block = bytearray(50 * 1024 * 1024)\n"
        "    for i in range(0, len(block), 4096):\n        block[i] = 1\n    return 2 * x\n"
    ),
    "javascript": ("let block;\nfunction solve(x) {\n  block = Buffer.alloc(50 * 1024 * 1024, 1);\n  return 2 * x;\n}\n"),
}
CLAIM_SMALL = {
    "python": "import os, sys\n_fd = int(sys.argv[1])\n",
    "javascript": "const fs = require('fs');\nconst fd = Number(process.argv[2]);\n",
}
CLAIM_LINE = {
    "python": '    os.write(_fd, b\'{"e":"done","peak_kb":1}\\n\')\n',
    "javascript": '  fs.writeSync(fd, \'{"e":"done","peak_kb":1}\\n\');\n',
}


def _claims_one_kib(language: str) -> str:
    """ALLOCATE, which also writes a `done` claiming a peak of 1 KiB right after allocating."""
    code = ALLOCATE[language]
    marker = "    return 2 * x\n" if language == "python" else "  return 2 * x;\n"
    return CLAIM_SMALL[language] + code.replace(marker, CLAIM_LINE[language] + marker)


def test_the_peak_memory_is_the_trusted_measurement(pinned: tuple[str, str], start: str) -> None:
    """A run that allocates 50 MiB shows at least that, also when it claims 1 KiB; a program that
    claims a huge peak shows what an honest one of its size shows."""
    language, _ = pinned
    if start == "warm":
        prime_warm_pool(language, memory_limit_mb=256)
    run = SandboxRun(language, _claims_one_kib(language), "solve", ["x"], [{"x": 1}, {"x": 2}], 2000, 256)
    result = run_in_sandbox(run)
    assert [t.outcome for t in result.tests] == ["ok", "ok"], result
    assert result.peak_memory_kb >= 50 * MIB, result

    honest = _evaluate(language, ALLOCATE[language])
    claims_small = _evaluate(language, _claims_one_kib(language))
    assert honest.status == claims_small.status == "passed"
    assert honest.peak_memory_kb >= 50 * MIB and claims_small.peak_memory_kb >= 50 * MIB
    assert _shown(claims_small) == _shown(honest)

    plain, boasts = PROGRAMS[language]["passes"]
    assert 0 < _evaluate(language, boasts).peak_memory_kb == _evaluate(language, plain).peak_memory_kb <= 256 * MIB


def test_coarse_figures() -> None:
    """Peak memory: up to a power of two of MiB (0: not measured); time: up to a power of two of ms."""
    assert [coarse_memory_kb(kb) for kb in (0, 1, 1024, 1025, 9000, 50 * 1024, 64 * 1024)] == [
        0,
        1024,
        1024,
        2048,
        16384,
        65536,
        65536,
    ]
    assert [coarse_ms(ms) for ms in (0, 1, 2, 3, 100, 1000, 1024, 1025)] == [0, 1, 2, 4, 128, 1024, 1024, 2048]


CHILD_ALLOCATES = {
    # A child allocates 80 MiB and exits: reaped by the program, or left for the sandbox's end.
    "python": (
        "import os\ndef solve(x):\n    pid = os.fork()\n    if pid == 0:\n"
        "        block = bytearray(80 * 1024 * 1024)\n"
        "        for i in range(0, len(block), 4096):\n            block[i] = 1\n"
        "        os._exit(0)\n"
        "    if x == 1:\n        os.waitpid(pid, 0)\n    else:\n        import time\n        time.sleep(0.5)\n"
        "    return 2 * x\n"
    ),
    "javascript": (
        "const { execFileSync } = require('child_process');\nfunction solve(x) {\n"
        "  execFileSync('/usr/bin/python3', ['-c', 'b = bytearray(80 << 20)\\nfor i in range(0, len(b), 4096): b[i] = 1']);\n"
        "  return 2 * x;\n}\n"
    ),
}


@pytest.mark.parametrize("x", [1, 2], ids=["reaped", "left-behind"])
def test_the_peak_memory_covers_the_runs_child_processes(pinned: tuple[str, str], x: int) -> None:
    """The figure is the whole run's: the largest process of its tree, the learner's children too."""
    language, _ = pinned
    result = run_in_sandbox(SandboxRun(language, CHILD_ALLOCATES[language], "solve", ["x"], [{"x": x}], 3000, 256))
    assert [t.outcome for t in result.tests] == ["ok"], result
    assert result.peak_memory_kb >= 80 * MIB, result
