"""Whole-model peers: ONNX Runtime fp32 (default options), ONNX Runtime static int8 (QDQ), torch eager."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgetune.graph.ir import Graph
from edgetune.kernels.libraries.onnxruntime.session import ort_session_options


@dataclass
class Peer:
    """A named way to run the whole model: `fn()` runs one inference on the prepared input."""

    name: str
    fn: Callable[[], Any]
    note: str = ""
    weight_bytes: int | None = None


def ort_session(model: onnx.ModelProto | str | Path, threads: int, *, default_options: bool = True) -> Any:
    """An ORT CPU session. `default_options` keeps ORT's own defaults (spinning on, ENABLE_ALL) as a
    user would run it; otherwise edgetune's no-spin options (for mixing with other libraries)."""
    import onnxruntime as ort  # loaded on demand: building peers is the only use

    if default_options:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
    else:
        so = ort_session_options(threads)
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def quantize_int8(model: onnx.ModelProto, calibration: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
    """ONNX Runtime static int8 (QDQ, per-channel int8 weights, 7-bit activations: reduce_range avoids
    the AVX2 u8s8 saturation measured on these machines)."""
    # loaded on demand: ORT's quantisation tools take ~1 s to import and only the int8 peer needs them
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as d:
        src, pre, dst = Path(d) / "m.onnx", Path(d) / "pre.onnx", Path(d) / "q.onnx"
        onnx.save(model, src)
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation, not a requirement
            pre = src
        quantize_static(
            str(pre), str(dst), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )
        return onnx.load(str(dst))


def _initializer_bytes(model: onnx.ModelProto) -> int:
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


def build_peers(
    graph: Graph,
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    threads: int,
    *,
    int8: bool = True,
    torch_module: Any | None = None,
    calibration: list[dict[str, np.ndarray]] | None = None,
) -> list[Peer]:
    """The peers that apply to this model; torch eager only when the model's torch module is known."""
    peers: list[Peer] = []
    sess = ort_session(model, threads)
    peers.append(Peer("onnxruntime fp32", lambda: sess.run(None, feeds), "whole graph, ORT default options",
                      _initializer_bytes(model)))
    if int8:
        calib = calibration or [feeds] + [
            {k: np.random.default_rng(s).standard_normal(v.shape).astype(np.float32) if v.dtype.kind == "f" else v
             for k, v in feeds.items()}  # integer inputs (token ids) stay as given
            for s in range(1, 8)
        ]
        qmodel = quantize_int8(model, calib)
        qsess = ort_session(qmodel, threads)
        peers.append(Peer("onnxruntime int8", lambda: qsess.run(None, feeds),
                          "static QDQ, per-channel, reduce_range", _initializer_bytes(qmodel)))
    if torch_module is not None:
        import torch  # optional: absent on boards where PyPI's torch cannot run

        torch.set_num_threads(threads)
        x = torch.from_numpy(next(iter(feeds.values())))
        xc = x.contiguous(memory_format=torch.channels_last)
        m_cl = _channels_last_copy(torch_module)
        n_params = sum(p.numel() * p.element_size() for p in torch_module.parameters())

        def eager() -> Any:
            with torch.inference_mode():
                return torch_module(x)

        def eager_cl() -> Any:
            with torch.inference_mode():
                return m_cl(xc)

        peers.append(Peer("torch eager NCHW", eager, "torch eager, oneDNN", n_params))
        peers.append(Peer("torch eager channels_last", eager_cl, "torch eager, channels_last", n_params))
    return peers


def _channels_last_copy(module: Any) -> Any:
    import torch  # optional (see build_peers)

    m = copy.deepcopy(module)
    return m.to(memory_format=torch.channels_last).eval()
