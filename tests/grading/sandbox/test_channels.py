"""No channel between runs: the seccomp filter closes kernel interfaces the namespaces do not
cover (keyrings first: they are shared by uid, not by namespace), at every isolation level and in
pre-started sandboxes; a value one run stores is not found by a later run of the same uid, nor by
a run going on at the same time."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import pytest

from grading.sandbox import SandboxResult, SandboxRun, run_in_sandbox
from grading.sandbox.isolation import language_level
from tests.grading.sandbox.conftest import prime_warm_pool

pytestmark = pytest.mark.usefixtures("isolated")

LEVELS = ["zygote", "bubblewrap", "unshare"]


@pytest.fixture
def level(request: pytest.FixtureRequest, settings: Any, isolated: str) -> str:
    """Pins the isolation level of the Python runs (`request.param`); every run shares one uid,
    the worst case for a channel between runs (a uid pool of 1)."""
    wanted = request.param
    if wanted == "bubblewrap" and isolated != "bubblewrap":
        pytest.fail("bubblewrap is installed here and in CI: the test needs it")
    settings.CO_SANDBOX_ISOLATION = "auto" if wanted == "zygote" else wanted
    settings.CO_SANDBOX_ZYGOTE = wanted == "zygote"
    settings.CO_SANDBOX_UID_POOL = 1
    assert language_level("python") == wanted
    return wanted


SYSCALL_NUMBERS = """
NR = {
    'x86_64': dict(add_key=248, request_key=249, keyctl=250, ptrace=101, bpf=321, perf_event_open=298,
                   userfaultfd=323, io_uring_setup=425, mount=165, umount2=166, pivot_root=155, unshare=272,
                   setns=308, clone=56, clone3=435),
    'aarch64': dict(add_key=217, request_key=218, keyctl=219, ptrace=117, bpf=280, perf_event_open=241,
                    userfaultfd=282, io_uring_setup=425, mount=40, umount2=39, pivot_root=41, unshare=97,
                    setns=268, clone=220, clone3=435),
}[os.uname().machine]
"""

PY_DENIED_SYSCALLS = (
    "import ctypes, errno, os, struct\n"
    + SYSCALL_NUMBERS
    + """
