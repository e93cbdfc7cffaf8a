"""Which isolation runs, that it is what it says (a real unprivileged uid seen from the host, an
empty environment, no capabilities), failing closed in production, the unshare fallback, and
sandboxes dying with the worker that started them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from grading.sandbox import SandboxResult, SandboxRun, SandboxUnavailable, isolation_level, run_in_sandbox
from grading.sandbox import isolation as isolation_module
from tests.grading.sandbox.conftest import processes_of, sandbox_gids, sandbox_uids
from tests.grading.sandbox.helpers import Context, assert_clean, run_attack
from tests.grading.sandbox.test_attacks import JS_ATTACKS, PY_ATTACKS
from tests.grading.sandbox.test_outcomes import PAIRS, PROGRAMS

REPO_ROOT = Path(__file__).parents[3]
CAN_SWITCH_UID = os.geteuid() == 0


def test_bubblewrap_is_used_when_installed() -> None:
    if shutil.which("bwrap") is None:
        if os.environ.get("CI"):
            pytest.fail("bubblewrap is not installed: CI must install it (.ci/run: apt_install bubblewrap)")
        pytest.skip("bubblewrap is not installed here")
    if not CAN_SWITCH_UID:
        pytest.skip("not root: the sandbox uid cannot be switched to here")

    assert isolation_level() == "bubblewrap"


def test_isolation_level_is_probed_once_and_cached(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_probe = isolation_module._probe

    def counting_probe(level, cfg):
        calls.append(level)
        return real_probe(level, cfg)

    monkeypatch.setattr(isolation_module, "_probe", counting_probe)
    settings.CO_SANDBOX_MAX_PROCESSES = 63  # a configuration not probed yet
    first = isolation_level()
    second = isolation_level()

    assert first == second
    assert len(calls) == len(set(calls)) <= 2


def test_production_without_isolation_refuses_to_run_code(settings) -> None:
    settings.CO_SANDBOX_ISOLATION = "none"
    settings.IS_PRODUCTION = True
    run = SandboxRun("python", PROGRAMS["python"]["correct"], "solve", ["a", "b"], PAIRS, 1000, 64)

    assert isolation_level() == "none"
    with pytest.raises(SandboxUnavailable):
        run_in_sandbox(run)


def test_a_pinned_level_this_machine_cannot_provide_is_none_and_production_refuses(settings) -> None:
    settings.CO_SANDBOX_ISOLATION = "bubblewrap"
    settings.CO_SANDBOX_BWRAP = "/nonexistent/bwrap"
    settings.IS_PRODUCTION = True

    assert isolation_level() == "none"
    with pytest.raises(SandboxUnavailable):
        run_in_sandbox(SandboxRun("python", PROGRAMS["python"]["correct"], "solve", ["a", "b"], PAIRS, 1000, 64))


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_development_without_isolation_runs_with_rlimits_only_and_says_so(settings, language: str) -> None:
    settings.CO_SANDBOX_ISOLATION = "none"
    settings.IS_PRODUCTION = False
    run = SandboxRun(language, PROGRAMS[language]["correct"], "solve", ["a", "b"], PAIRS, 1000, 64)

    result = run_in_sandbox(run)

    assert result.isolation == "none"
    assert [(t.outcome, t.value) for t in result.tests] == [("ok", 3), ("ok", 7), ("ok", 6)]


def test_a_missing_interpreter_is_a_sandbox_error(settings) -> None:
    settings.CO_SANDBOX_NODE = "/nonexistent/node"
    result = run_in_sandbox(SandboxRun("javascript", PROGRAMS["javascript"]["correct"], "solve", ["a", "b"], PAIRS, 1000, 64))

    assert (result.status, result.error, result.tests) == ("error", "javascript is not available on this server", [])


# --- what the sandboxed process is, seen from the host ------------------------------------------


def _is_interpreter(command: str) -> bool:
    """The sandboxed interpreter itself (not bwrap, setpriv or prlimit around it)."""
    return Path(command.split()[0]).name.startswith(("python", "node")) and "harness" in command


def _watch_running_sandbox(code: str, language: str) -> dict[str, str]:
    """Start a run whose program sleeps, and read the sandboxed process's /proc entry from the host."""
    before = set(processes_of(sandbox_uids()))
    result_box = []
    run = SandboxRun(language, code, "solve", ["a", "b"], [{"a": 1, "b": 2}], 3000, 64)
    thread = threading.Thread(target=lambda: result_box.append(run_in_sandbox(run)))
    thread.start()
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not seen:
        for pid, command in processes_of(sandbox_uids()).items():
            if pid not in before and _is_interpreter(command):
                try:
                    seen = {
                        "status": Path(f"/proc/{pid}/status").read_text(),
                        "environ": Path(f"/proc/{pid}/environ").read_bytes().decode(),
                        "cwd": os.readlink(f"/proc/{pid}/cwd"),
                        "root": os.readlink(f"/proc/{pid}/root"),
                        "net": os.readlink(f"/proc/{pid}/ns/net"),
                        "pid_ns": os.readlink(f"/proc/{pid}/ns/pid"),
                        "sid": Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3],
                        "cmdline": Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"),
                    }
                except OSError:
                    continue
                break
        time.sleep(0.01)
    thread.join()
    assert result_box[0].tests[0].value == 3, result_box
    return seen


