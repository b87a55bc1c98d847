"""The extension points of the primitive library: Format, Kernel, Primitive, Converter.

Lifecycle (who calls what, when):
1. The registry asks every `Primitive` whether its library is `available()` once, at import.
2. For a node, the design space calls `supports(node, graph)`; `None` means yes, a string is the reason
   it cannot run that node (shown to the user by `edgetune primitives MODEL`).
3. The executor or the profiler calls `prepare(node, ctx)` once: weight transforms, packing,
   quantisation and library sessions are built here, never per call. It returns a `Kernel`.
4. The `Kernel` is called with the node's dynamic inputs (constants excluded, in node order), each in
   the `input_formats` the primitive declared, and returns the list of the node's outputs in
   `output_format`. It applies the node's fused activation (`node.activation`) itself.
5. Before a primitive may be chosen for a node, `kernels.verify` compares its outputs with the
   reference executor's within `tolerance`.
Converters follow the same pattern for edges (layout change, cast, quantise).

Scratch memory: a kernel that needs buffers only while it runs (a padded copy of its input, an im2col
matrix, fp32 weights cast from fp16) asks the context's `Workspace` for them at prepare time
(`ctx.workspace.request(...)`) and takes views of them at call time (`Scratch.arrays()`). The executor
gives one `Workspace` to every kernel of a plan, so a plan keeps one scratch arena sized by its largest
request, as BLAS frameworks (Caffe, Darknet) share one im2col buffer across layers. A kernel reports what
it asks for in `workspace_bytes` and the shared part of that in `shared_workspace_bytes`.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgetune.graph.ir import Activation, Graph, Node

LAYOUTS = ("NCHW", "NHWC", "BLOCKED")


@dataclass(frozen=True)
class Format:
    """How a tensor is held on an edge between two steps.

    layout: "NCHW" is ONNX's logical order (also used for any tensor that is not 4-D); plain NCHW
    "float32" also labels non-float values (token ids, masks), which stay numpy arrays of their own
    dtype and are never converted; "NHWC" is a numpy array of shape (N, H, W, C); "BLOCKED" is a
    torch tensor in oneDNN's opaque blocked layout
    (`tensor.to_mkldnn()`). dtype: "float32" or "float16" (numpy arrays), "uint8"/"int8" with `scale`
    and `zero_point` when quantised.
    """

    layout: str = "NCHW"
    dtype: str = "float32"
    scale: float | None = None
    zero_point: int | None = None

    @property
    def key(self) -> str:
        """'NCHW/float32'; a quantised edge adds its parameters ('NCHW/uint8/q0.0235294118,0'), exactly
        enough that two edges share a key only when one's integers mean the other's values."""
        q = f"/q{self.scale:.10g},{self.zero_point}" if self.scale is not None else ""
        return f"{self.layout}/{self.dtype}{q}"

    @property
    def quantised(self) -> bool:
        return self.scale is not None

    @property
    def family(self) -> str:
        """The key without quantisation parameters: what a converter for any such parameters is filed under."""
        return f"{self.layout}/{self.dtype}"

    @classmethod
    def from_key(cls, key: str) -> Format:
        """The format a `key` names (the design space holds options' formats as keys)."""
        layout, dtype, *rest = key.split("/")
        if rest and rest[0].startswith("q"):
            scale, zero_point = rest[0][1:].split(",")
            return cls(layout, dtype, float(scale), int(zero_point))
        return cls(layout, dtype)

    def __str__(self) -> str:
        return self.key


FP32 = Format("NCHW", "float32")
FP32_NHWC = Format("NHWC", "float32")
FP32_BLOCKED = Format("BLOCKED", "float32")
FP32_BY_LAYOUT = {"NCHW": FP32, "NHWC": FP32_NHWC, "BLOCKED": FP32_BLOCKED}


# ---- the shared scratch workspace ------------------------------------------------------------------

ArraySpec = tuple[tuple[int, ...], Any]  # (shape, dtype) of one scratch array
_ALIGN = 64  # bytes: every scratch array starts on a cache line
_live_bytes = 0  # bytes of every Workspace buffer alive in this process (see workspace_bytes_in_use)
_EMPTY = np.empty(0, np.uint8)  # what zero-byte requests view


def workspace_bytes_in_use() -> int:
    """Bytes held by all live `Workspace` buffers of this process. The per-kernel memory measurement
    (runtime/kernel_memory.py) subtracts the growth of this figure from a kernel's resident bytes: the
    shared workspace is counted once per plan (Executor.memory), not in every kernel that grew it."""
    return _live_bytes


def _released(nbytes: int) -> None:
    global _live_bytes
    _live_bytes -= nbytes


class Workspace:
    """One scratch arena shared by kernels that run one after another.

    Kernels `request` their scratch arrays at prepare time; the arena grows to the largest request
    (exactly; it never shrinks) and its pages are touched at once, so its resident size is its `nbytes`.
    At call time `Scratch.arrays()` gives views of the arena. Every kernel sharing it sees whatever the
    previous kernel left there: a kernel must write every element of its scratch it reads in the same
    call (a padded buffer re-writes its border each call, see numpy/conv.py `PaddedBuffer`), and must never
    return (a view of) its scratch as an output.

    Not thread-safe, by design: kernels sharing a workspace must not run concurrently. The executor runs
    its steps one after another (`runtime/executor.run_steps`) and gives each executor its own workspace;
    the profiler and verification prepare each kernel with a context, and so a workspace, of its own.
    """

    def __init__(self) -> None:
        self._buf: np.ndarray | None = None
        self._users: weakref.WeakSet[Scratch] = weakref.WeakSet()

    @property
    def nbytes(self) -> int:
        """The arena's size: the largest request so far (0 before any)."""
        return 0 if self._buf is None else int(self._buf.nbytes)

    def request(self, *arrays: ArraySpec | None) -> Scratch:
        """Reserve scratch arrays (each `(shape, dtype)`; `None` entries stay `None` in `Scratch.arrays()`)
        laid out one after another in this workspace, and grow it when they do not fit."""
        scratch = Scratch(self, arrays)
        if scratch.nbytes > self.nbytes:
            self._grow(scratch.nbytes)
        self._users.add(scratch)
        return scratch

    def _grow(self, nbytes: int) -> None:
        global _live_bytes
        for user in self._users:  # drop views of the old arena, so that it is freed now
            user._views = None
        self._buf = None
        buf = np.empty(nbytes, np.uint8)
        buf.fill(0)  # resident now: the measured RSS matches `nbytes` from the start
        _live_bytes += nbytes
        weakref.finalize(buf, _released, nbytes)
        self._buf = buf


class Scratch:
    """One kernel's share of a `Workspace`: fixed offsets, views made on first use (and again after the
    workspace grew)."""

    def __init__(self, workspace: Workspace, arrays: Sequence[ArraySpec | None]) -> None:
        self.workspace = workspace
        self._layout: list[tuple[int, tuple[int, ...], np.dtype] | None] = []
        offset = 0
        for spec in arrays:
            if spec is None:
                self._layout.append(None)
                continue
            shape, dtype = tuple(int(d) for d in spec[0]), np.dtype(spec[1])
            offset = -(-offset // _ALIGN) * _ALIGN
            self._layout.append((offset, shape, dtype))
            offset += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self.nbytes = offset  # what this kernel asked for (alignment gaps included)
        self._views: tuple[np.ndarray | None, ...] | None = None

    def arrays(self) -> tuple[np.ndarray | None, ...]:
        """Views of the requested arrays, in request order; contents are whatever was there last."""
        if self._views is None:
            buf = self.workspace._buf if self.nbytes else _EMPTY
            assert buf is not None and buf.nbytes >= self.nbytes
            self._views = tuple(
                None if e is None else np.ndarray(e[1], e[2], buffer=buf, offset=e[0]) for e in self._layout)
        return self._views


@dataclass
class PrepareContext:
    """What `prepare` may use besides the node: the graph (weights, shapes), the thread count the kernel
    will run with, representative activations (value name -> array from a reference run on a
    realistic input) for calibrating quantised primitives, the plan's ONNX Runtime spin mode, and the
    scratch `Workspace` shared with the other kernels of the plan (the executor passes one to all its
    contexts; a context made alone gets a fresh one)."""

    graph: Graph
    threads: int = 1
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    ort_spin: str = "stop"  # how ONNX Runtime sessions' workers wait (libraries/onnxruntime/session.py)
    workspace: Workspace = field(default_factory=Workspace)


class Kernel(ABC):
    """A primitive prepared for one node. Cheap to call; holds transformed weights.

    weight_bytes: the parameters it holds. workspace_bytes: the scratch it uses while it runs, kept by
    itself or asked of the shared `Workspace`; shared_workspace_bytes: the part of workspace_bytes that is
    in the shared workspace (counted once per plan, as the largest request, not per kernel)."""

    weight_bytes: int = 0
    workspace_bytes: int = 0
    shared_workspace_bytes: int = 0

    @abstractmethod
    def __call__(self, *inputs: Any) -> list[Any]:
        """Run on the node's dynamic inputs (in the primitive's input formats); return its outputs."""


class FunctionKernel(Kernel):
    """A kernel made from a closure, for primitives whose prepared state fits in one function."""

    def __init__(self, fn: Callable[..., list[Any]], weight_bytes: int = 0, workspace_bytes: int = 0,
                 scratch: Scratch | None = None):
        """`workspace_bytes`: scratch the kernel keeps itself; `scratch`: its share of the shared workspace
        (added to workspace_bytes, and reported as shared_workspace_bytes)."""
        self._fn = fn
        self.weight_bytes = weight_bytes
        self.shared_workspace_bytes = scratch.nbytes if scratch is not None else 0
        self.workspace_bytes = workspace_bytes + self.shared_workspace_bytes

    def __call__(self, *inputs: Any) -> list[Any]:
        return self._fn(*inputs)


class Primitive(ABC):
    """One way to run one kind of node. Subclasses set the class attributes and implement the methods.

    name: unique, "<op family>.<algorithm>.<library>[.<variant>]", e.g. "conv.im2col.numpy".
    precision: "fp32", "fp16w" (fp16 weight storage, fp32 compute), "bf16" (bf16 weights and compute, fp32
    in and out) or "int8".
    tolerance: the largest relative error (max |out - ref| / max |ref|) accepted by verification.
    fuses: consecutive nodes on fusable primitives of one library run as one segment kernel.
    measure_last: the profiler times it after the node's other candidates, so that the node's best time
    is known and a hopeless kernel stops early.
    graph_calibrated: an int8 primitive whose quantisation parameters are the graph's (`Graph.
    activation_qparams`: a calibration on real data when a plan carries one), not its own stand-in samples'.
    """

    name: str = ""
    library: str = ""
    op_types: frozenset[str] = frozenset()
    precision: str = "fp32"
    tolerance: float = 1e-4
    layout: str = "NCHW"  # fp32 layout of every dynamic input and of the output, unless overridden
    fuses: bool = False  # may join a segment of its library (`Library.segment`, kernels/segments.py)
    measure_last: bool = False  # rarely the best: the profiler times it after the others (early stop)
    graph_calibrated: bool = False  # int8 with the graph's calibration (kernels/int8_calib.edge_qparams)

    def available(self) -> str | None:
        """None when the library can be used on this machine, else why not."""
        return None

    def runs(self, op: str) -> bool:
        """Whether this primitive is a candidate for nodes of op type `op` (generic primitives take any
        op; `supports` then decides per node)."""
        return op in self.op_types

    def ops_label(self) -> list[str]:
        """The op types as users see them (`edgetune primitives`)."""
        return sorted(self.op_types)

    @abstractmethod
    def supports(self, node: Node, graph: Graph) -> str | None:
        """None when this primitive can run `node`; otherwise a short reason (shown to users)."""

    def input_formats(self, node: Node, graph: Graph) -> list[Format]:
        """The format of each dynamic input, in node order."""
        return [FP32_BY_LAYOUT[self.layout] for _ in graph.dynamic_inputs(node)]

    def output_format(self, node: Node, graph: Graph) -> Format:
        return FP32_BY_LAYOUT[self.layout]

    @abstractmethod
    def prepare(self, node: Node, ctx: PrepareContext) -> Kernel:
        """Build the kernel for `node` (weights transformed once)."""

    def __repr__(self) -> str:
        return f"<Primitive {self.name}>"


class Converter(ABC):
    """Changes an edge's format (layout change, cast, quantise, dequantise)."""

    name: str = ""
    library: str = ""
    src: Format = FP32
    dst: Format = FP32

    any_parameters: bool = False  # quantises or dequantises with whatever parameters its formats carry

    def bound(self, src: Format, dst: Format) -> Converter:
        """This converter for `src` -> `dst` of its formats' families (only `any_parameters` ones differ)."""
        return self

    def supports(self, shape: tuple[int, ...]) -> str | None:
        if len(shape) == 4 or self.src.layout == self.dst.layout:
            return None
        return "layout change needs a 4-D tensor"

    @abstractmethod
    def prepare(self, shape: tuple[int, ...]) -> Callable[[Any], Any]:
        """A function converting one tensor of `shape` (logical NCHW shape) from src to dst."""


# ---- helpers every numpy-based primitive needs ---------------------------------------------

def apply_activation(x: np.ndarray, act: Activation | None) -> np.ndarray:
    """Apply a fused activation in place where possible (x is a fresh array owned by the caller)."""
    if act is None:
        return x
    op, p = act.op, act.params
    if op == "Relu":
        return np.maximum(x, 0, out=x)
    if op == "Clip":
        return np.clip(x, p.get("min", -np.inf), p.get("max", np.inf), out=x)
    if op == "LeakyRelu":
        return np.where(x >= 0, x, x * np.float32(p.get("alpha", 0.01))).astype(x.dtype, copy=False)
    if op == "Sigmoid":
        with np.errstate(over="ignore"):  # exp overflow -> inf -> 0: the right limit
            return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype, copy=False)
    if op == "HardSigmoid":
        return np.clip(x * np.float32(p.get("alpha", 0.2)) + np.float32(p.get("beta", 0.5)), 0, 1).astype(
            x.dtype, copy=False
        )
    if op == "HardSwish":
        return (x * np.clip(x / 6.0 + 0.5, 0, 1)).astype(x.dtype, copy=False)
    if op == "Tanh":
        return np.tanh(x, out=x)
    if op == "Swish":
        with np.errstate(over="ignore"):
            return (x / (1.0 + np.exp(-x))).astype(x.dtype, copy=False)
    raise ValueError(f"unknown activation {op}")


def conv_params(node: Node, graph: Graph) -> dict[str, Any]:
    """Resolved Conv geometry: explicit symmetric-or-not pads (auto_pad already resolved by the importer),
    strides, dilations, group, kernel size, channel counts and the output spatial size."""
    x_shape = graph.shape(node.inputs[0])
    w_shape = graph.shape(node.inputs[1])
    kh, kw = w_shape[2], w_shape[3]
    strides = tuple(node.attr("strides", (1, 1)))
    dil = tuple(node.attr("dilations", (1, 1)))
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    group = int(node.attr("group", 1))
    n, c, h, w = x_shape
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    return {
        "n": n, "c": c, "h": h, "w": w, "co": w_shape[0], "kh": kh, "kw": kw,
        "strides": strides, "dilations": dil, "pads": pads, "group": group, "oh": oh, "ow": ow,
        "depthwise": group == c and group == w_shape[0] and group > 1,
        "bias": len(node.inputs) > 2 and bool(node.inputs[2]),
    }
