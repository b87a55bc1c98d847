"""Configure every library's thread pool once, in one place.

Why: on a 2-core machine, an idle pool that spins (OpenMP, OpenBLAS, ORT) steals the cores from the
next library's pool; alternating torch and ORT layers ran 2.6x slower than their isolated sum until
OpenMP waits passively (set in `edgetune/__init__.py` before the libraries load), OpenBLAS threads
time out, and ORT sessions stop spinning (`ort_session_options`).
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
    import torch

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


def ort_session_options(threads: int, optimization: str = "all", spinning: bool = False) -> Any:
    """SessionOptions with `threads` intra-op threads, one inter-op thread, and no spinning unless the
    session runs alone (a plan that is ONNX Runtime only: then nothing else needs the cores)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[optimization]
    so.log_severity_level = 3
    return so
