"""Arm CPUs as the kernel describes them: core parts, big.LITTLE clusters and the features that change
kernel choice.

Why a module of its own: an Arm board's /proc/cpuinfo has no model name, only per-core MIDR fields
("CPU implementer", "CPU part"), and a big.LITTLE SoC (RK3588: 4x Cortex-A55 + 4x Cortex-A76) has cores of
different kinds whose relative speed sysfs gives as `cpu_capacity`. Under user-mode emulation (qemu on an
x86 host) /proc/cpuinfo describes the *host*; the features the guest really has are then in the auxiliary
vector (getauxval AT_HWCAP/AT_HWCAP2), which qemu emulates to match its `-cpu` model.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

# MIDR part numbers of Arm Ltd. (implementer 0x41) cores; other implementers are named by their numbers.
ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57", 0xD08: "Cortex-A72",
    0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76", 0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77",
    0xD40: "Neoverse-V1", 0xD41: "Cortex-A78", 0xD42: "Cortex-A78AE", 0xD44: "Cortex-X1", 0xD46: "Cortex-A510",
    0xD47: "Cortex-A710", 0xD48: "Cortex-X2", 0xD49: "Neoverse-N2", 0xD4A: "Neoverse-E1", 0xD4B: "Cortex-A78C",
    0xD4D: "Cortex-A715", 0xD4E: "Cortex-X3", 0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720",
    0xD82: "Cortex-X4", 0xD85: "Cortex-X925", 0xD87: "Cortex-A725",
}
# Linux arm64 HWCAP / HWCAP2 bits (arch/arm64/include/uapi/asm/hwcap.h) that edgetune reads.
HWCAP_BITS = {0: "fp", 1: "asimd", 3: "aes", 7: "crc32", 8: "atomics", 9: "fphp", 10: "asimdhp",
              12: "asimdrdm", 20: "asimddp", 22: "sve", 23: "asimdfhm"}
HWCAP2_BITS = {1: "sve2", 9: "svei8mm", 12: "svebf16", 13: "i8mm", 14: "bf16"}
AT_HWCAP, AT_HWCAP2 = 16, 26


def processors(cpuinfo: str) -> list[dict[str, str]]:
    """One dict per "processor" block of /proc/cpuinfo (keys lower-cased); board-wide lines that follow
    the last block (Hardware, Model) go into a block of their own without "processor"."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip().lower()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def core_name(block: dict[str, str]) -> str:
    """"Cortex-A76" for an Arm part, else "implementer 0x51 part 0x802"; "" for a non-Arm block."""
    impl, part = block.get("cpu implementer"), block.get("cpu part")
    if impl is None or part is None:
        return ""
    try:
        impl_n, part_n = int(impl, 16), int(part, 16)
    except ValueError:
        return f"implementer {impl} part {part}"
    return ARM_PARTS.get(part_n, "") if impl_n == 0x41 and part_n in ARM_PARTS else f"implementer {impl} part {part}"


def _capacity(cpu: int, sysfs: str) -> int | None:
    try:
        with open(f"{sysfs}/cpu{cpu}/cpu_capacity", encoding="utf-8") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def clusters(cpuinfo: str, sysfs: str = "/sys/devices/system/cpu",
             usable: set[int] | None = None) -> list[dict[str, Any]]:
    """Cores grouped by kind: [{"core": "Cortex-A55", "cpus": [0, 1, 2, 3], "capacity": 414}, ...], slowest
    first; only the `usable` cpus (default: all). Capacity is sysfs's relative speed (1024 = the fastest),
    None where the kernel does not say."""
    groups: dict[tuple[str, int | None], list[int]] = {}
    for block in processors(cpuinfo):
        name = core_name(block)
        if not name or "processor" not in block or not block["processor"].isdigit():
            continue
        cpu = int(block["processor"])
        if usable is not None and cpu not in usable:
            continue
        groups.setdefault((name, _capacity(cpu, sysfs)), []).append(cpu)
    out = [{"core": name, "cpus": sorted(cpus), "capacity": cap} for (name, cap), cpus in groups.items()]
    return sorted(out, key=lambda c: (c["capacity"] or 0, c["cpus"][0]))


def cpu_label(cluster_list: list[dict[str, Any]]) -> str:
    """"4x Cortex-A55 + 4x Cortex-A76" (slowest first), "4x Cortex-A72"; "" when nothing was recognised."""
    return " + ".join(f"{len(c['cpus'])}x {c['core']}" for c in cluster_list)


def features_from_cpuinfo(cpuinfo: str) -> set[str]:
    """The "Features" of the first Arm processor block."""
    for block in processors(cpuinfo):
        if "features" in block and core_name(block):
            return set(block["features"].split())
    return set()


def decode_hwcaps(hwcap: int, hwcap2: int) -> set[str]:
    return {n for b, n in HWCAP_BITS.items() if hwcap >> b & 1} | {n for b, n in HWCAP2_BITS.items() if hwcap2 >> b & 1}


def hwcaps() -> set[str] | None:
    """The features the running process really has (getauxval), None where that cannot be read."""
    try:
        libc = ctypes.CDLL(None)
        getauxval = libc.getauxval
    except (OSError, AttributeError):
        return None
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    return decode_hwcaps(int(getauxval(AT_HWCAP)), int(getauxval(AT_HWCAP2)))


def board(cpuinfo: str, device_tree: str = "/proc/device-tree/model") -> str:
    """The board's name where the system says it: device tree model, or cpuinfo's "Model" line (Pi)."""
    try:
        with open(device_tree, "rb") as f:
            name = f.read().rstrip(b"\0").decode(errors="replace").strip()
        if name:
            return name
    except OSError:
        pass
    for block in processors(cpuinfo):
        if "model" in block and "processor" not in block:
            return block["model"]
    return ""


def usable_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
