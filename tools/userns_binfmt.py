#!/usr/bin/env python3
"""Run a command in a private user + mount + pid namespace whose own binfmt_misc runs aarch64 ELF files
through qemu-aarch64-static.

Why: the CI host has no binfmt_misc mounted and no systemd, and registering qemu on the host would change
the machine for everyone. Since Linux 6.7 a user namespace may mount its own binfmt_misc instance, so the
registration lives and dies with this process tree. uids/gids 0..65535 are mapped (not only root), or dpkg
and tar inside the guest cannot set file ownership. Every process of the tree is killed with its parent
(PR_SET_PDEATHSIG), so a `timeout -s KILL` on this script leaves no emulated process behind.

Usage (as root): userns_binfmt.py COMMAND [ARG...]
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG, SIGKILL = 1, 9
ID_MAP = "0 0 65536\n"
# ELF64, little-endian, e_machine = EM_AARCH64 (0xb7); "F": qemu is opened now, so chroots need no copy of it.
AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int = 0) -> None:
    _check(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                      None), f"mount {target}")


def _die_with_parent() -> None:
    libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)


def _register_qemu(qemu: str) -> None:
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc")
    _mount("binfmt_misc", "/proc/sys/fs/binfmt_misc", "binfmt_misc")
    with open("/proc/sys/fs/binfmt_misc/register", "w") as f:
        f.write(f":qemu-aarch64:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{qemu}:F")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    qemu = os.environ.get("QEMU", "/usr/bin/qemu-aarch64-static")
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    child = os.fork()
    if child == 0:
        _die_with_parent()
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID), "unshare")
        os.write(ready_w, b"1")
        os.read(mapped_r, 1)  # the parent has written our uid/gid maps
        os.setgid(0)
        os.setuid(0)
        inner = os.fork()  # the first child of a new pid namespace is its init: it may mount a fresh /proc
        if inner == 0:
            _die_with_parent()
            _register_qemu(qemu)
            os.execvp(argv[0], argv)
        os._exit(os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1]))
    os.read(ready_r, 1)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{child}/{name}", "w") as f:
            f.write(ID_MAP)
    os.write(mapped_w, b"1")
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
