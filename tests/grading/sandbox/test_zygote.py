"""The fork helper (grading/sandbox/zygote.py): what a forked sandbox inherits and what it
cannot; the helper never holds a job; it is restarted when it dies; a fork of ours gets its own.

The attack suite (test_attacks.py) runs Python on this level already (it is the default where
the tests run as root, as here and in CI); these are the properties only a fork helper could break."""

from __future__ import annotations

import os
import re
import secrets
import signal
from pathlib import Path

import pytest
from django.conf import settings

from grading.sandbox import SandboxRun, run_in_sandbox
from grading.sandbox.isolation import language_level
from grading.sandbox.warm import warm_pool
from grading.sandbox.zygote import zygote
from grading.sandbox.zygote_helper import BACKGROUND_NICE
from tests.grading.sandbox.conftest import prime_warm_pool

REPO_ROOT = Path(__file__).parents[3]


@pytest.fixture
def zygote_level(isolated: str, settings) -> str:
    """Python on the fork helper, every sandbox forked for its run (no pre-started ones)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the fork helper must work there")
        pytest.skip("the fork helper needs root")
    settings.CO_SANDBOX_WARM = 0
    assert language_level("python") == "zygote"
    return "zygote"


def _run(code: str, inputs: list[dict], **overrides) -> object:
    parameters = list(inputs[0]) if inputs else []
    fields = {"time_limit_ms": 3000, "memory_limit_mb": 256, **overrides}
    return run_in_sandbox(SandboxRun("python", code, "solve", parameters, inputs, **fields))


SCAN_OWN_MEMORY = """
def solve(head, tail):
    # Look for head immediately followed by tail anywhere in this process's memory, without ever
    # putting the two together here (that copy would be found).
    found = 0
    with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:
        for line in maps:
            fields = line.split()
            if 'r' not in fields[1] or (len(fields) > 5 and fields[5] in ('[vvar]', '[vsyscall]')):
                continue
            start, end = (int(x, 16) for x in fields[0].split('-'))
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            at = data.find(head)
            while at >= 0:
                if data[at + len(head): at + len(head) + len(tail)] == tail:
                    found += 1
                at = data.find(head, at + 1)
    return found
"""


SCAN_HEX = SCAN_OWN_MEMORY.replace(
    "def solve(head, tail):", "def solve(head, tail):\n    head, tail = bytes.fromhex(head), bytes.fromhex(tail)"
)


def _memory_of(pid: int) -> bytes:
    """Everything readable in a process's memory (we are root)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return b"".join(chunks)


def test_no_later_sandbox_and_not_the_helper_ever_holds_an_earlier_runs_inputs(zygote_level: str) -> None:
    head, tail = f"hidden-{secrets.token_hex(6)}", secrets.token_hex(6)
    marker = head + tail
    earlier = _run("def solve(secret):\n    return len(secret)\n", [{"secret": marker}] * 3)
    assert [t.value for t in earlier.tests] == [len(marker)] * 3

    later = _run(SCAN_HEX, [{"head": head.encode().hex(), "tail": tail.encode().hex()}], time_limit_ms=10000)
    assert later.isolation == "zygote" and later.tests[0].outcome == "ok", later
    assert later.tests[0].value == 0  # nothing of the earlier run in the memory it was forked with

    helper_pid = zygote()._process.pid
    assert marker.encode() not in _memory_of(helper_pid)


def test_the_memory_scan_finds_what_is_there(zygote_level: str) -> None:
    """The control for the test above: the same scan finds a marker that IS in the sandbox's memory."""
    head, tail = f"kept-{secrets.token_hex(6)}", secrets.token_hex(6)
    code = "KEPT = None\n" + SCAN_HEX.replace(
        "    found = 0\n", "    global KEPT\n    KEPT = head + tail  # the two together, in this memory\n    found = 0\n"
    )
    result = _run(code, [{"head": head.encode().hex(), "tail": tail.encode().hex()}], time_limit_ms=10000)
    assert result.tests[0].outcome == "ok", result
    assert result.tests[0].value >= 1


