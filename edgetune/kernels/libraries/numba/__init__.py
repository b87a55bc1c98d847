"""numba-compiled direct and depthwise convolutions (its own OpenMP/workqueue thread pool)."""

from edgetune.kernels.library import Library, ThreadPool


def set_numba_threads(n: int) -> None:
    import numba  # loaded on demand: compiling and its thread pool start on first use

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


NUMBA_POOL = ThreadPool("numba", set_threads=set_numba_threads, probe="conv.direct_dw.numba")

LIBRARY = Library("numba", ("conv",), NUMBA_POOL, requires=("numba",), rank=20)
