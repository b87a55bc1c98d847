"""Measured per-kernel memory: what a prepared kernel really keeps resident, and its peak during a call.

Why measure: kernels self-report `weight_bytes`/`workspace_bytes`, which misses what libraries hold
internally (ONNX Runtime sessions: prepacked weights and arenas; torch oneDNN: reordered weights and
scratchpads; OpenBLAS packing buffers grown by a larger GEMM) and the temporaries a call materialises
(the float64 reference pooling kernels build whole windows). The resident-set size of this process
sees all of it.

How (in-process, Linux only; elsewhere `measure_kernel_memory` returns None):
- glibc's mmap threshold is pinned once (`mallopt(M_MMAP_THRESHOLD, 128 KiB)`), so every large array
  is its own mapping and freeing it returns the pages: RSS follows live memory, not the allocator's
  high-water mark (a no-op off glibc, where RSS then over-states resident cost);
- resident = RSS after `prepare` + `WARM_CALLS` calls + gc (outputs freed) minus RSS before `prepare`:
  packed weights, library caches, buffers the kernel keeps. Inputs must exist before the call, so they
  are not counted; nor is the growth of the shared scratch workspace the kernel asked for
  (kernels/base.py `Workspace`, whose bytes are known exactly: `workspace_bytes_in_use`), since a plan
  holds that arena once, sized by its largest request, and `Executor.memory()` adds it once;
- transient = the peak RSS during one more call (VmHWM, reset through /proc/self/clear_refs) minus RSS
  just before it, minus the bytes of the call's outputs (the activation arena counts those).
Both are floored at 0 and set to 0 below `NOISE_BYTES` (64 KiB: page and allocator granularity make
smaller figures meaningless). Resident figures of one kernel include whatever library start-up the
first use of a library in this process triggers; `warm_up_pools` pays those first (see there).

Not measured cleanly, so excluded or approximate: numba's JIT and threading-layer start-up (no warm-up);
start-up figures in a process that already used a library (0, e.g. in the tune loop after profiling);
OpenBLAS packing-buffer pages first touched by a larger GEMM, charged to the kernel that first needs them
(in the profiler that depends on profiling order); memory a kernel shares with the graph (aliased weight
arrays: RSS differences cannot see them, so Executor.memory() counts at least the reported weights).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from edgetune.kernels import registry
from edgetune.kernels.base import workspace_bytes_in_use
from edgetune.kernels.library import ThreadPool
from edgetune.kernels.threads import set_threads

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD_BYTES = 128 * 1024
NOISE_BYTES = 64 * 1024
WARM_CALLS = 2


@dataclass(frozen=True)
class KernelMemory:
    """Measured bytes of one prepared kernel: kept between calls, and extra at the peak of one call."""

    resident_bytes: int
    transient_bytes: int

    def as_tuple(self) -> tuple[int, int]:
        return self.resident_bytes, self.transient_bytes


@functools.cache
def pin_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold (large allocations are mmapped, freed pages leave RSS); True if done."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(MMAP_THRESHOLD_BYTES)))
    except (OSError, AttributeError):  # not glibc: nothing to pin
        return False


def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    """Current resident-set size of this process (None where /proc is missing)."""
    return _status("VmRSS")


def peak_rss_bytes() -> int | None:
    """The resident-set high-water mark since start or the last `reset_peak`."""
    return _status("VmHWM")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def available() -> bool:
    return rss_bytes() is not None and os.path.exists("/proc/self/clear_refs")


def output_bytes(outputs: Any) -> int:
    """Bytes held by a kernel's outputs (numpy arrays or torch tensors, mkldnn ones included)."""
    if outputs is None:
        return 0
    if isinstance(outputs, list | tuple):
        return sum(output_bytes(o) for o in outputs)
    try:
        return int(outputs.element_size()) * int(outputs.numel())  # torch (nbytes fails on mkldnn tensors)
    except (AttributeError, RuntimeError, TypeError):
        pass
    return int(getattr(outputs, "nbytes", 0) or 0)


def _floor(b: int) -> int:
    return int(b) if b >= NOISE_BYTES else 0


def measure_kernel_memory(
    build: Callable[[], Any], inputs: Sequence[Any], *, call: Callable[..., Any] | None = None
) -> tuple[Any, KernelMemory | None]:
    """Prepare a kernel with `build()` and measure its resident and transient bytes; returns
    (kernel, KernelMemory) or (kernel, None) where RSS cannot be read. `inputs` (created by the caller
    before this call) are passed to the kernel, or to `call(kernel, *inputs)` when given."""
    if not available():
        return build(), None
    pin_mmap_threshold()
    invoke = call or (lambda k, *xs: k(*xs))
    gc.collect(1)  # young generations: the full collection costs ~0.1 s a kernel
    before, shared_before = rss_bytes() or 0, workspace_bytes_in_use()
    kernel = build()
    for _ in range(WARM_CALLS):
        out = invoke(kernel, *inputs)
        del out
    gc.collect(1)
    after = rss_bytes() or 0
    resident = after - before - (workspace_bytes_in_use() - shared_before)  # the shared arena: counted once
    transient = 0
    if reset_peak():
        start = rss_bytes() or 0
        out = invoke(kernel, *inputs)
        peak = peak_rss_bytes() or 0
        transient = peak - start - output_bytes(out)
        del out
        gc.collect(1)
    return kernel, KernelMemory(_floor(resident), _floor(transient))


# ---- library start-up ------------------------------------------------------------------------------

_startup: dict[str, int] = {}


def warm_up_pools(threads: int, pools: Sequence[ThreadPool] | None = None) -> dict[str, int]:
    """Pay each thread pool's one-off, per-process start-up (`ThreadPool.warm_up`: OpenBLAS's per-thread
    buffers, oneDNN's JIT of a first convolution, ONNX Runtime's environment and first session) before
    kernels are measured, so that it is not charged to whichever kernel happens to come first. `pools`
    defaults to every installed library's. Returns the RSS growth each caused *in this process* (0 when
    already paid earlier, so the figures are only meaningful for a fresh process; see plan_memory).
    Keys: "<pool>@<threads>"."""
    if not available():
        return {}
    pin_mmap_threshold()
    set_threads(threads)
    chosen = [p for p in (registry.pools() if pools is None else pools) if p.warm_up is not None]
    for pool in chosen:
        key = f"{pool.name}@{threads}"
        if key in _startup:
            continue
        gc.collect()
        before = rss_bytes() or 0
        try:
            pool.warm_up(threads)
        except Exception:  # noqa: BLE001 - a library that fails to start has no start-up cost to pay
            pass
        gc.collect()
        _startup[key] = _floor((rss_bytes() or 0) - before)
    return {f"{p.name}@{threads}": _startup[f"{p.name}@{threads}"] for p in chosen}