WHO_AM_I = """
import os, socket
def solve(a):
    with open('/proc/self/cmdline', 'rb') as handle:
        cmdline = handle.read().decode(errors='replace')
    return {
        'pid': os.getpid(),
        'processes': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
        'hostname': socket.gethostname(),
        'root': sorted(os.listdir('/')),
        'cmdline': cmdline,
        'cwd': os.getcwd(),
        'uid': [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
        'environ': dict(os.environ),
    }
"""


def test_a_forked_sandbox_sees_only_itself(zygote_level: str) -> None:
    result = _run(WHO_AM_I, [{"a": 1}])
    seen = result.tests[0].value
    assert result.isolation == "zygote", result
    assert seen["pid"] == 1 and seen["processes"] == [1]  # not the helper, not its forking parent
    assert seen["hostname"] == "sandbox"
    assert set(seen["root"]) <= {"bin", "dev", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}
    assert str(REPO_ROOT) not in seen["cmdline"] and "/work" not in seen["cmdline"]
    assert seen["cwd"] == "/tmp"
    uid = seen["uid"][0]
    assert seen["uid"] == [uid, uid, uid, uid, []] and uid != 0
    assert seen["environ"] == {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}


def test_a_dead_helper_is_restarted_and_its_runs_do_not_live_on(zygote_level: str) -> None:
    first = _run("def solve(a):\n    return a\n", [{"a": 1}])
    assert first.tests[0].value == 1
    helper = zygote()._process
    os.kill(helper.pid, signal.SIGKILL)
    helper.wait(timeout=5)

    again = _run("def solve(a):\n    return a + 1\n", [{"a": 1}])

    assert again.isolation == "zygote" and again.tests[0].value == 2, again
    assert zygote()._process.pid != helper.pid


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_a_fork_of_ours_starts_its_own_helper(zygote_level: str) -> None:
    """Celery's prefork pool forks the worker: a child never talks to its parent's helper."""
    _run("def solve(a):\n    return a\n", [{"a": 1}])
    parent_helper = zygote()._process.pid
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            result = _run("def solve(a):\n    return a * 2\n", [{"a": 21}])
            ours = zygote()._process.pid
            os.write(write_end, f"{result.tests[0].value} {ours}".encode())
            code = 0
        finally:
            zygote().stop()
            os._exit(code)
    os.close(write_end)
    report = b""
    while chunk := os.read(read_end, 100):
        report += chunk
    os.close(read_end)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    value, child_helper = report.split()
    assert int(value) == 42 and int(child_helper) != parent_helper
    assert zygote()._process.pid == parent_helper and zygote()._process.poll() is None
    assert _run("def solve(a):\n    return a\n", [{"a": 3}]).tests[0].value == 3


def test_a_pinned_zygote_without_the_helper_is_none(settings) -> None:
    settings.CO_SANDBOX_ISOLATION = "zygote"
    settings.CO_SANDBOX_ZYGOTE = False
    assert language_level("python") == "none"


def test_the_helper_has_no_secret_of_ours(zygote_level: str) -> None:
    _run("def solve(a):\n    return a\n", [{"a": 1}])
    pid = zygote()._process.pid
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert sorted(item for item in environ if item) == [b"HOME=/tmp", b"LANG=C.UTF-8", b"PATH=/usr/bin:/bin"]
    memory = _memory_of(pid)
    assert settings.SECRET_KEY.encode() not in memory
    assert not re.search(rb"DJANGO_SETTINGS|CO_SENTINEL", memory)


def test_a_pre_started_sandbox_runs_the_learners_code_at_normal_priority(zygote_level: str, settings) -> None:
    """Pre-started sandboxes are built at a low CPU priority (they yield to verdicts under way);
    the run that takes one restores normal priority before its job is even written."""
    settings.CO_SANDBOX_WARM = 2
    prime_warm_pool("python")
    idle = [sandbox for sandboxes in warm_pool()._idle.values() for sandbox in sandboxes]
    assert idle and {os.getpriority(os.PRIO_PROCESS, sandbox.pid) for sandbox in idle} == {BACKGROUND_NICE}
    code = (
        "import os\ndef solve(a):\n"
        "    with open('/proc/self/autogroup') as handle:\n"
        "        return [os.getpriority(os.PRIO_PROCESS, 0), handle.read().split()[-1]]\n"
    )
    result = _run(code, [{"a": 1}])

    assert result.warm and result.isolation == "zygote", result
    assert result.tests[0].value == [0, "0"]
