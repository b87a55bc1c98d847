"""What a measurement was taken on: the CPU (fingerprint) and the library versions.

Why: a time measured on one CPU or with one oneDNN/OpenBLAS build says nothing about another, so the
ProfileDB and plans are keyed by short stable ids of both. Only facts that change kernel speed are in
the fingerprint (model, kernel-relevant ISA flags, usable cores, architecture), never volatile ones
such as the clock frequency or the load.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
from typing import Any

from edgetune import __version__
from edgetune.device import arm

KERNEL_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
    "neon", "asimd", "asimdhp", "asimddp", "sve", "sve2", "i8mm", "bf16",
)
# What each feature a user asks about is called, and the flags that give it (any of them).
FEATURES = {
    "x86": {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "VNNI": ("avx512_vnni", "avx_vnni"),
            "AMX": ("amx_tile",), "BF16": ("avx512_bf16", "amx_bf16"), "FP16": ("avx512_fp16", "amx_fp16")},
    "arm": {"NEON": ("asimd", "neon"), "dot-product": ("asimddp",), "i8mm": ("i8mm",), "BF16": ("bf16",),
            "FP16": ("asimdhp",), "SVE": ("sve",), "SVE2": ("sve2",)},
}
SYSFS_CPU = "/sys/devices/system/cpu"
ARM_ARCHES = ("aarch64", "arm64")
# Bumped when the way edgetune measures changes, so that a ProfileDB's old numbers are not reused as if
# comparable (2: ONNX Runtime sessions spin during a run and stop after it, instead of never spinning;
# 3: numpy/numba scratch comes from a shared workspace, which a kernel's measured resident bytes exclude).
MEASUREMENT_PROTOCOL = "3"
VERSIONED_DISTRIBUTIONS = ("numpy", "scipy", "torch", "onnxruntime", "onnx", "numba", "threadpoolctl", "openvino",
                           "ai-edge-litert")


def _short_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, flag set) from /proc/cpuinfo; ("", empty) where it does not exist."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask), which is what thread counts compete for."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fingerprint() -> dict[str, Any]:
    """CPU model, machine architecture, kernel-relevant ISA flags present, and usable core count
    (a fresh copy: callers may store or change it)."""
    return copy.deepcopy(_fingerprint())


@functools.cache
def _fingerprint() -> dict[str, Any]:
    arch = platform.machine().lower()
    if arch in ARM_ARCHES:
        return arm_fingerprint(_read("/proc/cpuinfo"), arch, SYSFS_CPU, arm.hwcaps(), arm.usable_cpus())
    model, flags = _cpuinfo()
    return {
        "cpu": model or platform.processor() or "unknown",
        "arch": arch,
        "cores": usable_cores(),
        "flags": sorted(f for f in KERNEL_FLAGS if f in flags),
    }


def arm_fingerprint(cpuinfo: str, arch: str, sysfs: str, caps: set[str] | None,
                    usable: set[int] | None) -> dict[str, Any]:
    """An Arm CPU: named by its core kinds ("4x Cortex-A55 + 4x Cortex-A76"), with its big.LITTLE clusters,
    and the features the process really has (the auxiliary vector, else cpuinfo's Features line). Under
    qemu-user, cpuinfo is the x86 host's and says so instead of naming a core."""
    found = arm.clusters(cpuinfo, sysfs, usable)
    flags = set(caps) if caps is not None else arm.features_from_cpuinfo(cpuinfo)
    flags |= {"asimd"} if not flags else set()  # every AArch64 CPU has Advanced SIMD
    if "asimd" in flags:
        flags.add("neon")
    foreign = not found and any("vendor_id" in b for b in arm.processors(cpuinfo))
    cpu = arm.cpu_label(found) or ("unnamed Arm CPU (/proc/cpuinfo is another architecture's: emulated?)"
                                   if foreign else "unnamed Arm CPU")
    return {"cpu": cpu, "arch": arch, "cores": len(usable) if usable else usable_cores(),
            "flags": sorted(f for f in KERNEL_FLAGS if f in flags), "clusters": found}


def fingerprint_id() -> str:
    """A short stable id of `fingerprint()` (12 hex digits)."""
    return _short_hash(fingerprint())


def _blas() -> dict[str, str]:
    """numpy's BLAS as threadpoolctl sees it (only libraries loaded by numpy, so the answer does not
    depend on whether torch was imported first)."""
    try:
        import numpy  # noqa: F401 - loads the BLAS so threadpoolctl can see it
        from threadpoolctl import threadpool_info  # on demand: inspecting the BLAS libraries loads them
    except ImportError:
        return {}
    for info in threadpool_info():
        if info.get("user_api") == "blas" and "numpy" in str(info.get("filepath", "")):
            return {
                "blas": f"{info.get('internal_api', '?')} {info.get('version', '?')}",
                "blas_core": str(info.get("architecture") or ""),
            }
    return {}


def library_versions() -> dict[str, str]:
    """Versions of edgetune and every library whose kernels we time ("" when not installed), plus
    numpy's BLAS and the BLAS core (e.g. "Haswell") it chose for this CPU (a fresh copy)."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:

    out: dict[str, str] = {"edgetune": __version__, "measurement_protocol": MEASUREMENT_PROTOCOL}
    for dist in VERSIONED_DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = ""
    out.update(_blas())
    return out


def versions_id() -> str:
    """A short stable id of `library_versions()` (12 hex digits)."""
    return _short_hash(library_versions())


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def _size_bytes(text: str) -> int:
    """sysfs cache sizes: "48K", "2048K", "32M"."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper()
    if not text:
        return 0
    if text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text) if text.isdigit() else 0


