"""The fork helper ("zygote") for Python runs: a clean, pre-started interpreter that forks one
fresh sandbox per run, so a run costs a fork and its namespaces, not an interpreter start-up.

Started by the trusted side (zygote.py) as `python3 -I -S -B -c <bootstrap> <socket fd>`, as
root, with the sandbox's environment and only its request socket; the bootstrap reads this file
and the harness from stdin (so no host path shows in a sandbox's /proc/self/cmdline). It loads the Python
harness (nothing else of the project: no Django, no settings, no keys) and then only ever
receives requests on that socket: one SOCK_SEQPACKET message per run — a few numbers (uid, gid,
rlimits, scratch size) and four file descriptors: the job (the harness's stdin), the results
pipe, the stderr pipe and a control socket. It never reads a job: a job's inputs (hidden ones
included) exist only in the one sandbox that reads them, never in this process, so no later
sandbox forked from it can find them in its memory.

Per request it forks the run's sandbox into a new pid namespace (the sandbox is its pid 1); the
sandbox makes new mount, network, ipc, uts and cgroup namespaces and builds the same minimal read-only root as the other
isolation levels (a tmpfs with /usr bound read-only — the project's dirs inside it covered by an
empty tmpfs —, the /bin, /lib… links, a fresh /proc, a few
/dev nodes, a size-limited private tmpfs at /tmp), pivots into it and detaches the host's root,
starts a new session, joins a fresh session keyring, sets every rlimit, drops the whole capability
bounding set, switches to the run's REAL unprivileged uid/gid (no groups; the kernel clears every
capability), sets no_new_privs and the parent-death signal, installs the seccomp filter the
trusted side built (seccomp.py; given once, after the harness, on the bootstrap's stdin), keeps
only fds 0-3, and then runs the harness on the job (as pid 1: everything it starts dies with
it). The helper sends the sandbox's pidfd over the run's control socket at once, and its wait
status and CPU times when it ends (SIGCHLD wakes the helper). When the helper's socket closes
(the trusted process is gone) it exits, and the parent-death signals take every sandbox with it.
"""

import contextlib
import ctypes
import fcntl
import gc
import os
import resource
import select
import signal
import socket
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 22, 38
SECCOMP_MODE_FILTER = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
KEYCTL_JOIN_SESSION_KEYRING = 1
SCRATCH = "/tmp"  # noqa: S108 - inside the sandbox: its private tmpfs
BASE = "/tmp"  # noqa: S108 - where the new root is built, in the run's own mount namespace only
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}  # noqa: S108
RESULTS_FD = 3
FAILED_SETUP = 71  # the sandbox's exit code when it could not be built (nothing of the job ran)
# A pre-started sandbox's CPU priority while it is built (weight ~1/10 of a normal process's):
# it yields to verdicts under way but is not starved on a busy machine.
BACKGROUND_NICE = 10
LAST_CAP = 40  # read from the kernel at start-up

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None):
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _prctl(option, value):
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl {option}")


