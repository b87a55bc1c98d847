"""TFLite models run by LiteRT's interpreter, whose default CPU delegate is XNNPACK, and the kernel that
calls one.

Threads: `num_threads` is fixed when the interpreter is created (XNNPACK's pthreadpool is per
interpreter), so a kernel's thread count is its interpreter's; nothing is set per process.
Delegation: XNNPACK takes the operators it supports and leaves the others to TFLite's own kernels; which
ones it left is read from the interpreter's node list after `allocate_tensors` (a DELEGATE node replaces
each run of operators XNNPACK took; `undelegated`).
Call path: `set_tensor` copies each input into the interpreter's buffer, `get_tensor` copies each output
out (a kernel's outputs must outlive its next call); holding numpy views of the interpreter's buffers
instead makes `invoke` refuse to run.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import tflite
from ai_edge_litert.interpreter import Interpreter

from edgetune.kernels.base import FunctionKernel, Kernel
from edgetune.kernels.libraries.litert.flatbuffer import ModelWriter

DELEGATE_OP = "DELEGATE"


def interpreter(content: bytes, threads: int) -> Interpreter:
    """An interpreter for the model at `threads` threads, tensors allocated (XNNPACK applied then)."""
    it = Interpreter(model_content=content, num_threads=int(threads))
    it.allocate_tensors()
    return it


def undelegated(it: Interpreter) -> list[str]:
    """The operators XNNPACK did not take (op names, in model order): each DELEGATE node covers the
    operators between its outputs and its inputs, found by walking producers back from its outputs."""
    ops = it._get_ops_details()  # the interpreter's only view of its node list (a private method)
    plain = [op for op in ops if op["op_name"] != DELEGATE_OP]
    producer = {int(t): i for i, op in enumerate(plain) for t in op["outputs"]}
    taken: set[int] = set()
    for op in ops:
        if op["op_name"] != DELEGATE_OP:
            continue
        stop = {int(t) for t in op["inputs"]}
        stack = [int(t) for t in op["outputs"]]
        while stack:
            t = stack.pop()
            i = producer.get(t)
            if t in stop or i is None or i in taken:
                continue
            taken.add(i)
            stack.extend(int(u) for u in plain[i]["inputs"] if int(u) >= 0)
    return [op["op_name"] for i, op in enumerate(plain) if i not in taken]


def model_kernel(content: bytes, threads: int, weight_bytes: int, feed: list[int] | None = None,
                 arity: int | None = None) -> Kernel:
    """A kernel running the model on its own interpreter and returning all its outputs (fresh arrays).

    It takes `arity` positional arguments (default: one per model input); `feed[i]` is the argument that
    becomes the model's input i (Mul(x, x) is called with x twice but its model has one input)."""
    it = interpreter(content, threads)
    ins = [d["index"] for d in it.get_input_details()]
    outs = [d["index"] for d in it.get_output_details()]
    take = list(range(len(ins))) if feed is None else list(feed)
    arity = len(ins) if arity is None else arity
    if len(take) != len(ins) or any(not 0 <= j < arity for j in take):
        raise ValueError(f"feed {take} does not fit a model with {len(ins)} inputs called with {arity} arguments")
    pairs = list(zip(ins, take, strict=True))
    set_tensor, invoke, get_tensor = it.set_tensor, it.invoke, it.get_tensor

    def run(*xs: np.ndarray) -> list[np.ndarray]:
        for index, j in pairs:
            set_tensor(index, np.ascontiguousarray(xs[j], np.float32))
        invoke()
        return [get_tensor(o) for o in outs]

    kernel = FunctionKernel(run, weight_bytes=weight_bytes)
    kernel.interpreter = it  # for inspection (delegation, thread count), never called through
    kernel.threads = int(threads)
    return kernel


def _relu_model() -> bytes:
    """A one-operator model (RELU on 8 floats), to start the runtime once."""
    m = ModelWriter()
    x, y = m.tensor((1, 8), "x"), m.tensor((1, 8), "y")
    m.operator(tflite.BuiltinOperator.RELU, [x], [y])
    return m.serialize([x], [y])


@functools.cache
def runtime_unavailable() -> str | None:
    """None when LiteRT's interpreter runs a model on this machine, else why not."""
    try:
        model_kernel(_relu_model(), 1, 0)(np.ones((1, 8), np.float32))
    except Exception as e:  # noqa: BLE001 - any failure to start LiteRT makes it unavailable, with the reason
        return f"LiteRT failed to run a model: {type(e).__name__}: {e}"
    return None


def warm_up_runtime(threads: int) -> None:
    """LiteRT's runtime and XNNPACK's thread pool start once per process: run a tiny model at `threads`."""
    model_kernel(_relu_model(), threads, 0)(np.ones((1, 8), np.float32))


def describe(kernel: Any) -> dict[str, Any]:
    """What a LiteRT kernel runs: its thread count and the operators XNNPACK left to TFLite."""
    return {"threads": kernel.threads, "undelegated": undelegated(kernel.interpreter)}
