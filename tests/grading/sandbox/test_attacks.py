"""Attack programs, Python and JavaScript, each an entrypoint that tries one escape and returns
what it found (so a leak would show in the returned value or error).

Before the suite, secrets are planted in this (trusted) process: an environment variable and a
root-only file. After every attack: the verdict is a clean SandboxResult; no planted secret, key
or setting appears anywhere in it; nothing is left behind (conftest); this process and a service
it runs on loopback are alive and serving."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grading.sandbox import SandboxResult, SandboxRun, run_in_sandbox
from grading.sandbox.isolation import current_config
from tests.grading.sandbox.conftest import prime_warm_pool, sandbox_gids, sandbox_uids
from tests.grading.sandbox.helpers import (
    ROOT_ALLOWED,
    SANDBOX_ENV,
    UNREACHABLE,
    Context,
    assert_clean,
    paths_to_steal,
    run_attack,
)

pytestmark = pytest.mark.usefixtures("isolated")
DENIED = {"EPERM", "EINVAL"}

# --- the attacks ---------------------------------------------------------------------------------
# (name, code, inputs(context) → list of input dicts, check(result, context)); `x` is the input.


def one(value: Any = 0) -> Callable[[Context], list[dict[str, Any]]]:
    return lambda context: [{"x": value}]


def outcome_is(*expected: str) -> Callable[[SandboxResult, Context], None]:
    def check(result: SandboxResult, context: Context) -> None:
        assert [t.outcome for t in result.tests] == list(expected), result

    return check


def value_is(expected: Any) -> Callable[[SandboxResult, Context], None]:
    def check(result: SandboxResult, context: Context) -> None:
        assert [(t.outcome, t.value) for t in result.tests] == [("ok", expected)], result

    return check


def values_are(*expected: Any) -> Callable[[SandboxResult, Context], None]:
    def check(result: SandboxResult, context: Context) -> None:
        assert [(t.outcome, t.value) for t in result.tests] == [("ok", value) for value in expected], result

    return check


def outcomes_within(*allowed: str) -> Callable[[SandboxResult, Context], None]:
    def check(result: SandboxResult, context: Context) -> None:
        assert {t.outcome for t in result.tests} <= set(allowed), result

    return check


def forged_result_counts_as_a_returned_value(result: SandboxResult, context: Context) -> None:
    """Writing to the results fd directly: at worst the power of returning a value (test 1's
    value is the learner's choice either way); every other forgery is ignored."""
    assert [(t.outcome, t.value) for t in result.tests] == [("ok", "real0"), ("ok", "forged")], result
    assert result.tests[1].time_ms == 0


def everyone_survives(result: SandboxResult, context: Context) -> None:
    assert [t.outcome for t in result.tests] == ["ok", "ok"], result
    assert result.tests[0].value["shell"] in {"survived", ""}


def value_check(predicate: Callable[[Any, Context], bool]) -> Callable[[SandboxResult, Context], None]:
    def check(result: SandboxResult, context: Context) -> None:
        assert result.tests[0].outcome == "ok", result
        assert predicate(result.tests[0].value, context), result.tests[0].value

    return check


def nothing_readable(value: dict[str, str], context: Context) -> bool:
    return set(value) == set(paths_to_steal(context)) and all(v in {"ENOENT", "EACCES", "ENOTDIR"} for v in value.values())


def only_sandbox_environment(value: dict[str, str], context: Context) -> bool:
    # PWD: bubblewrap sets it to the scratch dir it starts the program in.
    pwd = value.pop("PWD", "/tmp")
    return pwd == "/tmp" and value == SANDBOX_ENV and not any(k.startswith(("CO_", "DJANGO")) or "SECRET" in k for k in value)


def environs_are_clean(value: dict[str, str], context: Context) -> bool:
    # In the new pid namespace only the sandbox's own processes are visible.
    return 1 <= len(value) <= 3 and all(
        content in {"EACCES", "ENOENT", "ESRCH"}
        or set(content.split("\0")) - {""} <= {f"{k}={v}" for k, v in {**SANDBOX_ENV, "PWD": "/tmp"}.items()}
        for content in value.values()
    )


def root_is_minimal(value: list[str], context: Context) -> bool:
    return "usr" in value and "tmp" in value and set(value) <= ROOT_ALLOWED


def unreachable(value: str, context: Context) -> bool:
    return value in UNREACHABLE


def writes_only_to_scratch(value: dict[str, str], context: Context) -> bool:
    return value.pop("/tmp/fine.txt") == "written" and all(v in {"EROFS", "EACCES", "ENOENT", "EPERM"} for v in value.values())


PY_READ_FILES = """
import errno

def attack(paths):
    found = {}
    for path in paths:
        try:
            with open(path, 'rb') as handle:
                found[path] = handle.read(200).decode('latin-1')
        except OSError as exc:
            found[path] = errno.errorcode.get(exc.errno, str(exc.errno))
    return found
"""

PY_CONNECT = """
import errno, socket

def attack(x):
    try:
        socket.create_connection(('127.0.0.1', x), timeout=2).close()
        return 'connected'
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__) if exc.errno else type(exc).__name__
"""

PY_FORK_BOMB = """
import os

def attack(x):
    started = 0
    try:
        while True:
            if os.fork() == 0:
                while True:
                    try:
                        os.fork()
                    except OSError:
                        pass
            started += 1
    except OSError as exc:
        return f'stopped after {started}: {exc.strerror}'
"""

PY_WRITE_OUTSIDE = """
import errno

def attack(x):
    found = {}
    for path in ['/tmp/fine.txt', '/escape.txt', '/usr/escape.txt', '/dev/shm/escape.txt', '/sandbox/escape.txt',
                 '/proc/escape.txt', '/dev/escape.txt', '/var/tmp/escape.txt', '/etc/escape.txt']:
        try:
            with open(path, 'w') as handle:
                handle.write('escaped')
            found[path] = 'written'
        except OSError as exc:
            found[path] = errno.errorcode.get(exc.errno, str(exc.errno))
    return found
"""

PY_SYMLINKS = """
import os

def attack(secret):
    made = []
    for target, name in [('/etc/shadow', '/tmp/output.json'), (secret, '/tmp/result.json'), ('/', '/tmp/root'),
                         (secret, '/tmp/stdout')]:
        os.symlink(target, name)
        made.append(name)
    try:
        os.link('/usr/bin/env', '/tmp/hardlink')
        made.append('hardlink')
    except OSError as exc:
        made.append(exc.strerror)
    return made
"""

PY_PRIVILEGES = """
import errno, os, stat

def attack(x):
    found = {'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(), 'groups': os.getgroups()}
    for name, call in [('setuid', lambda: os.setuid(0)), ('setgid', lambda: os.setgid(0)),
                       ('chown', lambda: os.chown('/tmp', 0, 0)), ('chroot', lambda: os.chroot('/tmp'))]:
        try:
            call()
            found[name] = 'done'
        except OSError as exc:
            found[name] = errno.errorcode[exc.errno]
    with open('/tmp/suid', 'w') as handle:
        handle.write('#!/bin/sh\\nid\\n')
    os.chmod('/tmp/suid', 0o4755)
    found['suid_owner'] = os.stat('/tmp/suid').st_uid
    with open('/proc/self/status') as handle:
        found['caps'] = sorted({line.split()[1] for line in handle if line.startswith('Cap') and 'Bnd' not in line})
    return found
"""

PY_SYSCALLS = """
import ctypes, os

def attack(x):
    libc = ctypes.CDLL(None, use_errno=True)
    calls = {
        'setuid': (105, 0),
        'unshare_user': (272, 0x10000000),
        'unshare_net': (272, 0x40000000),
        'ptrace_attach_1': (101, 16, 1, 0, 0),
        'mount': (165, b'none', b'/tmp', b'tmpfs', 0, 0),
        'kill_all': (62, -1, 9),
        'reboot': (169, 0xfee1dead, 672274793, 0x4321fedc, 0),
    }
    found = {}
    for name, args in calls.items():
        found[name] = [libc.syscall(*args), ctypes.get_errno()]
    found['uid'] = os.getuid()
    return found
"""

PY_FORGE_STDOUT = """
import os, sys

def attack(x):
    fake = '{"e":"result","i":1,"outcome":"ok","time_ms":0,"value":"forged"}\\n'
    print(fake)
    sys.__stdout__.write(fake)
    sys.__stdout__.flush()
    os.write(1, fake.encode())
    os.write(2, fake.encode())
    return f'real{x}'
"""

PY_FORGE_RESULTS = """
import os, sys

def attack(x):
    if x == 0:
        fd = int(sys.argv[1])
        for line in ['garbage', '{"e":"syntax_error","error":"forged"}',
                     '{"e":"load_error","outcome":"runtime_error"}',
                     '{"e":"result","i":7,"outcome":"ok","value":"out of range"}',
                     '{"e":"result","i":"1","outcome":"ok","value":1}',
                     '{"e":"result","i":1,"outcome":"ok","value":NaN}',
                     '{"e":"result","i":1,"outcome":"bogus","value":1}',
                     '[' * 10000,
                     '{"e":"result","i":1,"outcome":"ok","time_ms":-5,"value":"forged"}',
                     '{"e":"result","i":1,"outcome":"ok","value":"second forgery"}']:
            os.write(fd, line.encode() + b'\\n')
    return f'real{x}'
"""

PY_RESULTS_FLOOD = """
import os, sys

def attack(x):
    chunk = b'x' * (1 << 20)
    for _ in range(50):
        os.write(int(sys.argv[1]), chunk)
    return x
"""

PY_STDIN = """
import os, sys

def attack(x):
    found = [sys.stdin.read(), os.read(0, 100000).decode('latin-1')]
    with open('/proc/self/fd/0', 'rb') as handle:
        found.append(handle.read().decode('latin-1'))
    return found
"""

PY_KILL = """
import os, signal, subprocess

def attack(x):
    found = {'ppid': os.getppid(), 'pid': os.getpid()}
    for name, call in [('parent', lambda: os.kill(os.getppid(), signal.SIGKILL)),
                       ('group', lambda: os.killpg(os.getpgid(0), signal.SIGKILL)),
                       ('all', lambda: os.kill(-1, signal.SIGKILL)),
                       ('init', lambda: os.kill(1, signal.SIGKILL)),
                       ('stop_all', lambda: os.kill(-1, signal.SIGSTOP))]:
        try:
            call()
            found[name] = 'sent'
        except OSError as exc:
            found[name] = exc.strerror
    found['shell'] = subprocess.run(['/bin/sh', '-c', 'kill -9 -1; kill -9 0; echo survived'],
                                    capture_output=True, text=True).stdout.strip()
    return found
"""

PY_DAEMON = """
import os, time

def attack(x):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.closerange(0, 256)
            time.sleep(1000)
        os._exit(0)
    os.wait()
    return 'daemon started'
"""

PY_PROC_ENVIRON = """
import errno, os

def attack(x):
    found = {}
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open(f'/proc/{pid}/environ', 'rb') as handle:
                    found[pid] = handle.read().decode('latin-1')
            except OSError as exc:
                found[pid] = errno.errorcode.get(exc.errno, str(exc.errno))
    return found
"""

PY_ATTACKS: list[tuple[str, str, Callable[[Context], list[dict[str, Any]]], Callable[[SandboxResult, Context], None]]] = [
    (
        "fork_bomb",
        PY_FORK_BOMB,
        one(),
        value_check(
            lambda v, c: v.startswith("stopped after ") and int(v.split()[2].rstrip(":")) < current_config().max_processes
        ),
    ),
    (
        "memory_bomb",
        "def attack(x):\n    hoard = []\n    while True:\n        hoard.append(bytearray(10 ** 7))\n",
        one(),
        outcome_is("memory_limit"),
    ),
    ("busy_loop", "def attack(x):\n    while True:\n        pass\n", one(), outcome_is("time_limit")),
    (
        "stubborn_busy_loop",
        "def attack(x):\n    while True:\n        try:\n            while True:\n                pass\n"
        "        except BaseException:\n            pass\n",
        lambda c: [{"x": 0}, {"x": 1}],
        outcome_is("time_limit", "time_limit"),
    ),
    ("sleep_forever", "import time\n\ndef attack(x):\n    time.sleep(10 ** 6)\n", one(), outcome_is("time_limit")),
    (
        "signals_ignored_sleep",
        "import signal, time\n\ndef attack(x):\n    for s in (signal.SIGALRM, signal.SIGPROF, signal.SIGXCPU):\n"
        "        signal.signal(s, signal.SIG_IGN)\n    signal.setitimer(signal.ITIMER_REAL, 0)\n    time.sleep(10 ** 6)\n",
        lambda c: [{"x": 0}, {"x": 1}],
        outcome_is("time_limit", "time_limit"),
    ),
    ("read_secrets", PY_READ_FILES, lambda c: [{"paths": paths_to_steal(c)}], value_check(nothing_readable)),
    ("environment", "import os\n\ndef attack(x):\n    return dict(os.environ)\n", one(), value_check(only_sandbox_environment)),
    ("proc_environ", PY_PROC_ENVIRON, one(), value_check(environs_are_clean)),
    ("list_root", "import os\n\ndef attack(x):\n    return sorted(os.listdir('/'))\n", one(), value_check(root_is_minimal)),
    ("connect_postgresql", PY_CONNECT, one(5432), value_check(unreachable)),
    ("connect_redis", PY_CONNECT, one(6379), value_check(unreachable)),
    ("connect_api", PY_CONNECT, lambda c: [{"x": c.api_port}], value_check(unreachable)),
    ("connect_web", PY_CONNECT, one(8000), value_check(unreachable)),
    (
        "connect_internet",
        "import errno, socket\n\ndef attack(x):\n    try:\n        socket.create_connection(('1.1.1.1', 443), timeout=2)\n"
        "        return 'connected'\n    except OSError as exc:\n"
        "        return errno.errorcode.get(exc.errno, type(exc).__name__)\n",
        one(),
        value_check(lambda v, c: v in {"ENETUNREACH", "EHOSTUNREACH"}),
    ),
    (
        "dns",
        "import socket\n\ndef attack(x):\n    try:\n        return socket.gethostbyname('example.com')\n"
        "    except OSError as exc:\n        return type(exc).__name__\n",
        one(),
        value_is("gaierror"),
    ),
    ("write_outside_scratch", PY_WRITE_OUTSIDE, one(), value_check(writes_only_to_scratch)),
    (
        "symlinks_for_the_host",
        PY_SYMLINKS,
        lambda c: [{"secret": c.secret_file}],
        value_check(lambda v, c: v[:4] == ["/tmp/output.json", "/tmp/result.json", "/tmp/root", "/tmp/stdout"]),
    ),
    (
        "privileges",
        PY_PRIVILEGES,
        one(),
        value_check(
            lambda v, c: (
                v["uid"] == v["euid"]
                and v["uid"] in sandbox_uids()
                and v["groups"] in ([], *([gid] for gid in sandbox_gids()))
                # EINVAL: uid 0 does not even exist in the sandbox's user namespace (bubblewrap)
                and {v["setuid"], v["setgid"], v["chown"], v["chroot"]} <= DENIED
                and v["caps"] == ["0000000000000000"]
            )
        ),
    ),
    (
        "syscalls_via_ctypes",
        PY_SYSCALLS,
        one(),
        value_check(
            lambda v, c: (
                v["uid"] in sandbox_uids()
                and all(v[name][0] == -1 for name in ("setuid", "unshare_user", "unshare_net", "mount", "reboot"))
            )
        ),
    ),
    (
        "huge_file",
        "import errno\n\ndef attack(x):\n    try:\n        with open('/tmp/big', 'wb') as handle:\n"
        "            for _ in range(100):\n                handle.write(b'x' * (1 << 20))\n"
        "    except OSError as exc:\n        return errno.errorcode[exc.errno]\n    return 'wrote 100 MB'\n",
        one(),
        value_check(lambda v, c: v in {"EFBIG", "ENOSPC"}),
    ),
    (
        "many_open_files",
        "import errno\n\ndef attack(x):\n    handles = []\n    try:\n        while True:\n"
        "            handles.append(open('/dev/null'))\n    except OSError as exc:\n"
        "        return [len(handles), errno.errorcode[exc.errno]]\n",
        one(),
        value_check(lambda v, c: v[1] == "EMFILE" and v[0] < current_config().max_open_files),
    ),
    (
        "forge_on_stdout",
        PY_FORGE_STDOUT,
        lambda c: [{"x": 0}, {"x": 1}],
        values_are("real0", "real1"),
    ),
    (
        "forge_on_results_fd",
        PY_FORGE_RESULTS,
        lambda c: [{"x": 0}, {"x": 1}],
        forged_result_counts_as_a_returned_value,
    ),
    (
        "flood_the_results_fd",
        PY_RESULTS_FLOOD,
        lambda c: [{"x": 0}, {"x": 1}],
        outcome_is("output_limit", "output_limit"),
    ),
    ("read_stdin_again", PY_STDIN, one(), value_is(["", "", ""])),
    (
        "kill_parent_and_everyone",
        PY_KILL,
        lambda c: [{"x": 0}, {"x": 1}],
        everyone_survives,
    ),
    ("daemon", PY_DAEMON, one(), value_is("daemon started")),
    (
        # A forked child that returns goes back through the harness: only the harness reports.
        "fork_and_return",
        "import os\n\ndef attack(x):\n    pid = os.fork()\n    if pid == 0:\n        return 'child'\n"
        "    os.waitpid(pid, 0)\n    return 'parent'\n",
        lambda c: [{"x": 0}, {"x": 1}],
        values_are("parent", "parent"),
    ),
]


JS_READ_FILES = """
const fs = require('fs');
function attack(paths) {
  const found = {};
  for (const path of paths) {
    try { found[path] = fs.readFileSync(path, 'latin1').slice(0, 200); } catch (e) { found[path] = e.code; }
  }
  return found;
}
"""

JS_CONNECT = """
const net = require('net');
function attack(x) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: x });
    socket.on('connect', () => { socket.destroy(); resolve('connected'); });
    socket.on('error', (e) => resolve(e.code));
  });
}
"""

JS_WRITE_OUTSIDE = """
const fs = require('fs');
function attack(x) {
  const found = {};
  for (const path of ['/tmp/fine.txt', '/escape.txt', '/usr/escape.txt', '/dev/shm/escape.txt', '/sandbox/escape.txt',
                      '/proc/escape.txt', '/dev/escape.txt', '/var/tmp/escape.txt', '/etc/escape.txt']) {
    try { fs.writeFileSync(path, 'escaped'); found[path] = 'written'; } catch (e) { found[path] = e.code; }
  }
  return found;
}
"""

JS_PROC_ENVIRON = """
const fs = require('fs');
function attack(x) {
  const found = {};
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))) {
    try { found[pid] = fs.readFileSync(`/proc/${pid}/environ`, 'latin1'); } catch (e) { found[pid] = e.code; }
  }
  return found;
}
"""

JS_FORGE_RESULTS = """
const fs = require('fs');
function attack(x) {
  if (x === 0) {
    const fd = Number(process.argv[2]);
    for (const line of ['garbage', '{"e":"syntax_error","error":"forged"}', '{"e":"result","i":9,"outcome":"ok","value":1}',
                        '{"e":"result","i":1,"outcome":"ok","value":Infinity}', '['.repeat(10000),
                        '{"e":"result","i":1,"outcome":"ok","time_ms":-5,"value":"forged"}']) {
      fs.writeSync(fd, line + '\\n');
    }
  }
  return `real${x}`;
}
"""

JS_KILL = """
const cp = require('child_process');
function attack(x) {
  const found = { ppid: process.ppid, pid: process.pid };
  const targets = [
    ['parent', process.ppid, 'SIGKILL'], ['all', -1, 'SIGKILL'], ['init', 1, 'SIGKILL'], ['self', process.pid, 'SIGTERM'],
  ];
  for (const [name, target, sig] of targets) {
    try { process.kill(target, sig); found[name] = 'sent'; } catch (e) { found[name] = e.code; }
  }
  found.shell = cp.spawnSync('/bin/sh', ['-c', 'kill -9 -1; kill -9 0; echo survived'], { encoding: 'utf8' }).stdout.trim();
  return found;
}
"""

JS_ATTACKS: list[tuple[str, str, Callable[[Context], list[dict[str, Any]]], Callable[[SandboxResult, Context], None]]] = [
    (
        "shell_fork_bomb",
        "const cp = require('child_process');\nfunction attack(x) {\n"
        "  const bomb = ':(){ :|:& };:; sleep 0.5; echo done';\n"
        "  return cp.spawnSync('/bin/sh', ['-c', bomb], { encoding: 'utf8', timeout: 5000 }).stdout;\n}\n",
        lambda c: [{"x": 0}, {"x": 1}],
        outcomes_within("ok", "runtime_error", "time_limit"),
    ),
    (
        "spawn_loop",
        "const cp = require('child_process');\nfunction attack(x) {\n"
        "  for (let i = 0; i < 300; i++) {\n"
        "    try { cp.spawn('/bin/sleep', ['1000'], { stdio: 'ignore' }).on('error', () => {}); } catch (e) {}\n  }\n"
        "  return require('fs').readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).length;\n}\n",
        one(),
        value_check(lambda v, c: 1 <= v <= current_config().max_processes),
    ),
    (
        "memory_bomb",
        "function attack(x) {\n  const hoard = [];\n  for (;;) hoard.push(new Array(1e6).fill(1.5));\n}\n",
        one(),
        outcome_is("memory_limit"),
    ),
    ("off_heap_memory", "function attack(x) {\n  return Buffer.alloc(3e9).length;\n}\n", one(), outcome_is("memory_limit")),
    ("busy_loop", "function attack(x) {\n  for (;;) {}\n}\n", one(), outcome_is("time_limit")),
    (
        "atomics_wait",
        "function attack(x) {\n  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);\n}\n",
        one(),
        outcome_is("time_limit"),
    ),
    (
        "never_settles",
        "function attack(x) {\n  return new Promise(() => {});\n}\n",
        lambda c: [{"x": 0}, {"x": 1}],
        outcome_is("time_limit", "time_limit"),
    ),
    (
        "microtask_spin",
        "async function attack(x) {\n  for (;;) await null;\n}\n",
        lambda c: [{"x": 0}, {"x": 1}],
        outcome_is("time_limit", "time_limit"),
    ),
    ("read_secrets", JS_READ_FILES, lambda c: [{"paths": paths_to_steal(c)}], value_check(nothing_readable)),
    ("environment", "function attack(x) {\n  return { ...process.env };\n}\n", one(), value_check(only_sandbox_environment)),
    ("proc_environ", JS_PROC_ENVIRON, one(), value_check(environs_are_clean)),
    (
        "list_root",
        "function attack(x) {\n  return require('fs').readdirSync('/').sort();\n}\n",
        one(),
        value_check(root_is_minimal),
    ),
    ("connect_postgresql", JS_CONNECT, one(5432), value_check(unreachable)),
    ("connect_redis", JS_CONNECT, one(6379), value_check(unreachable)),
    ("connect_api", JS_CONNECT, lambda c: [{"x": c.api_port}], value_check(unreachable)),
    ("connect_web", JS_CONNECT, one(8000), value_check(unreachable)),
    (
        "dns",
        "function attack(x) {\n  return new Promise((resolve) =>\n"
        "    require('dns').lookup('example.com', (e, a) => resolve(e ? 'failed' : a)));\n}\n",
        one(),
        value_is("failed"),
    ),
    (
        "interfaces",
        "function attack(x) {\n  return Object.keys(require('os').networkInterfaces());\n}\n",
        one(),
        value_check(lambda v, c: set(v) <= {"lo"}),
    ),
    ("write_outside_scratch", JS_WRITE_OUTSIDE, one(), value_check(writes_only_to_scratch)),
    (
        "symlinks_for_the_host",
        "const fs = require('fs');\nfunction attack(secret) {\n  fs.symlinkSync('/etc/shadow', '/tmp/output.json');\n"
        "  fs.symlinkSync(secret, '/tmp/result.json');\n  return fs.readdirSync('/tmp').sort();\n}\n",
        lambda c: [{"secret": c.secret_file}],
        value_is(["output.json", "result.json"]),
    ),
    (
        "privileges",
        "function attack(x) {\n  const found = { uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() };\n"
        "  for (const [name, call] of [['setuid', () => process.setuid(0)], ['setgid', () => process.setgid(0)], "
        "['chown', () => require('fs').chownSync('/tmp', 0, 0)]]) {\n"
        "    try { call(); found[name] = 'done'; } catch (e) { found[name] = e.code; }\n  }\n  return found;\n}\n",
        one(),
        value_check(
            lambda v, c: (
                v["uid"] in sandbox_uids()
                and v["groups"] in ([], *([gid] for gid in sandbox_gids()))
                and {v["setuid"], v["setgid"], v["chown"]} <= DENIED
            )
        ),
    ),
    (
        "huge_file",
        "function attack(x) {\n  try { require('fs').writeFileSync('/tmp/big', Buffer.alloc(100 * 1024 * 1024)); }"
        " catch (e) { return e.code; }\n  return 'wrote 100 MB';\n}\n",
        one(),
        value_check(lambda v, c: v in {"EFBIG", "ENOSPC"}),
    ),
    (
        "many_open_files",
        "const fs = require('fs');\nfunction attack(x) {\n  const fds = [];\n"
        "  try { for (;;) fds.push(fs.openSync('/dev/null', 'r')); } catch (e) { return [fds.length, e.code]; }\n}\n",
        one(),
        value_check(lambda v, c: v[1] == "EMFILE" and v[0] < current_config().max_open_files),
    ),
    (
        "forge_on_stdout",
        "const fs = require('fs');\nfunction attack(x) {\n"
        '  const fake = \'{"e":"result","i":1,"outcome":"ok","time_ms":0,"value":"forged"}\\n\';\n'
        "  console.log(fake); process.stdout.write(fake); fs.writeSync(1, fake); fs.writeSync(2, fake);\n"
        "  return `real${x}`;\n}\n",
        lambda c: [{"x": 0}, {"x": 1}],
        values_are("real0", "real1"),
    ),
    (
        "forge_on_results_fd",
        JS_FORGE_RESULTS,
        lambda c: [{"x": 0}, {"x": 1}],
        forged_result_counts_as_a_returned_value,
    ),
    (
        "read_stdin_again",
        "const fs = require('fs');\nfunction attack(x) {\n"
        "  return ['/dev/null', '/proc/self/fd/0', '/dev/stdin'].map((path, i) => fs.readFileSync(i ? path : 0, 'latin1'));\n}\n",
        one(),
        value_is(["", "", ""]),
    ),
    (
        "kill_parent_and_everyone",
        JS_KILL,
        lambda c: [{"x": 0}, {"x": 1}],
        everyone_survives,
    ),
    (
        "detached_daemon",
        "const cp = require('child_process');\nfunction attack(x) {\n"
        "  const child = cp.spawn('/bin/sh', ['-c', 'sleep 1000'], { detached: true, stdio: 'ignore' });\n  child.unref();\n"
        "  return 'daemon started';\n}\n",
        one(),
        value_is("daemon started"),
    ),
]


@pytest.mark.parametrize(("name", "code", "inputs", "check"), PY_ATTACKS, ids=[a[0] for a in PY_ATTACKS])
def test_python_attack(context: Context, start: str, name: str, code: str, inputs, check) -> None:
    cases = inputs(context)
    if start == "warm":
        prime_warm_pool("python")
    result = run_attack("python", code, cases)

    assert result.warm == (start == "warm")
    assert_clean(result, context, len(cases))
    check(result, context)


@pytest.mark.parametrize(("name", "code", "inputs", "check"), JS_ATTACKS, ids=[a[0] for a in JS_ATTACKS])
def test_javascript_attack(context: Context, start: str, name: str, code: str, inputs, check) -> None:
    cases = inputs(context)
    if start == "warm":
        prime_warm_pool("javascript")
    result = run_attack("javascript", code, cases)

    assert result.warm == (start == "warm")
    assert_clean(result, context, len(cases))
    check(result, context)


def test_there_are_at_least_twenty_attacks_per_language() -> None:
    assert len(PY_ATTACKS) >= 20
    assert len(JS_ATTACKS) >= 20


# --- hidden inputs must not reach a visible run -----------------------------------------------

PY_SMUGGLER = """
import builtins, os, sys

PLACES = ['/tmp/smuggled', '/dev/shm/smuggled', '/var/tmp/smuggled', '/smuggled', '/sandbox/smuggled']

def solve(secret):
    if secret != 'visible':
        for place in PLACES:
            try:
                with open(place, 'w') as handle:
                    handle.write(secret)
            except OSError:
                pass
        os.environ['SMUGGLED'] = secret
        builtins.smuggled = secret
        sys.modules['smuggled'] = secret
        return 'hidden run'
    found = [os.environ.get('SMUGGLED'), getattr(builtins, 'smuggled', None), str(sys.modules.get('smuggled'))]
    for place in PLACES:
        try:
            with open(place) as handle:
                found.append(handle.read())
        except OSError:
            found.append(None)
    return found
"""

JS_SMUGGLER = """
const fs = require('fs');
const PLACES = ['/tmp/smuggled', '/dev/shm/smuggled', '/var/tmp/smuggled', '/smuggled', '/sandbox/smuggled'];
function solve(secret) {
  if (secret !== 'visible') {
    for (const place of PLACES) { try { fs.writeFileSync(place, secret); } catch (e) {} }
    process.env.SMUGGLED = secret;
    globalThis.smuggled = secret;
    return 'hidden run';
  }
  const found = [process.env.SMUGGLED || null, globalThis.smuggled || null];
  for (const place of PLACES) { try { found.push(fs.readFileSync(place, 'utf8')); } catch (e) { found.push(null); } }
  return found;
}
"""


@pytest.mark.parametrize(("language", "code"), [("python", PY_SMUGGLER), ("javascript", JS_SMUGGLER)])
def test_hidden_inputs_do_not_cross_into_the_visible_run(context: Context, language: str, code: str) -> None:
    hidden_input = f"hidden-{secrets.token_hex(8)}"
    base = {"language": language, "code": code, "entrypoint": "solve", "parameters": ["secret"], "time_limit_ms": 1000}
    hidden = run_in_sandbox(SandboxRun(inputs=[{"secret": hidden_input}], memory_limit_mb=64, **base))
    visible = run_in_sandbox(SandboxRun(inputs=[{"secret": "visible"}], memory_limit_mb=64, **base))

    assert [t.value for t in hidden.tests] == ["hidden run"]
    assert visible.tests[0].outcome == "ok"
    assert hidden_input not in json.dumps(visible.tests[0].value)
    assert set(visible.tests[0].value) <= {None, "None"}
    assert_clean(visible, context, 1)


def test_the_host_never_follows_links_in_a_scratch_dir(tmp_path: Path) -> None:
    """The scratch dir of the unshare/none modes lives on the host: removing it must delete the
    links a program left, never what they point to."""
    from grading.sandbox.isolation import remove_scratch

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    scratch = tmp_path / "scratch"
    (scratch / "nested").mkdir(parents=True)
    (scratch / "output.json").symlink_to(precious / "keep.txt")
    (scratch / "nested" / "dir").symlink_to(precious)
    (scratch / "dirlink").symlink_to(precious, target_is_directory=True)

    remove_scratch(str(scratch))

    assert not scratch.exists()
    assert (precious / "keep.txt").read_text() == "keep"


def test_unused_port_is_unreachable_too(context: Context) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.listen()
        result = run_attack("python", PY_CONNECT, [{"x": port}])
    assert_clean(result, context, 1)
    assert result.tests[0].value in UNREACHABLE
