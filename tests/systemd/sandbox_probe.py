"""Run lachan's runtime stack under the unit's seccomp and W^X rules; print one line per step.

Usage: python sandbox_probe.py SYSCALL[,SYSCALL...] [forbidden]
(the allowed system calls, by name; with "forbidden", end by calling setuid(), which must kill)

systemd enforces SystemCallFilter= and MemoryDenyWriteExecute= with seccomp filters; this probe
installs equivalent filters on itself through libseccomp (ctypes, no extra package) and then
exercises what the server does: imports of the C extensions, uvloop and asyncio sockets with
SO_REUSEPORT, signals, threads, subprocesses, mmap of an index, Ed25519 signing, sd_notify.
A forbidden call kills the process with SIGSYS, exactly as under systemd's default action.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO_EPERM = 0x00050000 | errno.EPERM
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    return lib


def _add(lib: ctypes.CDLL, ctx: int, action: int, nr: int, cmp: ArgCmp | None = None) -> None:
    args = (ArgCmp * 1)(cmp) if cmp is not None else None
    rc = lib.seccomp_rule_add_array(ctx, action, nr, 1 if cmp else 0, args)
    if rc != 0:
        raise OSError(-rc, f"seccomp_rule_add_array({nr})")


def install_allow_list(lib: ctypes.CDLL, names: list[str]) -> None:
    """SystemCallFilter=: everything not listed kills the process."""
    ctx = lib.seccomp_init(SCMP_ACT_KILL_PROCESS)
    for name in names:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0:  # names of other architectures resolve to negative pseudo numbers
            _add(lib, ctx, SCMP_ACT_ALLOW, nr)
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load failed")


def install_wx_filter(lib: ctypes.CDLL) -> None:
    """MemoryDenyWriteExecute=yes, as systemd implements it (a second, separate filter)."""
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    wx = PROT_WRITE | PROT_EXEC
    for name, arg, mask, value in (
        ("mmap", 2, wx, wx),
        ("mprotect", 2, PROT_EXEC, PROT_EXEC),
        ("pkey_mprotect", 2, PROT_EXEC, PROT_EXEC),
        ("shmat", 2, SHM_EXEC, SHM_EXEC),
    ):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        _add(lib, ctx, SCMP_ACT_ERRNO_EPERM, nr, ArgCmp(arg, SCMP_CMP_MASKED_EQ, mask, value))
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load failed")


def main() -> None:
    lib = _lib()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, as NoNewPrivileges=yes
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    install_wx_filter(lib)
    install_allow_list(lib, sys.argv[1].split(","))
    print("filters installed", flush=True)
    import sandbox_workload

    sandbox_workload.run()
    if sys.argv[2:] == ["forbidden"]:
        os.setuid(os.getuid())  # in @privileged: the filter must kill us here
        print("forbidden call survived", flush=True)


if __name__ == "__main__":
    main()
