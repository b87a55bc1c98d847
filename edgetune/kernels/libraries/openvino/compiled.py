"""ONNX models compiled by OpenVINO for the CPU, and the kernel that calls one.

Every compiled model is fp32 (`INFERENCE_PRECISION_HINT=f32`, set explicitly: OpenVINO's CPU default is
bf16 on CPUs with AMX or AVX512-BF16 and fp16 on Arm A76-class cores, which changes the numerics; lower
precisions belong to a precision option of their own), runs one stream at `threads` threads with the
latency hint, so that it behaves like one call of any other library's kernel. Threads are set per
compiled model (OpenVINO's TBB arena), not per process.

The call path (measured on a 3x3 conv, 16 channels at 12x12, and a 3x3 depthwise conv, 64 channels at
28x28, 1 thread, Xeon with AVX-512, fastest of 15 interleaved blocks on a loaded 2-core machine):
`InferRequest.infer` (the Python wrapper: its data dispatcher, then an `OVDict`) 46/139 us; the C++
`infer` on the inputs wrapped as shared-memory `Tensor`s, OpenVINO copying the outputs into fresh arrays,
26/68 us, the same with the request's own input tensors restored afterwards 26/69 us, copying the inputs
into the request's own buffers instead 23/67 us. In an earlier, noisier run `CompiledModel.__call__` and
user-provided output buffers (`set_output_tensor`, no output copy but a Tensor and a call more per output)
were both slower than the C++ `infer`. Kept: the C++ `infer` on shared-memory inputs (no copy of large
inputs), restoring the request's own input tensors after each call so that the request never keeps a
pointer into an array its caller may free (a request left holding a freed user buffer crashed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import openvino as ov
from onnx import numpy_helper
from openvino import _pyopenvino

from edgetune.kernels.base import FunctionKernel, Kernel

DEVICE = "CPU"


@functools.cache
def core() -> ov.Core:
    """One OpenVINO Core per process (plugins load once; compiled models share it)."""
    return ov.Core()


def cpu_unavailable() -> str | None:
    """None when OpenVINO's CPU plugin loads on this machine, else why not."""
    try:
        devices = core().available_devices
    except Exception as e:  # noqa: BLE001 - any failure to start OpenVINO makes it unavailable, with the reason
        return f"OpenVINO failed to start: {type(e).__name__}: {e}"
    if DEVICE not in devices:
        return f"OpenVINO CPU plugin not available (devices: {', '.join(devices) or 'none'})"
    return None


PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "f16": "f16"}  # edgetune's name -> OpenVINO's hint


def compile_config(threads: int, precision: str = "fp32") -> dict[str, Any]:
    """One stream of `threads` threads, latency-oriented, at `precision` (fp32 unless a precision option
    asks for bf16 or f16, which OpenVINO runs only where the CPU has the instructions)."""
    if precision not in PRECISION_HINTS:
        raise ValueError(f"OpenVINO has no inference precision {precision!r} (one of {', '.join(PRECISION_HINTS)})")
    return {
        "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
    }


def compile_onnx(model: onnx.ModelProto, threads: int, precision: str = "fp32") -> ov.CompiledModel:
    """`model` (an ONNX ModelProto) compiled for the CPU at `threads` threads, at `precision`."""
    ov_model = core().read_model(model.SerializeToString())
    return core().compile_model(ov_model, DEVICE, compile_config(threads, precision))


def supported_precisions() -> list[str]:
    """The floating-point precisions OpenVINO's CPU plugin computes in natively on this CPU (its
    OPTIMIZATION_CAPABILITIES: "BF16" with AMX/AVX512-BF16 or Arm BF16, "FP16" with AVX512-FP16 or Arm fp16)."""
    caps = set(core().get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))
    return ["fp32", *(["bf16"] if "BF16" in caps else []), *(["f16"] if "FP16" in caps else [])]


def model_kernel(compiled: ov.CompiledModel, weight_bytes: int, feed: list[int] | None = None,
                 arity: int | None = None) -> Kernel:
    """A kernel calling `compiled` on one reused InferRequest and returning all its outputs (fresh arrays).

    It takes `arity` positional arguments (default: one per model input); `feed[i]` is the argument that
    becomes the model's input i (a node reading one value twice, Mul(x, x), is called with it twice but its
    model has one input); default: argument i."""
    request = compiled.create_infer_request()
    n_inputs = len(compiled.inputs)
    take = list(range(n_inputs)) if feed is None else list(feed)
    arity = n_inputs if arity is None else arity
    if len(take) != n_inputs or any(not 0 <= j < arity for j in take):
        raise ValueError(f"feed {take} does not fit a model with {n_inputs} inputs called with {arity} arguments")
    own = [request.get_input_tensor(i) for i in range(n_inputs)]
    infer: Callable[..., dict[Any, np.ndarray]] = _pyopenvino.InferRequest.infer  # the C++ call, no dispatcher
    restore = request.set_input_tensor

    if n_inputs == 1 and arity == 1:  # the common case
        own0 = own[0]

        def run1(x: np.ndarray) -> list[np.ndarray]:
            out = infer(request, _shared(x), False, True)
            restore(own0)
            return list(out.values())

        kernel = FunctionKernel(run1, weight_bytes=weight_bytes)
    else:
        restore_all, own_all = request.set_input_tensors, dict(enumerate(own))
        pairs = list(enumerate(take))

        def run(*xs: np.ndarray) -> list[np.ndarray]:
            out = infer(request, {i: _shared(xs[j]) for i, j in pairs}, False, True)
            restore_all(own_all)
            return list(out.values())

        kernel = FunctionKernel(run, weight_bytes=weight_bytes)
    kernel.compiled_model = compiled  # for inspection (its properties), never called through
    return kernel


def _shared(x: np.ndarray) -> ov.Tensor:
    """`x` as a Tensor on its own memory; a copy when OpenVINO cannot share it (not C-contiguous: a
    view from another library's kernel; read-only: a broadcast or a buffer)."""
    try:
        return ov.Tensor(x, shared_memory=True)
    except (RuntimeError, ValueError):
        return ov.Tensor(np.array(x, order="C"), shared_memory=True)


def initializer_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the model's constants (what the kernel's weights are before OpenVINO repacks them)."""
    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def warm_up_compiled(threads: int) -> None:
    """OpenVINO's Core, CPU plugin and TBB arena start once per process: compile and run a tiny model."""
    g = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "warm",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8])])
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
    model_kernel(compile_onnx(m, threads), 0)(np.ones((1, 8), np.float32))
