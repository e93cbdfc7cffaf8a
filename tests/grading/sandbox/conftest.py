"""Sandbox tests: real sandboxes (bubblewrap here and in CI), real processes, exact outcomes.

Every test here checks afterwards that it left nothing behind: no process of the sandbox uid
and no new entry in the temp dir owned by it (and no `co-sandbox-*` scratch dir)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings

from grading.sandbox import SandboxResult, SandboxRun, isolation_level, run_in_sandbox
from grading.sandbox.isolation import current_config, language_level
from grading.sandbox.warm import warm_per_key, warm_pool
from tests.grading.sandbox.helpers import ENV_SENTINEL, FILE_SENTINEL, ApiStandIn, Context

LEFTOVER_PATIENCE_SECONDS = 3.0


def sandbox_uid() -> int:
    return current_config().uid


def sandbox_uids() -> range:
    """Every uid a run may get (the base uid plus its slot in the pool)."""
    cfg = current_config()
    return range(cfg.uid, cfg.uid + cfg.uid_pool)


def sandbox_gids() -> range:
    cfg = current_config()
    return range(cfg.gid, cfg.gid + cfg.uid_pool)


def _process_table() -> dict[int, dict[str, str]]:
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                status = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                status += "\nCmdline:" + handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        table[int(entry)] = {
            key: value.strip() for key, value in (line.split(":", 1) for line in status.splitlines() if ":" in line)
        }
    return table


def processes_of(uids: int | range, *, ours: bool = False) -> dict[int, str]:
    """{pid: command} of every process whose real uid is in `uids`, unreaped children included.

    Not included: zombies of the machine's init (an orphan that has exited and waits for init to
    reap it — here init reaps every few seconds — is gone as far as we can tell). With `ours`,
    only what this process started, or what escaped it (a live orphan): other processes on the
    machine (another test run, a worker) keep pre-started sandboxes of the same uids."""
    uids = range(uids, uids + 1) if isinstance(uids, int) else uids
    table = _process_table()

    def ours_or_orphan(pid: int) -> bool:
        if table[pid].get("PPid") == "1":
            return True  # an orphan: nobody's, so possibly something that escaped us
        seen = set()
        while pid not in seen and pid in table:
            seen.add(pid)
            pid = int(table[pid].get("PPid", "0") or 0)
            if pid == os.getpid():
                return True
        return False

    found = {}
    for pid, fields in table.items():
        if fields.get("State", "").startswith("Z") and fields.get("PPid") == "1":
            continue
        uid = fields.get("Uid", "").split()
        if uid and int(uid[0]) in uids and (not ours or ours_or_orphan(pid)):
            found[pid] = fields.get("Cmdline") or "<zombie>"
    return found


def temp_entries() -> dict[str, int]:
    """{name: owner uid} of the entries of the system temp dir."""
    directory = tempfile.gettempdir()
    entries = {}
    for name in os.listdir(directory):
        try:
            entries[name] = os.lstat(os.path.join(directory, name)).st_uid
        except FileNotFoundError:
            continue
    return entries


@pytest.fixture(autouse=True)
def _leaves_nothing_behind() -> Iterator[None]:
    uid = sandbox_uids()
    processes_before = set(processes_of(uid))
    temp_before = temp_entries()
    yield
    # Pre-started sandboxes are the pool's, not the learner's: stop them, then look.
    warm_pool().drain()
    # Another run on this machine may be using the sandbox uid right now: only processes that
    # appeared during this test and are still there after a moment count as left behind.
    deadline = time.monotonic() + LEFTOVER_PATIENCE_SECONDS
    while True:
        left = {pid: cmd for pid, cmd in processes_of(uid, ours=True).items() if pid not in processes_before}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes of uid {uid} left behind: {left}"
    new_temp = {name: owner for name, owner in temp_entries().items() if name not in temp_before}
    assert not {name for name, owner in new_temp.items() if owner == uid}, f"files left in the temp dir: {new_temp}"
    deadline = time.monotonic() + LEFTOVER_PATIENCE_SECONDS
    while any(name.startswith("co-sandbox-") for name in new_temp) and time.monotonic() < deadline:
        time.sleep(0.05)
        new_temp = {name: owner for name, owner in temp_entries().items() if name not in temp_before}
    assert not [name for name in new_temp if name.startswith("co-sandbox-")], f"scratch dirs left: {new_temp}"


WARM_UP_CODE = {"python": "def solve(a):\n    return a\n", "javascript": "function solve(a) {\n  return a;\n}\n"}


def prime_warm_pool(language: str, *, memory_limit_mb: int = 64) -> None:
    """One run so the pool wants this language (and memory limit), then wait until its
    pre-started sandboxes are ready: the next runs of that kind start warm."""
    run_in_sandbox(SandboxRun(language, WARM_UP_CODE[language], "solve", ["a"], [{"a": 1}], 1000, memory_limit_mb))
    wanted = warm_per_key(language_level(language))
    deadline = time.monotonic() + 30
    while warm_pool().idle_count() < wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert warm_pool().idle_count() >= wanted >= settings.CO_SANDBOX_WARM, "the pool did not pre-start its sandboxes"


@pytest.fixture(params=["cold", "warm"])
def start(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test on sandboxes started for the run ("cold") and on pre-started ones ("warm");
    the test primes the pool for its language with `prime_warm_pool` when warm."""
    if request.param == "cold":
        settings.CO_SANDBOX_WARM = 0
    return request.param


