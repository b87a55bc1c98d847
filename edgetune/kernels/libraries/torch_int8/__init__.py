"""PyTorch's quantised int8 convolutions (x86, fbgemm, oneDNN, QNNPACK engines), on torch's pool."""

from edgetune.kernels.libraries.torch import TORCH_POOL
from edgetune.kernels.library import Library

LIBRARY = Library("torch-int8", ("conv",), TORCH_POOL, requires=("torch",), rank=40)