def _read_only_bind(source, target):
    _mount(source, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _build_root(params):
    """The run's file system: only what the interpreter needs, read-only, plus its scratch tmpfs.

    It is built in a directory of a fresh tmpfs, the tmpfs becomes the namespace's root (the
    host's root is detached, not just hidden), and the process is chrooted into that directory:
    a process whose root is not its mount namespace's root may not create a user namespace (the
    kernel refuses), so the learner cannot gain capabilities in one (bubblewrap's --disable-userns)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing from here on reaches the host
    _mount("tmpfs", BASE, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    root = f"{BASE}/root"
    for directory in ("", "/usr", "/proc", "/dev", SCRATCH):
        os.mkdir(f"{root}{directory}", 0o755)
    os.mkdir(f"{BASE}/.old", 0o700)
    _read_only_bind("/usr", f"{root}/usr")
    for directory in params["hides"]:  # the project's dirs inside /usr: covered (binds may follow)
        _mount("tmpfs", f"{root}{directory}", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0755")
    for name, target in params["links"]:
        os.symlink(target, f"{root}/{name}")
    for directory in params["binds"]:
        os.makedirs(f"{root}{directory}", 0o755, exist_ok=True)
        _read_only_bind(directory, f"{root}{directory}")
    for directory in params["hides"]:
        _mount(None, f"{root}{directory}", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for device in ("null", "zero", "full", "random", "urandom"):
        with open(f"{root}/dev/{device}", "x"):
            pass
        _mount(f"/dev/{device}", f"{root}/dev/{device}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        os.symlink(target, f"{root}/dev/{name}")
    os.symlink("/proc/self/fd/2", f"{root}/dev/stderr")
    uid, gid, size = params["uid"], params["gid"], params["scratch_bytes"]
    _mount("tmpfs", f"{root}{SCRATCH}", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0700,uid={uid},gid={gid}")
    os.chdir(BASE)
    pivot_root = SYS_PIVOT_ROOT[os.uname().machine]
    _check(_libc.syscall(pivot_root, b".", b".old"), "pivot_root")
    os.chroot(".")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount the host root")
    os.rmdir("/.old")
    _mount("proc", "/root/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot("/root")
    os.chdir(SCRATCH)


def _drop_privileges(params):
    """Rlimits, then the real sandbox uid with no capabilities and no way to gain any."""
    for name, value in params["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    for cap in range(LAST_CAP + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    uid, gid = params["uid"], params["gid"]
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    # The uid switch made the process undumpable (as a setuid program); an exec would make it
    # dumpable again, as the other levels' interpreters are: its /proc/self is its own.
    _prctl(PR_SET_DUMPABLE, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the uid switch cleared it
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise OSError("the uid switch did not take")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise OSError("root could be regained")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def _install_seccomp(program):
    """The trusted side's filter (seccomp.py), after the uid switch and before any job: from here
    on it holds for this process and everything it starts, and nothing can lift it."""
    if not program:
        return  # built without one (development only: production refuses to run then)
    fprog = _SockFprog(len(program) // 8, program)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0), "seccomp")


def _fresh_session_keyring():
    """A new, empty session keyring of the sandbox's own (not the helper's, which every sandbox
    forked from it would otherwise share); the filter then closes keyrings altogether."""
    keyctl = SYS_KEYCTL[os.uname().machine]
    if _libc.syscall(keyctl, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"join a session keyring: {os.strerror(errno)}")


def _background():
    """A pre-started sandbox is built on spare CPU only: its session's scheduling group (a new
    session is a new autogroup) and the process get a low priority, so building it does not
    slow a verdict under way. The run that takes it restores normal priority before its job."""
    os.setpriority(os.PRIO_PROCESS, 0, BACKGROUND_NICE)
    try:
        with open("/proc/self/autogroup", "w") as handle:
            handle.write(str(BACKGROUND_NICE))
    except OSError:
        pass  # no autogroups here: the process's own priority is what counts


def _sandbox_main(params, harness, program):
    """The sandbox: pid 1 of its pid namespace, fds 0-3 in place and nothing else open. Builds
    the rest of its isolation, then runs the harness on the job."""
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for procs in params["cgroups"]:  # the run's own cgroup, before its cgroup namespace
            with open(procs, "w") as handle:
                handle.write("0")
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP), "unshare")
        os.setsid()
        if "--self-limit" in params["harness_args"]:  # pre-started: it limits itself once its job is in
            _background()
        socket.sethostname("sandbox")
        _build_root(params)
        _fresh_session_keyring()
        _drop_privileges(params)
        _install_seccomp(program)
    except BaseException as exc:  # noqa: BLE001 - report, never run the job half-isolated
        os.write(2, f"sandbox set-up failed: {exc}\n".encode(errors="replace"))
        os._exit(FAILED_SETUP)
    os.environ.clear()
    os.environ.update(SANDBOX_ENV)
    sys.argv = ["/sandbox/harness_python.py", str(RESULTS_FD), *params["harness_args"], SCRATCH]
    try:
        harness["main"]()
    except BaseException:  # noqa: BLE001 - the trusted side reports missing results
        os._exit(70)
    os._exit(0)


def _fork_sandbox(params, fds, harness, own_pid_ns, program):
    """Fork the run's sandbox into a new pid namespace; returns its pid (it is our child)."""
    job, results, stderr = fds
    # Our next child is pid 1 of a new pid namespace (back to our own first: a process may only
    # unshare its children's pid namespace from the one it is in).
    _check(_libc.setns(own_pid_ns, CLONE_NEWPID), "setns")
    _check(_libc.unshare(CLONE_NEWPID), "unshare")
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            # Above every target first, so that no dup2 overwrites a source still to be placed.
            sources = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (job, os.open("/dev/null", os.O_WRONLY), stderr, results)]
            for target, source in enumerate(sources):
                os.dup2(source, target)
            os.closerange(RESULTS_FD + 1, 1 << 16)
        except BaseException:  # noqa: BLE001
            os._exit(FAILED_SETUP)
        _sandbox_main(params, harness, program)
    return pid


