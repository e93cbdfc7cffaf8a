"""What isolation this machine offers, and the command lines that give it.

`bubblewrap`: the trusted side execs `setpriv` (switch to the sandbox uid: a REAL unprivileged
uid on the host, not just a user-namespace mapping; no groups, no capabilities) → `prlimit`
(the rlimits) → `bwrap … interpreter harness` (no shell, no Python in between): new user,
mount, pid, network, ipc, uts and cgroup namespaces; no capabilities; no further user namespaces;
a new session; an empty environment; a read-only root holding only /usr (and the /bin, /lib…
links or binds the interpreter needs), a fresh /proc and a minimal /dev, plus a size-limited
tmpfs at /tmp as the private scratch dir; the harness itself is copied in read-only; the seccomp
filter (seccomp.py) through `--seccomp`. The project's own directories (its code, var/, media)
never show: where they lie inside a bound directory (a project installed under /usr/local/…) an
empty read-only tmpfs covers them. The harness is pid 1 of its namespace, so every process it
starts dies with it.

`unshare` (no bubblewrap, running as root): `unshare` gives new mount, pid, network, ipc, uts
and cgroup namespaces; a small fixed shell script (pid 1, root) builds the same minimal read-only
root on a tmpfs mounted over an empty dir in a root-only host temp dir, then execs `chroot …
setpriv` (uid switch, no capabilities, no_new_privs) `prlimit … python -c <seccomp.LOADER>`, which
installs the seccomp filter and execs the interpreter, which stays pid 1.
(In a chroot the kernel refuses new user namespaces, so the chroot cannot be undone.) Nothing
the sandbox writes reaches that host dir; the trusted side only removes it, never reading it and
never following a link in it.

Figures: every level but the fork helper's runs under GNU time (`setpriv --pdeathsig` → `time`
→ the command above), which reports the wait4 rusage of the run's whole process tree on a pipe of
ours once everything in the sandbox is gone; the fork helper reports its own wait4 of each
sandbox. Nothing the sandbox writes sets a figure (see Usage).

`none` (development and tests only; production refuses): the interpreter runs directly, with the
rlimits, an empty environment, a new session, a fresh temp dir, and the sandbox uid when this
process may switch to it. No namespaces: it does not contain the learner's processes or files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import logging
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from grading.sandbox import cgroups, seccomp
from grading.sandbox.cgroups import RunCgroup

logger = logging.getLogger("co.sandbox")

SANDBOX_PATH = "/usr/bin:/bin"
SANDBOX_ENV = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "HOME": "/tmp"}  # noqa: S108 - the sandbox's own /tmp
HARNESS_DIR = "/sandbox"  # inside the sandbox
SCRATCH_DIR = "/tmp"  # noqa: S108 - inside the sandbox: its private tmpfs
_TOOL_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


# The trusted measurement of a run's peak memory (bubblewrap, unshare, none): GNU time forks the
# sandbox's outer process and reports its wait4 rusage, which covers every process of the run
# (the sandbox's pid 1 reaps them all). Our own wait4 cannot: the first exec in a child of this
# process records this process's own peak (a whole worker) as the child's. The report goes to a
# pipe that sandbox processes may also write to, but only GNU time writes after they are all gone:
# the last report line is its. (The fork helper reports its own wait4 of each sandbox.)
_USAGE_MARK = b"\nCO-RUSAGE "
_USAGE_FORMAT = "\nCO-RUSAGE %M"
_USAGE_TAIL = 256  # bytes of the usage pipe kept: the report is the end of it


@dataclass
class Usage:
    """What the trusted side measured of a whole run (wait4 rusage): CPU seconds, peak KiB."""

    ru_utime: float
    ru_stime: float
    ru_maxrss: int


def _default_python() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys._base_executable


@dataclass(frozen=True)
class SandboxConfig:
    isolation: str  # "auto" | "zygote" | "bubblewrap" | "unshare" | "none"
    python: str | None
    node: str | None
    uid: int
    gid: int
    bwrap: str | None
    max_processes: int
    uid_pool: int  # runs get uid/gid + slot, slot in [0, uid_pool): RLIMIT_NPROC is per run
    max_open_files: int
    max_file_bytes: int
    scratch_bytes: int
    startup_ms: int


@functools.lru_cache(maxsize=64)
def _which(name: str, path: str | None) -> str | None:
    """shutil.which, once per PATH (it stats every PATH entry, and every run would ask twice)."""
    return shutil.which(name, path=path)


def current_config() -> SandboxConfig:
    uid = int(getattr(settings, "CO_SANDBOX_UID", 65534))
    return SandboxConfig(
        isolation=str(getattr(settings, "CO_SANDBOX_ISOLATION", "auto") or "auto"),
        python=getattr(settings, "CO_SANDBOX_PYTHON", None) or _default_python(),
        node=getattr(settings, "CO_SANDBOX_NODE", None) or _which("node", os.environ.get("PATH")),
        uid=uid,
        gid=int(getattr(settings, "CO_SANDBOX_GID", uid)),
        bwrap=getattr(settings, "CO_SANDBOX_BWRAP", None) or _which("bwrap", os.environ.get("PATH")),
        max_processes=int(getattr(settings, "CO_SANDBOX_MAX_PROCESSES", 64)),
        uid_pool=max(1, int(getattr(settings, "CO_SANDBOX_UID_POOL", 1))),
        max_open_files=int(getattr(settings, "CO_SANDBOX_MAX_OPEN_FILES", 64)),
        max_file_bytes=int(getattr(settings, "CO_SANDBOX_MAX_FILE_BYTES", 8 * 1024 * 1024)),
        scratch_bytes=int(getattr(settings, "CO_SANDBOX_SCRATCH_BYTES", 16 * 1024 * 1024)),
        startup_ms=int(getattr(settings, "CO_SANDBOX_STARTUP_MS", 3000)),
    )


# Not "co-sandbox-*": that prefix is reserved for per-run scratch dirs.
_SLOT_DIR = os.path.join(tempfile.gettempdir(), "co-uid-slots")


@dataclass(frozen=True)
class UidSlot:
    """A uid (and gid) of the pool, held until released: `cfg` is the config for the run."""

    cfg: SandboxConfig
    lock_fd: int | None  # the exclusive flock on the slot's lock file; None without a pool

    def release(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # releases the lock


def slot_wait_seconds() -> float:
    """How long a run waits for a free uid slot before it ends as `error` (never a hang)."""
    return float(getattr(settings, "CO_SANDBOX_SLOT_WAIT_SECONDS", 30.0))


def uid_slot_acquire(cfg: SandboxConfig, *, wait: bool, on_busy: Callable[[], None] | None = None) -> UidSlot | None:
    """A uid (and gid) of its own from the pool, for one run; None when every slot is busy and
    `wait` is false, or is still busy after `slot_wait_seconds()`. Before waiting, `on_busy` may
    free slots this process holds idle.

    RLIMIT_NPROC counts every process of a uid on the machine: with one shared uid, a fork bomb
    in one learner's run would stop concurrent runs from starting. Each run holds an exclusive
    `flock` on its slot's lock file for its whole life (until `release`), across threads and
    processes (web, workers); the kernel releases it if the holder dies."""
    if cfg.uid_pool <= 1:
        return UidSlot(cfg, None)
    os.makedirs(_SLOT_DIR, mode=0o700, exist_ok=True)

    def take(slot: int, blocking: bool) -> UidSlot | None:
        # Named by the uid, not the slot: servers with different CO_SANDBOX_UID ranges on one
        # machine (two deployments, a test run beside a server) never wait for each other.
        descriptor = os.open(os.path.join(_SLOT_DIR, f"{cfg.uid + slot}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        return UidSlot(dataclasses.replace(cfg, uid=cfg.uid + slot, gid=cfg.gid + slot), descriptor)

    first = secrets.randbelow(cfg.uid_pool)
    order = [(first + step) % cfg.uid_pool for step in range(cfg.uid_pool)]
    # Try every slot without waiting; free our idle ones and try again; then wait for the first.
    for slot in order:
        if taken := take(slot, blocking=False):
            return taken
    if not wait:
        return None
    if on_busy is not None:
        on_busy()
    # Any slot that comes free, until the deadline (a blocking flock on one slot could wait forever).
    deadline = time.monotonic() + slot_wait_seconds()
    delay = 0.005
    while True:
        for slot in order:
            if taken := take(slot, blocking=False):
                return taken
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)


def tool(name: str) -> str | None:
    return _which(name, _TOOL_PATH)


def switch_user(cfg: SandboxConfig) -> tuple[list[str], dict]:
    """(command prefix, Popen arguments) that make the child the sandbox uid, with no groups and
    no capabilities. `setpriv` lets Popen use vfork (a fork copies a big worker's page tables);
    without it, Popen switches in C between fork and exec."""
    if os.geteuid() == cfg.uid:
        return [], {}
    setpriv = tool("setpriv")
    if setpriv is None:
        return [], {"user": cfg.uid, "group": cfg.gid, "extra_groups": []}
    return [
        setpriv,
        f"--reuid={cfg.uid}",
        f"--regid={cfg.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ], {}


@dataclass(frozen=True)
class Rlimits:
    address_space: int | None  # bytes; None = unlimited
    cpu_seconds: int
    processes: int
    open_files: int
    file_bytes: int
    stack_bytes: int = 64 * 1024 * 1024

    def prlimit_args(self) -> list[str]:
        prlimit = tool("prlimit")
        if prlimit is None:
            raise FileNotFoundError("prlimit")
        args = [
            prlimit,
            f"--cpu={self.cpu_seconds}",
            f"--nproc={self.processes}",
            f"--nofile={self.open_files}",
            f"--fsize={self.file_bytes}",
            f"--stack={self.stack_bytes}",
            "--core=0",
        ]
        if self.address_space is not None:
            args.append(f"--as={self.address_space}")
        return [*args, "--"]


def _interpreter_binds(interpreter: str) -> list[str]:
    """The host directory holding an interpreter that lives outside /usr (bound read-only)."""
    real = os.path.realpath(interpreter)
    if real.startswith("/usr/"):
        return []
    return [str(Path(real).parent.parent)]


# The settings that name where the project lives on this host (its code is found from this file).
_PROJECT_SETTINGS = ("BASE_DIR", "VAR_DIR", "MEDIA_ROOT", "STATIC_ROOT")
_PROJECT_CODE = Path(__file__).resolve().parents[2]


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass(frozen=True)
class HiddenDirs:
    """The project's directories that lie inside a directory bound into the sandbox (a project
    installed under /usr/local/…, which the read-only /usr would show): each gets an empty
    read-only tmpfs over it. `rebind`: the interpreter's own prefix when it lies inside one of
    them (a virtualenv with a copied interpreter), bound again on top."""

    hide: tuple[str, ...]
    rebind: tuple[str, ...]


def hidden_dirs(interpreter: str) -> HiddenDirs:
    """What of the project this sandbox must cover (see HiddenDirs); the same for every run of an
    interpreter until a setting moves the project."""
    named = tuple(str(getattr(settings, name, "") or "") for name in _PROJECT_SETTINGS)
    return _hidden_dirs(interpreter, named)


@functools.lru_cache(maxsize=32)
def _hidden_dirs(interpreter: str, named: tuple[str, ...]) -> HiddenDirs:
    bound = ["/usr"] + [target for kind, _, target in _root_entries() if kind == "dir"] + _interpreter_binds(interpreter)
    project = {str(_PROJECT_CODE)} | {os.path.realpath(directory) for directory in named if directory}
    # Only what is inside a bound dir, never a bound dir itself or what holds one (that would be
    # the interpreter's whole tree): such a layout is refused below, not half hidden.
    hide = sorted(
        directory
        for directory in project
        if any(_within(directory, root) for root in bound) and not any(_within(root, directory) for root in bound)
    )
    hide = [directory for directory in hide if not any(other != directory and _within(directory, other) for other in hide)]
    real = os.path.realpath(interpreter)
    rebind = tuple(str(Path(real).parent.parent) for directory in hide if _within(real, directory))
    if any(" " in directory for directory in hide + list(rebind)):
        raise ValueError("the project's path must not contain spaces")  # fail closed: never run it visible
    return HiddenDirs(tuple(hide), rebind)


def _root_entries() -> list[tuple[str, str, str]]:
    """(kind, name, target) for /bin, /lib… as on the host: ("link", "lib", "usr/lib") or ("dir", "lib", "/lib")."""
    entries = []
    for name in _ROOT_LINKS:
        path = f"/{name}"
        if os.path.islink(path):
            entries.append(("link", name, os.readlink(path)))
        elif os.path.isdir(path):
            entries.append(("dir", name, path))
    return entries


def bwrap_command(
    cfg: SandboxConfig,
    interpreter_argv: list[str],
    *,
    harness_fd: int | None,
    harness_name: str,
    info_fd: int,
    seccomp_fd: int | None = None,
) -> list[str]:
    """bwrap arguments up to and including the interpreter command (the caller adds prlimit)."""
    assert cfg.bwrap is not None
    args = [
        cfg.bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        "--clearenv",
    ]
    for key, value in SANDBOX_ENV.items():
        args += ["--setenv", key, value]
    args += ["--ro-bind", "/usr", "/usr"]
    for kind, name, target in _root_entries():
        args += ["--symlink", target, f"/{name}"] if kind == "link" else ["--ro-bind", target, f"/{name}"]
    hidden = hidden_dirs(interpreter_argv[0])
    for directory in hidden.hide:
        args += ["--size", "4096", "--perms", "0755", "--tmpfs", directory]
    for directory in [*_interpreter_binds(interpreter_argv[0]), *hidden.rebind]:
        args += ["--ro-bind", directory, directory]
    args += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(cfg.scratch_bytes),
        "--perms",
        "0700",
        "--tmpfs",
        SCRATCH_DIR,
    ]
    if harness_fd is not None:
        args += ["--perms", "0444", "--ro-bind-data", str(harness_fd), f"{HARNESS_DIR}/{harness_name}"]
    for directory in hidden.hide:
        args += ["--remount-ro", directory]
    args += [
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        SCRATCH_DIR,
        "--info-fd",
        str(info_fd),
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        "--",
        os.path.realpath(interpreter_argv[0]),
        *interpreter_argv[1:],
    ]
    return args


# The unshare fallback's pid 1 (root, for a moment): builds a minimal read-only root on a tmpfs
# mounted over the (empty) host dir $1, then execs chroot → setpriv (uid switch, no capabilities)
# → prlimit → the interpreter, which stays pid 1. Fixed text: every variable part is a
# positional argument chosen by the trusted side.
_UNSHARE_SCRIPT = r"""
set -eu
root=$1 harness=$2 harness_name=$3 scratch_bytes=$4 uid=$5 gid=$6 links=$7 binds=$8 hides=$9
shift 9
mount -t tmpfs -o size=4m,mode=0755,nosuid,nodev tmpfs "$root"
mkdir "$root/usr" "$root/proc" "$root/dev" "$root/tmp" "$root/sandbox"
mount --bind /usr "$root/usr"
mount -o remount,bind,ro,nosuid,nodev "$root/usr"
for dir in $hides; do
  mount -t tmpfs -o size=4k,mode=0755,nosuid,nodev,noexec tmpfs "$root$dir"