def caches(cpu: int = 0, root: str = SYSFS_CPU) -> dict[str, int]:
    """Cache sizes seen by one core, e.g. {"L1d": 49152, "L1i": 32768, "L2": 2097152, "L3": 272629760}."""
    out: dict[str, int] = {}
    base = f"{root}/cpu{cpu}/cache"
    try:
        entries = sorted(e for e in os.listdir(base) if e.startswith("index"))
    except OSError:
        return out
    for entry in entries:
        level, kind = _read(f"{base}/{entry}/level"), _read(f"{base}/{entry}/type")
        size = _size_bytes(_read(f"{base}/{entry}/size"))
        if level and size:
            suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
            out[f"L{level}{suffix}"] = size
    return out


def smt_threads_per_core(cpu: int = 0, root: str = SYSFS_CPU) -> int:
    """Hardware threads sharing one core (2 with SMT/Hyper-Threading on): such siblings share the core's
    execution units, so two threads on siblings are not two cores' worth."""
    text = _read(f"{root}/cpu{cpu}/topology/thread_siblings_list")
    count = 0
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        count += int(hi) - int(lo) + 1 if hi else 1
    return max(count, 1)


def _first_usable_cpu() -> int:
    try:
        return min(os.sched_getaffinity(0))
    except (AttributeError, OSError, ValueError):
        return 0


def features(fp: dict[str, Any] | None = None) -> dict[str, bool]:
    """The ISA features that change kernel choice, by their common names, for this architecture family."""
    fp = fp or fingerprint()
    family = "arm" if fp["arch"] in ("aarch64", "arm64") or fp["arch"].startswith("arm") else "x86"
    flags = set(fp["flags"])
    return {name: any(f in flags for f in alternatives) for name, alternatives in FEATURES[family].items()}


def cpu_identity(text: str | None = None) -> str:
    """Vendor, family, model and stepping (x86) or implementer and part (Arm) of the first CPU: on a VM the
    model name is often generic ("Intel(R) Xeon(R) Processor") and these numbers are what tell CPUs apart."""
    if text is None:
        text = _read("/proc/cpuinfo")
    keys = ("vendor_id", "cpu family", "model", "stepping", "cpu implementer", "cpu part", "cpu variant")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if found:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in keys and key not in found:
            found[key] = value.strip()
    return " ".join(f"{k.replace('cpu ', '')} {v}" if k != "vendor_id" else v for k, v in found.items())


def describe() -> dict[str, Any]:
    """Everything a reader of a figure needs about the machine: the fingerprint (and its id, which keys the
    ProfileDB), the features by name, SMT siblings and cache sizes (a fresh copy)."""
    fp = fingerprint()
    return {**fp, "id": fingerprint_id(), "identity": cpu_identity(), "board": arm.board(_read("/proc/cpuinfo")),
            "features": features(fp),
            "smt_threads_per_core": smt_threads_per_core(_first_usable_cpu()), "caches": caches(_first_usable_cpu())}


def summary_line(desc: dict[str, Any] | None = None) -> str:
    """One line naming the machine, for under every table: "Intel(R) Xeon(R) ..., x86_64, 2 cores, AVX2 ..."."""
    d = desc or describe()
    have = [name for name, present in d.get("features", {}).items() if present]
    smt = d.get("smt_threads_per_core", 1)
    cores = f"{d.get('cores', '?')} usable cores" + (f" ({smt} SMT threads per core)" if smt > 1 else "")
    ident = f" ({d['identity']})" if d.get("identity") else ""
    return (f"{d.get('cpu', 'unknown CPU')}{ident}, {d.get('arch', '?')}, {cores}, "
            f"{' '.join(have) or 'no SIMD extensions'}")