def _load_harness(source):
    """The harness as a module namespace, its one-time start-up paid here, once."""
    namespace = {"__name__": "harness_python", "__file__": "/sandbox/harness_python.py", "__builtins__": __builtins__}
    exec(compile(source, "/sandbox/harness_python.py", "exec", dont_inherit=True), namespace)  # noqa: S102 - our harness
    namespace["_warm_up"]()
    return namespace


def _parse(message):
    """`key=value` pairs; values are integers, except the lists (links, binds, hides, harness args, cgroups)."""
    params = {"rlimits": {}, "links": [], "binds": [], "hides": [], "harness_args": [], "cgroups": []}
    for field in message.decode("ascii").split():
        key, _, value = field.partition("=")
        if key.startswith("RLIMIT_"):
            params["rlimits"][key] = int(value)
        elif key == "link":
            name, _, target = value.partition(":")
            params["links"].append((name, target))
        elif key == "bind":
            params["binds"].append(value)
        elif key == "hide":
            params["hides"].append(value)
        elif key == "arg":
            params["harness_args"].append(value)
        elif key == "cgroup":
            params["cgroups"].append(value)
        elif key in ("uid", "gid", "scratch_bytes"):
            params[key] = int(value)
        else:
            raise ValueError(f"unknown field {key}")
    if not (params.get("uid") and params.get("gid") and params.get("scratch_bytes")):
        raise ValueError("uid, gid and scratch_bytes are required")
    return params


def main(harness_source, program):
    global LAST_CAP
    harness = _load_harness(harness_source)
    gc.freeze()  # what every sandbox inherits is never traversed by its collections
    requests = socket.socket(fileno=int(sys.argv[1]))
    requests.setblocking(False)
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        LAST_CAP = int(handle.read())
    null = os.open("/dev/null", os.O_RDWR)
    os.write(1, b"ready\n")
    os.dup2(null, 1)  # fds 0-2 stay taken: received fds never land on them
    os.close(null)
    exited_r, exited_w = os.pipe()  # SIGCHLD wakes the loop: a sandbox's end is reported at once
    os.set_blocking(exited_w, False)
    os.set_blocking(exited_r, False)
    signal.set_wakeup_fd(exited_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    running = {}  # sandbox pid → its run's control socket
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY)
    while True:
        ready = select.select([requests, exited_r], [], [])[0]
        if exited_r in ready:
            while os.read(exited_r, 4096) == 4096:
                pass
            _report_exits(running)
        if requests not in ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(requests, 4096, 4)
        except BlockingIOError:
            continue
        if not message:
            return  # the trusted process is gone (its sandboxes die with us: parent-death signal)
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        control = socket.socket(fileno=fds[3])
        try:
            params = _parse(message)
            pid = _fork_sandbox(params, fds[:3], harness, own_pid_ns, program)
            pidfd = os.pidfd_open(pid)
            try:
                socket.send_fds(control, [b"pid %d" % pid], [pidfd])
            finally:
                os.close(pidfd)
            running[pid] = control
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                control.send(b"error " + str(exc).encode(errors="replace")[:500])
            control.close()
        finally:
            for fd in fds[:3]:
                os.close(fd)
        _report_exits(running)


def _report_exits(running):
    """Reap every sandbox that ended and tell its run how (wait status, CPU times)."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control = running.pop(pid, None)
        if control is not None:
            with contextlib.suppress(OSError):
                control.send(b"exit %d %.6f %.6f %d" % (status, usage.ru_utime, usage.ru_stime, usage.ru_maxrss))
            control.close()


if __name__ == "__main__":
    main(HARNESS_SOURCE, SECCOMP_FILTER)  # noqa: F821 - given by the bootstrap (zygote.py)
