"""The seccomp filter every sandbox runs under: no kernel channel between runs, no kernel attack
surface a learner's program has no use for.

Anchored on the default profile of container runtimes (moby's `profiles/seccomp/default.json`):
what it allows only with capabilities a sandbox never has, or never, is denied here too — kernel
keyrings (keys outlive a run and are shared by uid, not by namespace), ptrace and reading other
processes' memory, bpf, perf events, userfaultfd, io_uring, every mount call, namespace
creation and entry, kernel modules, clocks, reboot and the like. A denied call fails with EPERM
(clone3, whose flags a filter cannot see, with ENOSYS: the C library then falls back to clone,
whose flags it can). Anything else is allowed: the namespaces, the uid and the rlimits are the
boundary, this takes away the kernel interfaces they do not cover.

The program is built once per process by libseccomp (through `pyseccomp`) in the trusted
process and exported as classic BPF (`seccomp_export_bpf`): the sandbox's own interpreter needs
no binding. bubblewrap loads it with `--seccomp FD`, the fork helper with prctl in the forked
sandbox after its uid switch, the unshare fallback with a short loader before the interpreter
(`LOADER`). Calls of another ABI than the machine's (i386, x32) kill the process: libseccomp's
default for an architecture the filter does not name.
"""

from __future__ import annotations

import errno
import functools
import logging
import os

logger = logging.getLogger("co.sandbox")

# CLONE_NEW* flags clone() takes (CLONE_NEWTIME only exists for clone3 and unshare).
_CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

DENIED = (
    # kernel keyrings: shared by every process of a uid, they would carry data from run to run
    "add_key",
    "keyctl",
    "request_key",
    # other processes' memory and state
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # kernel programs, tracing and asynchronous kernel interfaces
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
    "lookup_dcookie",
    # file systems and namespaces
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "name_to_handle_at",
    "open_by_handle_at",
    "quotactl",
    "quotactl_fd",
    "swapon",
    "swapoff",
    # the kernel and the machine
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "acct",
    "syslog",
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_adjtime",
    "iopl",
    "ioperm",
    "vm86",
    "vm86old",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
    "vhangup",
    # NUMA placement: Docker allows it only with CAP_SYS_NICE
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "move_pages",
    "migrate_pages",
)

# The unshare fallback's loader (run by the sandbox's Python, as the sandbox uid, after the uid
# switch and the rlimits): reads the program from the fd in argv[1], installs it and execs the
# interpreter. No shell, nothing of the job: the interpreter is the first thing it runs.
LOADER = (
    "import ctypes,os,sys\n"
    "fd=int(sys.argv[1]);p=os.read(fd,1<<20);os.close(fd)\n"
    "class F(ctypes.Structure):_fields_=[('n',ctypes.c_ushort),('f',ctypes.c_char_p)]\n"
    "f=F(len(p)//8,p);c=ctypes.CDLL(None,use_errno=True)\n"
    "c.prctl.argtypes=[ctypes.c_int,ctypes.c_ulong,ctypes.c_void_p,ctypes.c_ulong,ctypes.c_ulong]\n"
    "if not p or c.prctl(38,1,None,0,0) or c.prctl(22,2,ctypes.addressof(f),0,0):os._exit(71)\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)


class SeccompUnavailable(OSError):
    """libseccomp (or its Python binding) is missing: production refuses to run code."""


@functools.cache
def filter_program() -> bytes:
    """The filter as classic BPF (struct sock_filter[]), built once per process."""
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:  # the binding, or libseccomp.so.2 it loads
        raise SeccompUnavailable(f"libseccomp is not available: {exc}") from exc
    denied = pyseccomp.ERRNO(errno.EPERM)
    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED:
        rules.add_rule(denied, name)  # a name this architecture lacks matches nothing
    for flag in _CLONE_NAMESPACE_FLAGS:
        rules.add_rule(denied, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    exported = os.memfd_create("seccomp-export", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(exported), "wb") as handle:
            rules.export_bpf(handle)
        size = os.lseek(exported, 0, os.SEEK_END)
        program = os.pread(exported, size, 0)
    finally:
        os.close(exported)
    if not program or len(program) % 8:
        raise SeccompUnavailable("libseccomp exported no filter")
    return program


def available_program() -> bytes | None:
    """The filter, or None when it cannot be built here (logged once; production refuses)."""
    try:
        return filter_program()
    except (SeccompUnavailable, OSError) as exc:
        _warn_once(str(exc))
        return None


@functools.cache
def _warn_once(reason: str) -> None:
    logger.warning("sandboxes run without their seccomp filter: %s", reason)


def program_fd(program: bytes) -> int:
    """A memfd holding the program at offset 0 (bwrap --seccomp, the loader)."""
    fd = os.memfd_create("seccomp", os.MFD_CLOEXEC)
    try:
        view = memoryview(program)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
