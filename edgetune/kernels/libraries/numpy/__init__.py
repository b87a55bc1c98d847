"""NumPy (and the OpenBLAS under it): im2col / 1x1 GEMM / Winograd / FFT / direct depthwise
convolutions, elementwise and pooling ops, layout and fp16 converters."""

from __future__ import annotations

import functools
from typing import Any

from edgetune.kernels.library import Library, ThreadPool


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController  # loaded on demand: inspects the process's BLAS libraries

    return ThreadpoolController()


def set_blas_threads(n: int) -> None:
    """OpenBLAS/OpenMP threads through threadpoolctl; a BLAS it cannot see is not fatal."""
    try:
        _blas_controller().limit(limits=n, user_api="blas")
    except Exception:  # noqa: BLE001 - an unknown BLAS keeps its own thread count
        pass


def warm_up_blas(threads: int) -> None:
    """OpenBLAS allocates its per-thread buffers on the first GEMM at a thread count."""
    import numpy as np  # loaded on demand, like every library's start-up

    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    (a @ a).sum()


BLAS_POOL = ThreadPool("numpy", set_threads=set_blas_threads, probe="conv.direct_dw.numpy", warm_up=warm_up_blas)

LIBRARY = Library("numpy", ("conv", "fft", "winograd", "ops", "converters"), BLAS_POOL, requires=("numpy", "scipy"),
                  rank=10)