@pytest.fixture
def isolated() -> str:
    """The isolation level, which must be real namespace isolation: in CI and wherever the tests
    run as root it is (else the test fails); only a non-root developer machine skips."""
    level = isolation_level()
    if level == "none":
        if os.environ.get("CI") or os.geteuid() == 0:
            # As root, the unshare fallback at least must work; CI runs as root with bubblewrap.
            pytest.fail("no sandbox isolation: bubblewrap (or root for the unshare fallback) is required")
        pytest.skip("no namespace isolation on this machine (install bubblewrap and run as root)")
    return level


@pytest.fixture
def sandbox() -> Callable[..., SandboxResult]:
    """sandbox(language, code, inputs, **overrides) → SandboxResult; entrypoint `solve`, one
    parameter per input key (in order), 1 s per test, 64 MB."""

    def run(language: str, code: str, inputs: list[dict[str, Any]], **overrides: Any) -> SandboxResult:
        parameters = overrides.pop("parameters", list(inputs[0]) if inputs else [])
        fields = {
            "entrypoint": "solve",
            "parameters": parameters,
            "time_limit_ms": 1000,
            "memory_limit_mb": 64,
        }
        fields.update(overrides)
        return run_in_sandbox(SandboxRun(language=language, code=code, inputs=inputs, **fields))

    return run


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """Planted secrets and a loopback 'API' stand-in, for the whole module."""
    previous = os.environ.get("CO_SENTINEL_SECRET")
    os.environ["CO_SENTINEL_SECRET"] = ENV_SENTINEL
    directory = tmp_path_factory.mktemp("root-only")
    directory.chmod(0o700)
    secret = directory / "secret.txt"
    secret.write_text(FILE_SENTINEL)
    secret.chmod(0o600)
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiStandIn)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Context(secret_file=str(secret), api_port=server.server_address[1], project=str(settings.BASE_DIR))
    finally:
        server.shutdown()
        server.server_close()
        if previous is None:
            os.environ.pop("CO_SENTINEL_SECRET", None)
        else:
            os.environ["CO_SENTINEL_SECRET"] = previous


# Every language at every isolation level it can run at (as root, as in CI: all of them).
PINNED_LEVELS = [
    ("python", "zygote"),
    ("python", "bubblewrap"),
    ("python", "unshare"),
    ("javascript", "bubblewrap"),
    ("javascript", "unshare"),
]


@pytest.fixture(params=PINNED_LEVELS, ids=[f"{language}-{level}" for language, level in PINNED_LEVELS])
def pinned(request: pytest.FixtureRequest, settings: Any) -> tuple[str, str]:
    """(language, isolation level), the level pinned for the test; a level this machine cannot
    give fails under CI or as root and is skipped elsewhere."""
    language, level = request.param
    settings.CO_SANDBOX_ISOLATION = level
    if language_level(language) != level:
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail(f"{language} cannot run at isolation level {level} here")
        pytest.skip(f"no {level} isolation on this machine")
    return language, level
