"""Set every library's thread pool, in one place.

Why: on a 2-core machine, an idle pool that spins (OpenMP, OpenBLAS, ORT) steals the cores from the
next library's pool; alternating torch and ORT layers ran 2.6x slower than their isolated sum until
OpenMP waits passively (set in `edgetune/__init__.py` before the libraries load), OpenBLAS threads
time out, and ORT sessions stop spinning when their run returns (see the onnxruntime library's
`session.ort_session_options`), except a session that runs alone, which keeps ONNX Runtime's defaults.
Each library's pool says how its threads are set (`kernels/library.py`).
"""

from __future__ import annotations

from edgetune.kernels import registry

_current: int | None = None


def set_threads(n: int) -> None:
    """Set every installed library's pool to `n` threads; cheap when unchanged."""
    global _current
    if n == _current:
        return
    for pool in registry.pools():
        if pool.set_threads is not None:
            pool.set_threads(n)
    _current = n
