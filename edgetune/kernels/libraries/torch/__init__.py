"""PyTorch: oneDNN (NCHW, channels-last, blocked), native, NNPACK and fp16-weight convolutions, GEMM,
ConvTranspose, LayerNorm, and the converters to and from oneDNN's blocked layout."""

import numpy as np

from edgetune.kernels.library import Library, ThreadPool


def set_torch_threads(n: int) -> None:
    import torch  # loaded on demand: ~0.5 s, and absent on boards PyPI's torch cannot run on

    torch.set_num_threads(n)


def warm_up_onednn(threads: int) -> None:
    """oneDNN JIT-compiles its first convolution (tens of MB of code and buffers)."""
    import torch  # loaded on demand (see set_torch_threads)

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((1, 16, 16, 16)).astype(np.float32))
    w = torch.from_numpy(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    with torch.no_grad():
        torch.nn.functional.conv2d(x.to_mkldnn(), w.to_mkldnn(), padding=1).to_dense()


TORCH_POOL = ThreadPool("torch", set_threads=set_torch_threads, probe="conv.onednn.torch", warm_up=warm_up_onednn)

LIBRARY = Library("torch", ("conv", "ops", "converters"), TORCH_POOL, requires=("torch",), rank=30)
