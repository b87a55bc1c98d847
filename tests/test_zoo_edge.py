"""The edge zoo beyond classifiers: each model brings the ops its kind of network runs on the edge, and
the layer table shows them (the numbers against ONNX Runtime are in test_models_reference/test_zoo)."""

from __future__ import annotations

import pytest

from edgetune import zoo
from edgetune.graph import layer_table, load_graph
from edgetune.kernels.backends import generic_nodes

EDGE_OPS = {
    "ssdlite_mobilenet_v2": {"Conv", "Resize", "Split", "Sigmoid", "Concat", "Transpose", "Reshape", "Exp"},
    "deit_tiny": {"Conv", "MatMul", "Softmax", "LayerNormalization", "Erf", "Gather", "Transpose"},
    "ds_cnn_kws": {"Conv", "GlobalAveragePool", "Gemm"},
    "unet_small": {"Conv", "ConvTranspose", "Concat", "MaxPool", "Resize"},
}


@pytest.mark.parametrize("name", list(EDGE_OPS))
def test_edge_models_bring_their_ops(name: str) -> None:
    graph = load_graph(zoo.build_onnx(name), name=name)
    ops = {n.op for n in graph.nodes}
    assert EDGE_OPS[name] <= ops
    assert "BatchNormalization" not in ops  # edgetune's BN folding still applies
    rows = {r["name"]: r for r in layer_table(graph)}
    if name == "deit_tiny":
        # attention: q @ k^T and attn @ v have two run-time operands, 12 blocks x 2, and count MACs
        attn = [n for n in graph.nodes if n.op == "MatMul" and len(graph.dynamic_inputs(n)) == 2]
        assert len(attn) == 24 and all(rows[n.name]["macs"] == 3 * 197 * 197 * 64 for n in attn)
        assert graph.shape(graph.outputs[0]) == (1, 1000)
    if name == "ssdlite_mobilenet_v2":
        assert graph.outputs == ["boxes", "scores"]
        anchors = (20 * 20 + 10 * 10 + 5 * 5 + 3 * 3 + 2 * 2) * 6
        assert graph.shape("boxes") == (1, anchors, 4) and graph.shape("scores") == (1, anchors, 91)
    if name == "unet_small":
        assert not generic_nodes(graph)  # ConvTranspose and Resize have kernels of edgetune's own
        assert graph.shape(graph.outputs[0]) == (1, 21, 128, 128)
    if name == "ds_cnn_kws":
        stem = graph.nodes[0]
        assert stem.op == "Conv" and stem.attrs["kernel_shape"] == [10, 4] and graph.shape(graph.outputs[0]) == (1, 12)
