"""What a measurement was taken on: the CPU (fingerprint) and the library versions.

Why: a time measured on one CPU or with one oneDNN/OpenBLAS build says nothing about another, so the
ProfileDB and plans are keyed by short stable ids of both. Only facts that change kernel speed are in
the fingerprint (model, kernel-relevant ISA flags, usable cores, architecture), never volatile ones
such as the clock frequency or the load.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
from typing import Any

KERNEL_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimdhp", "asimddp", "sve", "sve2", "i8mm", "bf16",
)
VERSIONED_DISTRIBUTIONS = ("numpy", "scipy", "torch", "onnxruntime", "onnx", "numba", "threadpoolctl")


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
    fp = _fingerprint()
    return {**fp, "flags": list(fp["flags"])}


@functools.cache
def _fingerprint() -> dict[str, Any]:
    model, flags = _cpuinfo()
    arch = platform.machine().lower()
    if arch in ("arm64", "aarch64") and not flags:
        flags = {"neon", "asimd"}  # every AArch64 CPU has Advanced SIMD
    return {
        "cpu": model or platform.processor() or "unknown",
        "arch": arch,
        "cores": usable_cores(),
        "flags": sorted(f for f in KERNEL_FLAGS if f in flags),
    }


def fingerprint_id() -> str:
    """A short stable id of `fingerprint()` (12 hex digits)."""
    return _short_hash(fingerprint())


def _blas() -> dict[str, str]:
    """numpy's BLAS as threadpoolctl sees it (only libraries loaded by numpy, so the answer does not
    depend on whether torch was imported first)."""
    try:
        import numpy  # noqa: F401 - loads the BLAS so threadpoolctl can see it
        from threadpoolctl import threadpool_info
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
    from edgetune import __version__

    out: dict[str, str] = {"edgetune": __version__}
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
