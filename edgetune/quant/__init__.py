"""int8 quantisation of ONNX models, per layer: calibration, QDQ variants, sensitivity, equalisation.

Why a layer of its own (between `kernels` and `user_model`): the search picks a precision per node, so it
needs many int8/fp32 variants of one model built fast from ONE calibration, and a cheap per-node accuracy
proxy to order its fallbacks. The pieces, one concern per module:

- `maths`: affine/symmetric quantisation arithmetic (scale, zero point, per-channel weight scales).
- `histogram`: streaming per-tensor statistics (min, max, zeros, a self-widening histogram).
- `ranges`: a tensor's range by min/max, percentile and entropy (KL), and the per-tensor choice of the
  one whose range quantises that tensor's histogram with the least MSE.
- `spec`: `QuantSpec`, the calibrated ranges and their qparams, JSON round-trip (it travels in plans).
- `model_index`: which ONNX nodes are quantisable, with their fused activations, weights and edges.
- `calibrate`: float activation statistics of an ONNX model over feeds (ONNX Runtime) -> `QuantSpec`.
- `qdq`: `Quantizer`/`quantize`: the QDQ model where the chosen nodes compute in int8.
- `metrics`: SQNR and NMSE against the fp32 outputs.
- `sensitivity`: per-node SQNR with only that node int8, and with all but that node int8.
- `equalize`: cross-layer equalisation and bias correction of the float model.
"""

from __future__ import annotations

from edgetune.quant.calibrate import calibrate
from edgetune.quant.equalize import bias_corrections, equalize
from edgetune.quant.metrics import nmse, sqnr_db
from edgetune.quant.model_index import quantisable_nodes
from edgetune.quant.qdq import Quantizer, quantize
from edgetune.quant.sensitivity import NodeSensitivity, SensitivityReport, node_sensitivity
from edgetune.quant.spec import QuantSpec, TensorRange

__all__ = [
    "NodeSensitivity", "QuantSpec", "Quantizer", "SensitivityReport", "TensorRange", "bias_corrections",
    "calibrate", "equalize", "node_sensitivity", "nmse", "quantisable_nodes", "quantize", "sqnr_db",
]