done
for entry in $links; do
  ln -s "${entry#*=}" "$root/${entry%%=*}"
done
for dir in $binds; do
  mkdir -p "$root$dir"
  mount --bind "$dir" "$root$dir"
  mount -o remount,bind,ro,nosuid,nodev "$root$dir"
done
for dir in $hides; do
  mount -o remount,ro,nosuid,nodev,noexec "$root$dir"
done
for dev in null zero full random urandom; do
  touch "$root/dev/$dev"
  mount --bind "/dev/$dev" "$root/dev/$dev"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o "size=$scratch_bytes,mode=0700,uid=$uid,gid=$gid,nosuid,nodev" tmpfs "$root/tmp"
if [ "$harness" != - ]; then
  cat "$harness" > "$root/sandbox/$harness_name"
  chmod 0444 "$root/sandbox/$harness_name"
fi
mount -o remount,bind,ro,nosuid,nodev "$root"
unset PWD OLDPWD
exec "$@"
"""


def unshare_command(
    cfg: SandboxConfig,
    interpreter_argv: list[str],
    *,
    scratch_mount: str,
    harness_path: str | None,
    harness_name: str,
    seccomp_fd: int | None = None,
) -> tuple[list[str], list[str]]:
    """(command up to the uid switch, command after it): the caller puts prlimit in between.
    With `seccomp_fd`, the sandbox's Python installs that filter and then execs the interpreter."""
    unshare, chroot, setpriv = tool("unshare"), tool("chroot"), tool("setpriv")
    if not (unshare and chroot and setpriv and tool("mount")):
        raise FileNotFoundError("unshare, chroot, setpriv and mount are needed")
    if seccomp_fd is not None and not (cfg.python and os.path.exists(cfg.python)):
        raise FileNotFoundError("the seccomp loader needs the sandbox's Python")
    extra_binds = _interpreter_binds(interpreter_argv[0])
    if seccomp_fd is not None:
        extra_binds += [d for d in _interpreter_binds(cfg.python) if d not in extra_binds]
    links = " ".join(f"{name}={target}" for kind, name, target in _root_entries() if kind == "link")
    hidden = hidden_dirs(interpreter_argv[0])
    binds = " ".join([target for kind, _, target in _root_entries() if kind == "dir"] + extra_binds + list(hidden.rebind))
    head = [
        setpriv,
        "--pdeathsig",
        "SIGKILL",  # this worker thread dies → unshare dies → (--kill-child) the sandbox dies
        "--",
        unshare,
        "--mount",
        "--propagation",
        "private",
        "--net",
        "--ipc",
        "--uts",
        "--cgroup",
        "--pid",
        "--fork",
        "--kill-child",
        "--",
        "/bin/sh",
        "-c",
        _UNSHARE_SCRIPT,
        "sh",
        scratch_mount,
        harness_path or "-",
        harness_name,
        str(cfg.scratch_bytes),
        str(cfg.uid),
        str(cfg.gid),
        links,
        binds,
        " ".join(hidden.hide),
        chroot,
        scratch_mount,
        setpriv,
        f"--reuid={cfg.uid}",
        f"--regid={cfg.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--pdeathsig",
        "SIGKILL",  # again: the uid switch clears the parent-death signal
        "--",
    ]
    tail = [os.path.realpath(interpreter_argv[0]), *interpreter_argv[1:]]
    if seccomp_fd is not None:
        tail = [os.path.realpath(cfg.python), "-I", "-S", "-c", seccomp.LOADER, str(seccomp_fd), *tail]
    return head, tail


