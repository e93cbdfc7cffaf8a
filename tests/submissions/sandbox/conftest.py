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

from submissions.sandbox import SandboxResult, SandboxRun, isolation_level, run_in_sandbox
from submissions.sandbox.isolation import current_config
from tests.submissions.sandbox.helpers import ENV_SENTINEL, FILE_SENTINEL, ApiStandIn, Context

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


def processes_of(uids: int | range) -> dict[int, str]:
    """{pid: command} of every process whose real uid is in `uids` (zombies included)."""
    uids = range(uids, uids + 1) if isinstance(uids, int) else uids
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                status = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
        if uid_line and int(uid_line.split()[1]) in uids:
            found[int(entry)] = command or "<zombie>"
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
    # Another run on this machine may be using the sandbox uid right now: only processes that
    # appeared during this test and are still there after a moment count as left behind.
    deadline = time.monotonic() + LEFTOVER_PATIENCE_SECONDS
    while True:
        left = {pid: cmd for pid, cmd in processes_of(uid).items() if pid not in processes_before}
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
