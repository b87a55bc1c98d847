"""Shared builders of the graph tests: small hand-made ONNX models and running them in ONNX Runtime."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def vi(name: str, shape: list | None, dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def mk(nodes: list, inputs: list, outputs: list, inits: dict | None = None,
       opset: int = 17) -> onnx.ModelProto:
    """A one-graph model at `opset` with the lowest IR version that opset needs."""
    tensors = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = helper.make_graph(nodes, "t", inputs, outputs, initializer=tensors)
    op = helper.make_opsetid("", opset)
    m = helper.make_model(g, opset_imports=[op])
    m.ir_version = min(helper.find_min_ir_version_for([op]), onnx.IR_VERSION)
    return m


def run(model: onnx.ModelProto, feeds: dict, optimize: bool = True) -> list[np.ndarray]:
    """The model's outputs from a 1-thread ORT session (graph optimisations off when `optimize` is False)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