# --- starting, killing and reaping a sandbox ------------------------------------------------


def _children(pid: int) -> list[int]:
    """Host pids whose parent is `pid` (/proc scan; only used to kill the unshare fallback)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def signal_of(status: int | None) -> int | None:
    """The signal a wait status says the process died of, if any."""
    return os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None


class SandboxProcess:
    """A started sandbox: the outer process (prlimit → bwrap / unshare / the interpreter)."""

    def __init__(
        self,
        level: str,
        process: subprocess.Popen,
        info_fd: int | None,
        scratch: str | None,
        usage_fd: int | None = None,
    ) -> None:
        self.level = level
        self.process = process
        self.pid = process.pid
        self._info_fd = info_fd
        self._info = b""
        self._ns_init: int | None = None
        self.scratch = scratch
        self.status: int | None = None
        self.rusage: Usage | None = None
        self._usage_fd = usage_fd  # GNU time's report (the outer process is GNU time)
        self._usage = b""
        self._timed = usage_fd is not None
        self.cgroup: RunCgroup | None = None  # the run's own (cgroups.py), removed by cleanup()

    def _read_info(self, timeout: float) -> None:
        """bwrap's --info-fd: {"child-pid": N, ...}, N being the sandbox's pid 1 on the host."""
        if self._info_fd is None:
            return
        deadline = time.monotonic() + timeout
        while b"}" not in self._info:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._info_fd], [], [], left)[0]:
                return
            chunk = os.read(self._info_fd, 4096)
            if not chunk:
                break
            self._info += chunk
        os.close(self._info_fd)
        self._info_fd = None
        try:
            self._ns_init = int(json.loads(self._info)["child-pid"])
        except (ValueError, KeyError, TypeError):
            self._ns_init = None

    def open_pidfd(self) -> int:
        """A pidfd of the outer process (readable when it exits), for the run's poll loop."""
        return os.pidfd_open(self.pid)

    def interpreter_pid(self, timeout: float) -> int | None:
        """The host pid of the sandboxed interpreter (bubblewrap: its pid 1, from --info-fd;
        unshare: the child of `unshare`, pid 1 of the namespace; none: the process itself), for
        prlimit(2) from the trusted side. Call it once the interpreter runs (all execs done)."""
        if self.level == "bubblewrap":
            self._read_info(timeout=timeout)
            return self._ns_init
        if self.level == "unshare":
            children = self._unshare_children()
            return children[0] if len(children) == 1 else None
        if self._timed:
            children = _children(self.pid)
            return children[0] if len(children) == 1 else None
        return self.pid

    def _unshare_children(self) -> list[int]:
        """The unshare fallback's pid 1 (the child of `unshare`, below GNU time when it measures)."""
        outer = _children(self.pid) if self._timed else [self.pid]
        return [pid for parent in outer for pid in _children(parent)]

    def kill(self, *, wait: bool = True) -> None:
        """Kill everything in the sandbox and (`wait`) reap it: then no sandbox process is left.

        Killing the sandbox's pid 1 makes the kernel kill its whole pid namespace, and the outer
        process (bwrap, unshare) reaps it only after that; then we reap the outer process."""
        if self.status is not None:
            return
        targets: list[int] = []
        if self.level == "bubblewrap":
            self._read_info(timeout=1.0)
            targets = [self._ns_init] if self._ns_init else []
        elif self.level == "unshare":
            targets = self._unshare_children()
        elif self._timed:
            targets = _children(self.pid)  # the interpreter: GNU time then reports and exits
        else:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
        # Under GNU time, never GNU time itself: with no target left (the sandbox has just ended on
        # its own) it is about to write its report and exit, and reap() waits for that.
        for pid in targets or ([] if self._timed else [self.pid]):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if wait:
            self.reap()

    def reap(self) -> None:
        """Wait for the killed sandbox to be gone (the outer process last)."""
        if not self.wait(timeout=5.0):
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait(timeout=None)
        if self.level == "none":
            # No pid namespace: what the program left running is in its process group.
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)

    def _read_usage(self, *, last: bool) -> None:
        """Drain GNU time's pipe (sandbox processes may fill it: GNU time must never block on
        it), keeping its tail; `last`: the outer process is reaped, the report is in — parse it."""
        if self._usage_fd is None:
            return
        with contextlib.suppress(OSError):
            while chunk := os.read(self._usage_fd, 1 << 16):
                self._usage = (self._usage + chunk)[-_USAGE_TAIL:]
        if not last:
            return
        os.close(self._usage_fd)
        self._usage_fd = None
        maxrss = 0
        mark = self._usage.rfind(_USAGE_MARK)
        if mark >= 0:
            with contextlib.suppress(ValueError):
                maxrss = max(0, int(self._usage[mark + len(_USAGE_MARK) :].split(b"\n", 1)[0]))
        else:
            logger.warning("no usage report from GNU time (status %s)", self.status)
        assert self.rusage is not None
        self.rusage.ru_maxrss = maxrss

    def wait(self, timeout: float | None) -> bool:
        """Reap the outer process (True) or give up after `timeout` seconds (False)."""
        if self.status is not None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            pidfd: int | None = os.pidfd_open(self.pid)  # readable once it exits
        except OSError:
            pidfd = None
        try:
            delay = 0.001
            while True:
                self._read_usage(last=False)
                pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
                if pid == self.pid:
                    self.status = status
                    # CPU: the kernel's, of every process of the run. Memory: GNU time's report
                    # (our own figure starts with this process's peak), else unknown.
                    self.rusage = Usage(rusage.ru_utime, rusage.ru_stime, 0)
                    self._read_usage(last=True)
                    self.process.returncode = os.waitstatus_to_exitcode(status)
                    if self._info_fd is not None:
                        os.close(self._info_fd)
                        self._info_fd = None
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if pidfd is None:
                    time.sleep(delay if left is None else min(delay, left))
                    delay = min(delay * 2, 0.02)
                    continue
                # Woken by its exit, or by writes to the usage pipe (drained above, so that GNU
                # time never blocks on a pipe the sandbox filled).
                select.select([pidfd] + ([self._usage_fd] if self._usage_fd is not None else []), [], [], left)
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def death_signal(self) -> int | None:
        """The signal that ended the sandboxed program, if one did (bwrap and the fallback's
        shell report it as exit code 128 + N)."""
        if self.status is None:
            return None
        if (number := signal_of(self.status)) is not None:
            return number
        code = os.WEXITSTATUS(self.status)
        wrapped = self.level != "none" or self._timed
        return code - 128 if wrapped and 128 < code < 128 + 65 else None

    def exit_code(self) -> int | None:
        if self.status is None or not os.WIFEXITED(self.status):
            return None
        return os.WEXITSTATUS(self.status)

    def cleanup(self) -> None:
        for name in ("_info_fd", "_usage_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        if self.scratch is not None:
            remove_scratch(self.scratch)
            self.scratch = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None


class _Reaper:
    """Reaps killed sandboxes off the verdict's path (tearing a namespace down is work no
    learner needs to wait for). What a run holds — its uid slot, its scratch
    dir — is let go only once its processes are gone, so nothing reuses them early."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[tuple[SandboxProcess, Callable[[], None]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, sandbox: SandboxProcess, then: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._reap_forever, name="sandbox-reaper", daemon=True)
                self._thread.start()
        self._queue.put((sandbox, then))

    def _reap_forever(self) -> None:
        while True:
            sandbox, then = self._queue.get()
            try:
                sandbox.kill()
                sandbox.cleanup()
            except Exception:  # this thread must live on
                logger.exception("reaping a sandbox failed")
            finally:
                then()


_reaper = _Reaper()
os.register_at_fork(after_in_child=_reaper._reset)  # the parent's sandboxes are the parent's to reap


def reap_later(sandbox: SandboxProcess, then: Callable[[], None]) -> None:
    """Kill the sandbox now; reap it, remove its scratch dir and then call `then` in the background."""
    sandbox.kill(wait=False)
    _reaper.submit(sandbox, then)


_SCRATCH_PREFIX = "co-sandbox-"
_swept = False


def _new_scratch() -> str:
    """A fresh root-only host temp dir, named after this process so that a later process can
    remove what a killed one left behind."""
    global _swept
    if not _swept:
        _swept = True
        sweep_stale_scratch()
    return tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-")


def sweep_stale_scratch() -> None:
    """Remove the scratch dirs of processes that are gone (a worker killed mid-run)."""
    directory = tempfile.gettempdir()
    for name in os.listdir(directory):
        if not name.startswith(_SCRATCH_PREFIX):
            continue
        owner = name[len(_SCRATCH_PREFIX) :].split("-", 1)[0]
        if not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            if os.lstat(path).st_uid == os.geteuid():
                remove_scratch(path)


def remove_scratch(path: str) -> None:
    """Remove a host scratch dir without following any link in it and without reading any file."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return
    except OSError:
        # fd-based walk on Linux: symlinks are unlinked, never followed (shutil.rmtree.avoids_symlink_attacks).
        shutil.rmtree(path, ignore_errors=True)


def start_sandbox(
    level: str,
    cfg: SandboxConfig,
    interpreter_argv: list[str],
    *,
    rlimits: Rlimits,
    harness: tuple[str, bytes] | None,
    stdin: int,
    stdout: int,
    stderr: int,
    pass_fds: tuple[int, ...] = (),
    harness_args: tuple[str, ...] = (),
    cgroup: RunCgroup | None = None,
) -> SandboxProcess:
    """Start interpreter_argv in a sandbox at `level`.

    `harness` is (file name, contents): it appears read-only at /sandbox/<name> (bubblewrap,
    unshare) or in the scratch dir (none); the argv gets its path, `harness_args`, and the
    scratch dir's path as seen inside the sandbox.

    `zygote` (Python only): the fork helper's harness runs; `harness_args[0]` names the results fd
    (which must be the first of `pass_fds`), the interpreter argv and `harness` are the helper's own."""
    if level == "zygote":
        from grading.sandbox.zygote import zygote

        assert stdout == subprocess.DEVNULL and pass_fds and harness_args[0] == str(pass_fds[0])
        spawned = zygote().spawn(
            cfg, rlimits, stdin=stdin, results=pass_fds[0], stderr=stderr, harness_args=harness_args[1:], cgroup=cgroup
        )
        spawned.cgroup = cgroup
        return spawned
    popen_kwargs: dict = {
        "stdin": stdin,
        "stdout": stdout,
        "stderr": stderr,
        "start_new_session": True,
        "close_fds": True,
        "env": dict(SANDBOX_ENV),
        "cwd": "/",  # nothing of the worker's own directory, not even its name
    }
    harness_fd = info_r = info_w = usage_r = usage_w = seccomp_fd = None
    scratch = None
    argv = list(interpreter_argv)
    try:
        program = seccomp.available_program() if level in ("bubblewrap", "unshare") else None
        if program is not None:
            seccomp_fd = seccomp.program_fd(program)
        if harness is not None and level == "bubblewrap":
            harness_fd = os.memfd_create("harness", os.MFD_CLOEXEC)
            os.write(harness_fd, harness[1])
            os.lseek(harness_fd, 0, os.SEEK_SET)
        if level == "bubblewrap":
            if harness is not None:
                argv += [f"{HARNESS_DIR}/{harness[0]}", *harness_args, SCRATCH_DIR]
            info_r, info_w = os.pipe()
            prefix, user_kwargs = switch_user(cfg)
            popen_kwargs.update(user_kwargs)
            command = (
                prefix
                + rlimits.prlimit_args()
                + bwrap_command(
                    cfg,
                    argv,
                    harness_fd=harness_fd,
                    harness_name=harness[0] if harness else "",
                    info_fd=info_w,
                    seccomp_fd=seccomp_fd,
                )
            )
            fds = (*pass_fds, info_w, *(fd for fd in (harness_fd, seccomp_fd) if fd is not None))
        elif level == "unshare":
            # A root-only host dir: the harness, and an empty dir the sandbox's root is mounted on.
            scratch = _new_scratch()
            os.mkdir(os.path.join(scratch, "root"), 0o700)
            harness_path = None
            if harness is not None:
                harness_path = os.path.join(scratch, "harness")
                with open(harness_path, "xb") as handle:
                    handle.write(harness[1])
                argv += [f"{HARNESS_DIR}/{harness[0]}", *harness_args, SCRATCH_DIR]
            head, tail = unshare_command(
                cfg,
                argv,
                scratch_mount=os.path.join(scratch, "root"),
                harness_path=harness_path,
                harness_name=harness[0] if harness else "-",
                seccomp_fd=seccomp_fd,
            )
            command = head + rlimits.prlimit_args() + tail
            fds = tuple(pass_fds) + ((seccomp_fd,) if seccomp_fd is not None else ())
        elif level == "none":
            scratch = _new_scratch()
            if harness is not None:
                harness_path = os.path.join(scratch, harness[0])
                with open(harness_path, "xb") as handle:
                    handle.write(harness[1])
                os.chmod(harness_path, 0o444)
                argv += [harness_path, *harness_args, scratch]
            prefix: list[str] = []
            if os.geteuid() == 0 and cfg.uid != 0:
                os.chown(scratch, cfg.uid, cfg.gid)
                prefix, user_kwargs = switch_user(cfg)
                popen_kwargs.update(user_kwargs)
            popen_kwargs["cwd"] = scratch
            command = prefix + rlimits.prlimit_args() + argv
            fds = tuple(pass_fds)
        else:
            raise ValueError(f"unknown isolation level {level!r}")
        if cgroup is not None and level != "none" and "user" not in popen_kwargs:
            # Root's first step: the run's processes are all in its cgroup from the first exec on.
            command = ["/bin/sh", "-c", cgroups.ENTER, "sh", *cgroup.procs_files, "--", *command]
        timer = _gnu_time()
        if timer is not None:  # outermost, outside the run's cgroup: it reports after the run ends
            usage_r, usage_w = os.pipe()
            os.set_blocking(usage_r, False)
            command = [*timer, "--quiet", "--format", _USAGE_FORMAT, "--output", f"/proc/self/fd/{usage_w}", "--", *command]
            fds = (*fds, usage_w)
        process = subprocess.Popen(command, pass_fds=fds, **popen_kwargs)
    except BaseException:
        for fd in (info_r, info_w, usage_r, usage_w):
            if fd is not None:
                os.close(fd)
        if scratch is not None:
            remove_scratch(scratch)
        raise
    finally:
        for fd in (harness_fd, seccomp_fd):
            if fd is not None:
                os.close(fd)
    for fd in (info_w, usage_w):
        if fd is not None:
            os.close(fd)
    sandbox = SandboxProcess(level, process, info_r, scratch, usage_r)
    sandbox.cgroup = cgroup if level != "none" else None
    return sandbox


_warned_no_timer = False


def _gnu_time() -> list[str] | None:
    """The command that runs GNU time (Debian package `time`), which measures a run's peak
    memory; without it the figure is unknown (0), never taken from the sandbox. It dies with the
    thread that started it (parent-death signal), as everything under it does (bubblewrap's
    --die-with-parent, the unshare fallback's parent-death signals follow their parent: it)."""
    global _warned_no_timer
    timer, setpriv = tool("time"), tool("setpriv")
    if timer is None or setpriv is None:
        if not _warned_no_timer:
            _warned_no_timer = True
            logger.warning("GNU time or setpriv is not installed (packages time, util-linux): peak memory is not measured")
        return None
    return [setpriv, "--pdeathsig", "SIGKILL", "--", timer]


# --- what this machine can do -------------------------------------------------------------

_PROBE_CODE = "import os;print([os.getuid(),os.getgid()])"
_probe_lock = threading.Lock()
_probe_cache: dict[tuple, bool] = {}


def _probe(level: str, cfg: SandboxConfig) -> bool:
    """Start a tiny sandbox at `level`; True when it runs as the real (host) sandbox uid."""
    if not cfg.python or not os.path.exists(cfg.python):
        return False
    if level == "zygote":
        from grading.sandbox.zygote import zygote_probe

        return zygote_probe(cfg)
    rlimits = Rlimits(address_space=None, cpu_seconds=10, processes=cfg.max_processes, open_files=64, file_bytes=1 << 20)
    out_r, out_w = os.pipe()
    try:
        sandbox = start_sandbox(
            level,
            cfg,
            [cfg.python, "-I", "-S", "-c", _PROBE_CODE],
            rlimits=rlimits,
            harness=None,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        os.close(out_r)
        os.close(out_w)
        logger.info("sandbox isolation %s unavailable: %s", level, type(exc).__name__)
        return False
    os.close(out_w)
    try:
        output = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and select.select([out_r], [], [], deadline - time.monotonic())[0]:
            chunk = os.read(out_r, 4096)
            if not chunk:
                break
            output += chunk
        if not sandbox.wait(timeout=max(0.0, deadline - time.monotonic())):
            sandbox.kill()
    finally:
        os.close(out_r)
        sandbox.kill()
        sandbox.cleanup()
    try:
        uid, gid = json.loads(output)
        # The process was switched to the sandbox uid before exec (and nothing in the sandbox can
        # gain another uid: no capabilities, no_new_privs), so the uid seen inside is the host uid.
        ok = uid == cfg.uid and gid == cfg.gid
    except (ValueError, TypeError):
        ok = False
    if not ok:
        logger.info("sandbox isolation %s unavailable (exit status %s)", level, sandbox.status)
    return ok


def level_available(level: str, cfg: SandboxConfig) -> bool:
    key = (level, cfg)
    with _probe_lock:
        if key not in _probe_cache:
            _probe_cache[key] = _probe(level, cfg)
        return _probe_cache[key]


def isolation_level() -> str:
    """What this machine can do: "bubblewrap" | "unshare" | "none" (probed once, then cached).

    `CO_SANDBOX_ISOLATION` ("auto" by default) can pin a level; a pinned level this machine
    cannot provide gives "none" (so production refuses to run code). `zygote` pins Python's fork
    helper (`language_level`) and leaves the rest to the automatic choice."""
    cfg = current_config()
    wanted = cfg.isolation
    if wanted == "none":
        return "none"
    if wanted in ("auto", "zygote", "bubblewrap") and cfg.bwrap and level_available("bubblewrap", cfg):
        return "bubblewrap"
    if wanted in ("auto", "zygote", "unshare") and os.geteuid() == 0 and level_available("unshare", cfg):
        return "unshare"
    return "none"


def language_level(language: str) -> str:
    """The level a run in `language` gets. Python forks from the helper (`zygote`) where this
    process is root, `CO_SANDBOX_ZYGOTE` is on (the default) and the isolation is `auto` or
    pinned to `zygote` (which then gives Python "none" when the helper cannot run); everything
    else, and Python under another pinned level, gets `isolation_level()`."""
    level = isolation_level()
    cfg = current_config()
    if language != "python" or cfg.isolation not in ("auto", "zygote") or level == "none":
        return level
    if getattr(settings, "CO_SANDBOX_ZYGOTE", True) and os.geteuid() == 0 and level_available("zygote", cfg):
        return "zygote"
    return "none" if cfg.isolation == "zygote" else level
