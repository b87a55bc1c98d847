"""A run of nodes as ONE TorchScript module: traced, frozen and optimised for inference.

Why: handed a whole subgraph, TorchScript's freezing folds the weights into the graph and
`optimize_for_inference` rewrites it for oneDNN (weights prepacked once, convolutions kept in oneDNN's
layout between layers, conv + add/activation fused), and the run pays one Python call instead of one per
node. The module is traced on zeros of the boundary's shapes (every shape is static) under `no_grad`; when
`optimize_for_inference` fails (an op its passes do not take) the frozen module runs as it is. Threads are
torch's one intra-op pool (`TORCH_POOL`), set by whoever runs the kernel, as for every torch primitive.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import FunctionKernel, Kernel
from edgetune.kernels.libraries.torch.graph_module import SegmentModule, zeros_for
from edgetune.kernels.library import FP32_SEGMENT, Segment, SegmentVariant
from edgetune.kernels.segments import boundary

# TorchScript's profiling executor specialises a graph on its first calls: run them at compile time, so that
# neither verification nor the first timed or real call pays for them.
WARM_UP_CALLS = 2


def segment_kernel(graph: Graph, nodes: list[Node], threads: int, spin: str = "stop",
                   variant: SegmentVariant = FP32_SEGMENT) -> Segment:
    """One TorchScript module computing `nodes`; returns (kernel, input values, output values). `spin` is
    ONNX Runtime's spin mode (torch waits passively, `OMP_WAIT_POLICY=PASSIVE`): ignored. Only the plain fp32
    variant is compiled: a variant's rewrite is an ONNX QDQ model, which no torch module is built from, and
    torch's reduced-precision paths are primitives of their own (ValueError otherwise)."""
    if not variant.plain:
        raise ValueError(f"torch segments are fp32 only (asked: precision {variant.precision}, "
                         f"{'an int8 rewrite' if variant.rewrite is not None else 'no rewrite'})")
    ins, outs = boundary(graph, nodes)
    return compiled_kernel(graph, nodes, ins, outs), ins, outs


def compiled_kernel(graph: Graph, nodes: list[Node], ins: list[str], outs: list[str],
                    feed: list[int] | None = None, arity: int | None = None) -> Kernel:
    """The kernel computing `outs` from `ins` through `nodes`. It takes `arity` positional arguments (default:
    one per input); `feed[i]` is the argument that becomes input i (Mul(x, x) is called with x twice, its
    module has one input); default: argument i."""
    take = list(range(len(ins))) if feed is None else list(feed)
    arity = len(ins) if arity is None else arity
    if len(take) != len(ins) or any(not 0 <= j < arity for j in take):
        raise ValueError(f"feed {take} does not fit a module with {len(ins)} inputs called with {arity} arguments")
    module = SegmentModule(graph, nodes, ins, outs).eval()
    scripted = compile_module(module, zeros_for(graph, ins))

    def run(*xs: np.ndarray) -> list[np.ndarray]:
        args = [xs[j] for j in take]
        with torch.no_grad():
            ys = scripted(*[_tensor(x) for x in args])
        return [_own(y.numpy(), args) for y in ys]

    kernel = FunctionKernel(run, weight_bytes=module.weight_bytes)
    kernel.module = scripted  # for inspection (its graph), never called through
    return kernel


def compile_module(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> Any:
    """`module` traced on `example`, frozen, optimised for inference (the frozen module where that fails)
    and warmed up. TorchScript is deprecated in favour of `torch.compile` (Inductor: a C++ compiler at run
    time, which edge boards rarely have) and `torch.export` (no oneDNN freezing on CPU without Inductor); it
    still works in the pinned torch, so its deprecation warnings are silenced here, not passed to users; so are
the tracer's warnings that a shape test became a constant (every shape is static)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are static: what it warns of holds
        frozen = torch.jit.freeze(torch.jit.trace(module, example, check_trace=False))
        try:
            optimized = torch.jit.optimize_for_inference(frozen)
            _warm(optimized, example)
            return optimized
        except Exception:  # noqa: BLE001 - an op oneDNN's passes do not take: the frozen module is still exact
            _warm(frozen, example)
            return frozen


def _warm(scripted: Any, example: tuple[torch.Tensor, ...]) -> None:
    for _ in range(WARM_UP_CALLS):
        scripted(*example)


def _tensor(x: np.ndarray) -> torch.Tensor:
    """`x` as a float32 tensor on its own memory; a copy when torch cannot share it well (read-only: a
    broadcast or a buffer; not C-contiguous: a view from another library's kernel; another dtype)."""
    if x.dtype != np.float32 or not x.flags.writeable or not x.flags.c_contiguous:
        x = np.array(x, np.float32, order="C")
    return torch.from_numpy(x)


def _own(y: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """`y`, copied when it may share memory with an input (a segment that only reshapes returns a view of
    it): a kernel's outputs never alias the arrays the executor passed in."""
    return y.copy() if any(np.may_share_memory(y, x) for x in inputs) else y
