"""The reference kernels as primitives (`ref.<op>`, `ref.onnx`): the fallback for every op, slow but
always right. They run NumPy in float64, on the same BLAS pool as the numpy library."""

from edgetune.kernels.libraries.numpy import BLAS_POOL
from edgetune.kernels.library import Library

LIBRARY = Library("numpy-reference", ("prims",), BLAS_POOL, requires=("numpy",), rank=0)
