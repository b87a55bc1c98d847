"""PyTorch: oneDNN (NCHW, channels-last, blocked), native, NNPACK and fp16-weight convolutions, GEMM,
ConvTranspose, LayerNorm, the converters to and from oneDNN's blocked layout, and runs of nodes as one
TorchScript module (segments; `rules.py` says which nodes, without importing torch)."""

from __future__ import annotations

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.libraries.torch.rules import primitive_for
from edgetune.kernels.library import FP32_SEGMENT, Library, Segment, SegmentVariant, ThreadPool


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


def compile_segment(graph: Graph, nodes: list[Node], threads: int, spin: str,
                    variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One TorchScript module for `nodes` (torch has no spin setting: `spin` is ignored)."""
    from edgetune.kernels.libraries.torch.segments import segment_kernel  # loads torch on demand

    return segment_kernel(graph, nodes, threads, spin, variant)


def fusable_primitive(node: Node) -> str | None:
    """The torch primitive that can join a segment for `node`; None for an op no torch segment computes."""
    return primitive_for(node)


TORCH_POOL = ThreadPool("torch", set_threads=set_torch_threads, probe="conv.onednn.torch", warm_up=warm_up_onednn)

LIBRARY = Library("torch", ("conv", "ops", "converters", "nodes"), TORCH_POOL, requires=("torch",),
                  segment=compile_segment, fusable=fusable_primitive, rank=30, probe_first=True)
