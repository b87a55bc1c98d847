"""Configure every library's thread pool once, in one place.

Why: on a 2-core machine, an idle pool that spins (OpenMP, OpenBLAS, ORT) steals the cores from the
next library's pool; alternating torch and ORT layers ran 2.6x slower than their isolated sum until
OpenMP waits passively (set in `edgetune/__init__.py` before the libraries load), OpenBLAS threads
time out, and ORT sessions stop spinning when their run returns (`ort_session_options`), except a
session that runs alone, which keeps ONNX Runtime's own defaults.
"""

from __future__ import annotations

import functools
from typing import Any

_current: int | None = None


@functools.cache
def _blas_limiter() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def set_threads(n: int) -> None:
    """Set torch, OpenBLAS/OpenMP (via threadpoolctl) and numba to `n` threads; cheap when unchanged."""
    global _current
    if n == _current:
        return
    try:
        import torch  # optional: absent on boards where PyPI's torch cannot run (ARMv8.0 cores)
    except ImportError:
        pass
    else:
        torch.set_num_threads(n)
    try:
        _blas_limiter().limit(limits=n, user_api="blas")
    except Exception:  # noqa: BLE001 - a BLAS threadpoolctl cannot see is not fatal
        pass
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    _current = n


def current_threads() -> int | None:
    return _current


# How an ONNX Runtime session's intra-op workers wait (see `ort_session_options`).
SPIN_MODES = ("on", "stop", "off")


def ort_session_options(threads: int, optimization: str = "all", spin: str = "stop") -> Any:
    """SessionOptions with `threads` intra-op threads and one of three spin modes:

    - "on": ONNX Runtime's own defaults (workers spin between and after runs), for a session that has the
      cores to itself: a plan that is one ORT session and nothing else runs exactly as ORT alone would.
    - "stop": workers spin while a run is in flight (fast hand-offs between the session's ops) and stop
      the moment it returns (`session.force_spinning_stop`), so the next library's pool gets the cores;
      the default for a session among others.
    - "off": workers never spin (`allow_spinning=0`): every parallel section wakes them; 1.5-1.6x slower
      on a whole MobileNet V2 on an AVX-512 Xeon, kept as a measured alternative.
    """
    import onnxruntime as ort

    if spin not in SPIN_MODES:
        raise ValueError(f"unknown ORT spin mode {spin!r} (one of {', '.join(SPIN_MODES)})")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if spin != "on":
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin == "stop" else "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if spin == "stop":
            so.add_session_config_entry("session.force_spinning_stop", "1")
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[optimization]
    so.log_severity_level = 3
    return so
