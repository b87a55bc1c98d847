"""ONNX Runtime sessions as edgetune runs them: thread count, spin mode, one kernel per session.

Why spin modes matter (see `ort_session_options`): on a 2-core machine, an idle pool that spins steals
the cores from the next library's pool; alternating torch and ORT layers ran 2.6x slower than their
isolated sum until ORT sessions stopped spinning when their run returns, except a session that runs
alone, which keeps ONNX Runtime's own defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from edgetune.kernels.base import FunctionKernel, Kernel
from edgetune.kernels.libraries.onnxruntime.spin import SPIN_MODES


def ort_session_options(threads: int, optimization: str = "all", spin: str = "stop") -> Any:
    """SessionOptions with `threads` intra-op threads and one of three spin modes:

    - "on": ONNX Runtime's own defaults (workers spin between and after runs), for a session that has the
      cores to itself: a plan that is one ORT session and nothing else runs exactly as ORT alone would.
    - "stop": workers spin while a run is in flight (fast hand-offs between the session's ops) and stop
      the moment it returns (`session.force_spinning_stop`), so the next library's pool gets the cores;
      the default for a session among others.
    - "off": workers never spin (`allow_spinning=0`): every parallel section wakes them; 1.5-1.6x slower
      on a whole MobileNet V2 on an AVX-512 Xeon, kept as a measured alternative.
    """
    if spin not in SPIN_MODES:
        raise ValueError(f"unknown ORT spin mode {spin!r} (one of {', '.join(SPIN_MODES)})")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if spin != "on":
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin == "stop" else "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if spin == "stop":
            so.add_session_config_entry("session.force_spinning_stop", "1")
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[optimization]
    so.log_severity_level = 3
    return so


def session(model: onnx.ModelProto, threads: int, optimization: str = "all",
            spin: str = "stop") -> ort.InferenceSession:
    """A CPU session; `spin` as in `ort_session_options`."""
    return ort.InferenceSession(
        model.SerializeToString(),
        ort_session_options(threads, optimization, spin),
        providers=["CPUExecutionProvider"],
    )


def session_kernel(sess: ort.InferenceSession, weight_bytes: int, feed: list[str] | None = None) -> Kernel:
    """A kernel feeding its positional arguments to the input names `feed` (the node's dynamic inputs,
    duplicates allowed; default: the session's inputs) and returning all the session's outputs."""
    in_names = feed or [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    run_options = ort.RunOptions()
    c_run: Callable[..., list[Any]] | None = getattr(getattr(sess, "_sess", None), "run", None)

    if c_run is not None and len(in_names) == 1:  # the common case, without dict-building overhead
        name = in_names[0]

        def run1(x: np.ndarray) -> list[Any]:
            return c_run(out_names, {name: x}, run_options)

        kernel = FunctionKernel(run1, weight_bytes=weight_bytes)
    else:
        runner = c_run or (lambda o, f, r: sess.run(o, f, r))

        def run(*xs: np.ndarray) -> list[Any]:
            return runner(out_names, dict(zip(in_names, xs, strict=True)), run_options)

        kernel = FunctionKernel(run, weight_bytes=weight_bytes)
    kernel.session = sess  # for inspection (its options), never called through
    return kernel


def initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def warm_up_session(threads: int) -> None:
    """ONNX Runtime's environment and first session (thread pools, arenas) are paid once per process."""
    g = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "warm",
                          [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                          [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8])])
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
    session(m, threads).run(None, {"x": np.ones((1, 8), np.float32)})