def solve(x):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def call(name, *args):
        ctypes.set_errno(0)
        result = libc.syscall(NR[name], *args)
        if result == 0 and name == 'clone':
            os._exit(0)  # the child of a clone that was let through
        return [result, errno.errorcode.get(ctypes.get_errno(), '') if result < 0 else '']

    def traceme():  # in a child: PTRACE_TRACEME makes its parent (this process) its tracer
        pid = os.fork()
        if pid == 0:
            os._exit(0 if libc.syscall(NR['ptrace'], 0, 0, 0, 0) == 0 else ctypes.get_errno())
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        return [0 if code == 0 else -1, errno.errorcode.get(code, str(code)) if code else '']

    perf = ctypes.create_string_buffer(128)
    struct.pack_into('IIQ', perf, 0, 1, 64, 1)  # software event, attr size 64, task clock
    struct.pack_into('Q', perf, 40, (1 << 5) | (1 << 6))  # user space only
    found = {
        'add_key': call('add_key', b'user', b'co-probe', b'value', 5, -4),
        'keyctl': call('keyctl', 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
        'request_key': call('request_key', b'user', b'co-probe', None, 0),
        'ptrace': traceme(),
        'bpf': call('bpf', 0, ctypes.create_string_buffer(72), 72),
        'perf_event_open': call('perf_event_open', perf, 0, -1, -1, 0),
        'userfaultfd': call('userfaultfd', 1),  # UFFD_USER_MODE_ONLY: allowed to anyone otherwise
        'io_uring_setup': call('io_uring_setup', 1, ctypes.create_string_buffer(120)),
        'mount': call('mount', b'none', b'/tmp', b'tmpfs', 0, None),
        'umount2': call('umount2', b'/tmp', 0),
        'pivot_root': call('pivot_root', b'/tmp', b'/tmp'),
        'unshare': call('unshare', 0x10000000),
        'setns': call('setns', -1, 0),
        'clone_newnet': call('clone', 0x40000000 | 17, 0, 0, 0, 0),
        'clone3': call('clone3', None, 0),
    }
    with open('/proc/self/status') as handle:
        found['seccomp'] = [line.split()[1] for line in handle if line.startswith('Seccomp:')]
    return found
"""
)


def _python(code: str, inputs: list[dict[str, Any]], *, time_limit_ms: int = 2000) -> SandboxResult:
    parameters = list(inputs[0])
    return run_in_sandbox(SandboxRun("python", code, "solve", parameters, inputs, time_limit_ms, 64))


def _javascript(code: str, inputs: list[dict[str, Any]], *, time_limit_ms: int = 2000) -> SandboxResult:
    parameters = list(inputs[0])
    return run_in_sandbox(SandboxRun("javascript", code, "solve", parameters, inputs, time_limit_ms, 64))


def _value(result: SandboxResult) -> Any:
    assert result.status == "completed" and result.tests[0].outcome == "ok", result
    return result.tests[0].value


@pytest.mark.parametrize("level", LEVELS, indirect=True)
def test_every_denied_syscall_family_fails_with_eperm_at_every_level(level: str, start: str) -> None:
    if start == "warm":
        prime_warm_pool("python")
    result = _python(PY_DENIED_SYSCALLS, [{"x": 0}])

    assert result.isolation == level and result.warm == (start == "warm")
    found = _value(result)
    assert found.pop("seccomp") == ["2"]  # a filter is in force
    assert found.pop("clone3") == [-1, "ENOSYS"]  # so that the C library falls back to clone
    assert found == {name: [-1, "EPERM"] for name in found}


@pytest.mark.parametrize("isolation", ["bubblewrap", "unshare"])
def test_javascript_runs_under_the_filter_too(settings: Any, start: str, isolation: str) -> None:
    settings.CO_SANDBOX_ISOLATION = isolation
    if start == "warm":
        prime_warm_pool("javascript")
    code = (
        "function solve(x) {\n  return require('fs').readFileSync('/proc/self/status', 'utf8').split('\\n')\n"
        "    .filter((line) => line.startsWith('Seccomp:')).map((line) => line.split(/\\s+/)[1]);\n}\n"
    )
    result = _javascript(code, [{"x": 0}])

    assert result.isolation == isolation and result.warm == (start == "warm")
    assert _value(result) == ["2"]


# --- values stored by one run ---------------------------------------------------------------

PY_CHANNEL = (
    "import ctypes, errno, os, socket, time\n"
    + SYSCALL_NUMBERS
    + """
PLACES = ['/tmp/co-channel', '/dev/shm/co-channel', '/var/tmp/co-channel']
SHM_KEY = 0x0C0C0C0C
KEYRINGS = {'user': -4, 'session': -3}
held = []

def solve(role, secret, hold):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.shmat.restype = ctypes.c_void_p
    if role == 'write':
        stored = {}
        for name, ring in KEYRINGS.items():
            stored[name] = libc.syscall(NR['add_key'], b'user', b'co-channel', secret.encode(), len(secret), ring) > 0
        for place in PLACES:
            try:
                with open(place, 'w') as handle:
                    handle.write(secret)
                stored[place] = True
            except OSError:
                stored[place] = False
        segment = libc.shmget(SHM_KEY, 4096, 0o1000 | 0o666)  # IPC_CREAT
        if segment >= 0:
            address = libc.shmat(segment, None, 0)
            ctypes.memmove(address, secret.encode() + b'\\0', len(secret) + 1)
            stored['sysv_shm'] = True
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind('\\0co-channel')
        server.listen()
        held.append(server)
        time.sleep(hold)
        return stored
    found = {}
    for name, ring in KEYRINGS.items():
        key = libc.syscall(NR['keyctl'], 10, ring, b'user', b'co-channel', 0)  # KEYCTL_SEARCH
        if key > 0:
            buffer = ctypes.create_string_buffer(256)
            size = libc.syscall(NR['keyctl'], 11, key, buffer, 256)  # KEYCTL_READ
            found[name] = buffer.raw[:max(size, 0)].decode(errors='replace')
    for place in PLACES:
        try:
            with open(place) as handle:
                found[place] = handle.read()
        except OSError:
            pass
    segment = libc.shmget(SHM_KEY, 0, 0)
    if segment >= 0:
        address = libc.shmat(segment, None, 0o10000)  # SHM_RDONLY
        found['sysv_shm'] = ctypes.string_at(address, 64).split(b'\\0')[0].decode(errors='replace')
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect('\\0co-channel')
        found['socket'] = 'connected'
    except OSError:
        pass
    return found
"""
)

JS_CHANNEL = """
const fs = require('fs');
const net = require('net');
const PLACES = ['/tmp/co-channel', '/dev/shm/co-channel', '/var/tmp/co-channel'];
async function solve(role, secret, hold) {
  if (role === 'write') {
    const stored = {};
    for (const place of PLACES) {
      try { fs.writeFileSync(place, secret); stored[place] = true; } catch (e) { stored[place] = false; }
    }
    const server = net.createServer();
    await new Promise((resolve) => { server.on('error', resolve); server.listen('\\0co-channel-js', resolve); });
    await new Promise((resolve) => setTimeout(resolve, hold * 1000));
    server.close();
    return stored;
  }
  const found = {};
  for (const place of PLACES) { try { found[place] = fs.readFileSync(place, 'utf8'); } catch (e) {} }
  await new Promise((resolve) => {
    const socket = net.connect('\\0co-channel-js');
    socket.on('connect', () => { found.socket = 'connected'; socket.destroy(); resolve(); });
    socket.on('error', () => resolve());
  });
  return found;
}
"""


def _stored_and_found(language: str, *, concurrent: bool) -> tuple[Any, Any, str]:
    """(what the writer run stored, what the reader run found, the secret)."""
    run = _python if language == "python" else _javascript
    code = PY_CHANNEL if language == "python" else JS_CHANNEL
    secret = f"channel-{secrets.token_hex(8)}"
    if not concurrent:
        stored = _value(run(code, [{"role": "write", "secret": secret, "hold": 0}]))
        found = _value(run(code, [{"role": "read", "secret": "", "hold": 0}]))
        return stored, found, secret
    results: dict[str, SandboxResult] = {}

    def writer() -> None:
        results["writer"] = run(code, [{"role": "write", "secret": secret, "hold": 2.5}], time_limit_ms=4000)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(1.2)  # the writer has stored everything and holds it
    found = _value(run(code, [{"role": "read", "secret": "", "hold": 0}]))
    thread.join()
    return _value(results["writer"]), found, secret


@pytest.mark.parametrize("concurrent", [False, True], ids=["later", "concurrent"])
@pytest.mark.parametrize("level", LEVELS, indirect=True)
def test_a_value_stored_by_one_python_run_is_not_found_by_another(level: str, concurrent: bool) -> None:
    stored, found, secret = _stored_and_found("python", concurrent=concurrent)

    assert stored["/tmp/co-channel"] is True  # the writer did run and store
    assert found == {}, found
    assert secret not in json.dumps(found)


@pytest.mark.parametrize("concurrent", [False, True], ids=["later", "concurrent"])
@pytest.mark.parametrize("isolation", ["bubblewrap", "unshare"])
def test_a_value_stored_by_one_javascript_run_is_not_found_by_another(settings: Any, isolation: str, concurrent: bool) -> None:
    settings.CO_SANDBOX_ISOLATION = isolation
    settings.CO_SANDBOX_UID_POOL = 1
    stored, found, secret = _stored_and_found("javascript", concurrent=concurrent)

    assert stored["/tmp/co-channel"] is True
    assert found == {}, found
    assert secret not in json.dumps(found)


def test_a_pre_started_sandbox_finds_nothing_an_earlier_run_stored(settings: Any) -> None:
    """The fork helper's pre-started sandboxes were forked before the writer ran: they must not
    share a keyring (or anything else) with it."""
    settings.CO_SANDBOX_UID_POOL = 1
    prime_warm_pool("python")
    secret = f"channel-{secrets.token_hex(8)}"
    writer = _python(PY_CHANNEL, [{"role": "write", "secret": secret, "hold": 0}])
    reader = _python(PY_CHANNEL, [{"role": "read", "secret": "", "hold": 0}])

    assert writer.warm and reader.warm
    assert _value(writer)["/tmp/co-channel"] is True
    assert _value(reader) == {}