SLEEPY = {
    "python": "import time\n\ndef solve(a, b):\n    time.sleep(0.5)\n    return a + b\n",
    "javascript": (
        "function solve(a, b) {\n  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);\n  return a + b;\n}\n"
    ),
}


@pytest.mark.parametrize("level", ["auto", "bubblewrap", "unshare"])
@pytest.mark.parametrize("language", ["python", "javascript"])
def test_the_sandboxed_process_is_the_real_unprivileged_uid_without_anything(isolated: str, settings, level, language) -> None:
    """`auto` is the fork helper for Python (root, here and in CI) and bubblewrap for Node."""
    if level == "unshare":
        if not CAN_SWITCH_UID:
            pytest.skip("the unshare fallback needs root")
        settings.CO_SANDBOX_ISOLATION = "unshare"
    if level == "bubblewrap":
        if isolated != "bubblewrap":
            pytest.skip("bubblewrap is not available here")
        settings.CO_SANDBOX_ISOLATION = "bubblewrap"
    seen = _watch_running_sandbox(SLEEPY[language], language)

    assert seen, "the sandboxed process was not found"
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in seen["status"].splitlines() if ":" in line}
    uid, gid = fields["Uid"][0], fields["Gid"][0]
    assert int(uid) in sandbox_uids() and int(gid) in sandbox_gids()
    assert fields["Uid"] == [uid] * 4  # real, effective, saved, filesystem — on the host
    assert fields["Gid"] == [gid] * 4
    assert fields["Groups"] in ([], [gid])
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapInh"] == fields["CapAmb"] == ["0000000000000000"]
    assert fields["NoNewPrivs"] == ["1"]
    environment = dict(item.split("=", 1) for item in seen["environ"].split("\0") if item)
    environment.pop("PWD", None)
    assert environment == {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
    assert seen["net"] != os.readlink("/proc/self/ns/net")
    assert seen["pid_ns"] != os.readlink("/proc/self/ns/pid")
    assert seen["sid"] != str(os.getsid(0))
    assert str(REPO_ROOT) not in seen["cmdline"]  # the learner may read it: no host path in it


# --- the unshare fallback --------------------------------------------------------------------


@pytest.fixture
def unshare_fallback(settings) -> str:
    if not CAN_SWITCH_UID:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the unshare fallback must work there")
        pytest.skip("the unshare fallback needs root")
    settings.CO_SANDBOX_ISOLATION = "unshare"
    assert isolation_level() == "unshare"
    return "unshare"


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_unshare_fallback_outcomes(unshare_fallback: str, sandbox, language: str) -> None:
    programs = PROGRAMS[language]

    correct = sandbox(language, programs["correct"], PAIRS)
    assert correct.isolation == "unshare"
    assert [(t.outcome, t.value) for t in correct.tests] == [("ok", 3), ("ok", 7), ("ok", 6)]
    assert [t.outcome for t in sandbox(language, programs["runtime_error"], PAIRS).tests] == ["ok", "runtime_error", "ok"]
    assert sandbox(language, programs["syntax_error"], PAIRS).status == "syntax_error"
    assert [t.outcome for t in sandbox(language, programs["busy_loop"], PAIRS, time_limit_ms=500).tests] == [
        "ok",
        "time_limit",
        "time_limit",
    ]
    assert [t.outcome for t in sandbox(language, programs["memory"], PAIRS[:2]).tests] == ["ok", "memory_limit"]
    assert [t.outcome for t in sandbox(language, programs["print_flood"], PAIRS[:1]).tests] == ["output_limit"]
    assert [t.value[0] for t in sandbox(language, programs["counter"], PAIRS).tests] == [1, 2, 3]


FALLBACK_ATTACKS = {
    "fork_bomb",
    "memory_bomb",
    "sleep_forever",
    "read_secrets",
    "environment",
    "proc_environ",
    "list_root",
    "connect_postgresql",
    "connect_api",
    "dns",
    "write_outside_scratch",
    "symlinks_for_the_host",
    "privileges",
    "syscalls_via_ctypes",
    "huge_file",
    "kill_parent_and_everyone",
    "daemon",
    "shell_fork_bomb",
    "detached_daemon",
    "read_stdin_again",
}
SELECTED = [("python", *a) for a in PY_ATTACKS if a[0] in FALLBACK_ATTACKS] + [
    ("javascript", *a) for a in JS_ATTACKS if a[0] in FALLBACK_ATTACKS
]


@pytest.mark.parametrize(("language", "name", "code", "inputs", "check"), SELECTED, ids=[f"{s[0]}-{s[1]}" for s in SELECTED])
def test_unshare_fallback_attacks(unshare_fallback: str, context: Context, language, name, code, inputs, check) -> None:
    cases = inputs(context)
    result = run_attack(language, code, cases)

    assert result.isolation == "unshare"
    assert_clean(result, context, len(cases))
    check(result, context)


# --- a sandbox dies with the worker that started it ------------------------------------------

_WORKER = """
import sys, time, django
django.setup()
from django.conf import settings
settings.CO_SANDBOX_ISOLATION = "auto" if sys.argv[1] == "zygote" else sys.argv[1]
from grading.sandbox import SandboxRun, run_in_sandbox
from grading.sandbox.isolation import language_level
from grading.sandbox.warm import warm_pool
assert language_level("python") == sys.argv[1]
run_in_sandbox(SandboxRun("python", "def solve(a):\\n    return a\\n", "solve", ["a"], [{"a": 1}], 1000, 64))
while warm_pool().idle_count() < settings.CO_SANDBOX_WARM:  # pre-started sandboxes wait too
    time.sleep(0.01)
print("starting", flush=True)
code = "import time\\ndef solve(a):\\n    time.sleep(1000)\\n"
run_in_sandbox(SandboxRun("python", code, "solve", ["a"], [{"a": 1}], 60000, 64))
"""


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (any uid)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                parents[int(entry)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of `pids` that still run (an exited orphan waiting for init to reap it does not)."""
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            if stat[stat.rfind(b")") + 2 :].split()[0] != b"Z":
                alive.add(pid)
    return alive


@pytest.mark.parametrize("level", ["zygote", "bubblewrap", "unshare"])
def test_a_killed_worker_takes_its_sandboxes_with_it(isolated: str, level: str) -> None:
    """The running sandbox and the pre-started ones: nothing of a SIGKILLed worker lives on
    (with the fork helper: the helper sees its socket close and exits, and the parent-death
    signals take every sandbox it forked)."""
    if level in ("unshare", "zygote") and not CAN_SWITCH_UID:
        pytest.skip(f"{level} needs root")
    if level == "bubblewrap" and isolated != "bubblewrap":
        pytest.skip("bubblewrap is not available here")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "co_project.settings", "CO_ENV": "test", "PYTHONPATH": str(REPO_ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, level], env=environment, cwd=REPO_ROOT, stdout=subprocess.PIPE)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == b"starting"
        time.sleep(0.5)  # the run is under way in one of them (pre-started, or started for it)
        descendants = _descendants(worker.pid)
        sandboxes = {p: c for p, c in processes_of(sandbox_uids()).items() if p in descendants}
        helpers = set(descendants) - set(sandboxes) if level == "zygote" else set()
        assert sum(map(_is_interpreter, sandboxes.values())) >= settings.CO_SANDBOX_WARM, sandboxes
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and set(sandboxes) & set(processes_of(sandbox_uids())):
        time.sleep(0.02)
    assert not set(sandboxes) & set(processes_of(sandbox_uids()))
    while time.monotonic() < deadline and _alive(helpers):
        time.sleep(0.02)
    assert not _alive(helpers), "the fork helper outlived its worker"
    # What the killed worker could not clean up (its scratch dir) goes with the next sweep.
    isolation_module.sweep_stale_scratch()
    assert not [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(f"co-sandbox-{worker.pid}-")]


def test_settings_are_read_with_defaults() -> None:
    cfg = isolation_module.current_config()
    assert cfg.uid == getattr(settings, "CO_SANDBOX_UID", 65534)
    assert cfg.isolation == getattr(settings, "CO_SANDBOX_ISOLATION", "auto")
    assert cfg.max_processes >= 16


FORK_BOMB_HOLDING = """
import os, time

def f(x):
    children = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(5)
                os._exit(0)
            children += 1
    except OSError:
        pass
    time.sleep(1.5)  # hold every process this uid may have while the other run starts
    return [children, os.getuid()]
"""


def test_a_fork_bomb_in_one_run_does_not_stop_a_concurrent_run() -> None:
    """RLIMIT_NPROC is per uid: each concurrent run has a uid of its own from the pool."""
    if isolation_module.current_config().uid_pool < 2:
        pytest.fail("CO_SANDBOX_UID_POOL must be at least 2 so runs do not share a uid")
    results: dict[str, SandboxResult] = {}

    def bomb() -> None:
        results["bomb"] = run_in_sandbox(
            SandboxRun("python", FORK_BOMB_HOLDING, "f", ["x"], [{"x": 1}], time_limit_ms=3000, memory_limit_mb=256)
        )

    thread = threading.Thread(target=bomb)
    thread.start()
    time.sleep(0.6)  # the bomb has filled its process limit by now
    victim = run_in_sandbox(
        SandboxRun("python", "import os\ndef f(x):\n    return os.getuid()\n", "f", ["x"], [{"x": 1}], 1000, 128)
    )
    thread.join()
    assert victim.status == "completed" and victim.tests[0].outcome == "ok", victim
    bomb_result = results["bomb"]
    assert bomb_result.tests[0].outcome == "ok", bomb_result
    children, bomb_uid = bomb_result.tests[0].value
    assert 1 <= children < isolation_module.current_config().max_processes
    assert victim.tests[0].value != bomb_uid
    assert {victim.tests[0].value, bomb_uid} <= set(sandbox_uids())


# --- Python under bubblewrap (where the fork helper is not used: not root, or switched off) ---


@pytest.fixture
def python_on_bubblewrap(isolated: str, settings) -> str:
    if isolated != "bubblewrap":
        if os.environ.get("CI"):
            pytest.fail("CI installs bubblewrap: Python must run under it when the fork helper is off")
        pytest.skip("bubblewrap is not available here")
    settings.CO_SANDBOX_ZYGOTE = False
    assert isolation_module.language_level("python") == "bubblewrap"
    return "bubblewrap"


@pytest.mark.parametrize(("name", "code", "inputs", "check"), PY_ATTACKS, ids=[a[0] for a in PY_ATTACKS])
def test_python_attacks_under_bubblewrap(python_on_bubblewrap: str, context: Context, name, code, inputs, check) -> None:
    cases = inputs(context)
    result = run_attack("python", code, cases)

    assert result.isolation == "bubblewrap"
    assert_clean(result, context, len(cases))
    check(result, context)
