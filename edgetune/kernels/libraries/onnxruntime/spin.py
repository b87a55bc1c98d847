"""How an ONNX Runtime session's intra-op workers wait between runs (see `session.ort_session_options`).

A module of its own because the executor and plans check spin modes without loading onnxruntime."""

SPIN_MODES = ("on", "stop", "off")
