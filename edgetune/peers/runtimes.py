"""Whole-model peers, each run as its users run it: ONNX Runtime fp32 (default options), ONNX Runtime static
int8 (QDQ), OpenVINO f32, OpenVINO at its default precision, OpenVINO on the int8 QDQ model, torch eager.

Each peer has a builder of its own (`ort_peer`, `openvino_peer`, `torch_peer`) so that the fresh-process
memory measurement (`edgetune.measure.peer_memory`) builds exactly the peer that was timed; `build_peers`
builds all that apply.

OpenVINO is called through its public API, as a careful user would: `ov.Core().compile_model(model, "CPU",
config)` with `PERFORMANCE_HINT=LATENCY` and `INFERENCE_NUM_THREADS`, then one reused infer request,
`request.infer(feeds, share_inputs=True)` (no copy of the input; outputs copied into a fresh `OVDict`).
edgetune's own OpenVINO kernels (`kernels/libraries/openvino/compiled.py`) call the C++ `infer` underneath
the Python dispatcher instead, which saves ~20-70 us per call on one-node models; on a whole model that is
inside the noise (MobileNet V2, 2 threads, fastest of 15 interleaved blocks of 5 on a shared 2-core Xeon:
`infer(share_inputs=True)` 4.63 ms, `infer` copying the input 4.55, `compiled_model(feeds)` 4.60, edgetune's
lean call 4.55), and a peer must be what a user gets.
"""

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

ORT_FP32 = "onnxruntime fp32"
ORT_INT8 = "onnxruntime int8"
OV_F32 = "openvino f32"
OV_DEFAULT = "openvino default"  # no precision hint: bf16 on AMX/AVX512-BF16 CPUs, fp16 on Arm A76-class
OV_INT8 = "openvino int8"  # the same QDQ model as ORT_INT8
TORCH_NCHW = "torch eager NCHW"
TORCH_CL = "torch eager channels_last"
PEER_NAMES = (ORT_FP32, ORT_INT8, OV_F32, OV_DEFAULT, OV_INT8, TORCH_NCHW, TORCH_CL)
INT8_PEERS = (ORT_INT8, OV_INT8)  # run the quantised model
OPENVINO_PEERS = (OV_F32, OV_DEFAULT, OV_INT8)
TORCH_PEERS = (TORCH_NCHW, TORCH_CL)
# OpenVINO's element type names -> edgetune's precision names
_OV_PRECISION = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


@dataclass
class Peer:
    """A named way to run the whole model: `fn()` runs one inference on the prepared input.

    precision: what it computes in ("fp32", "bf16", "int8", "int8+bf16": int8 where quantised, the rest at
    OpenVINO's default precision). inference_precision: OpenVINO's own report of its precision ("f32",
    "bf16", "f16"), for OpenVINO peers only. model: the ONNX model it runs (the quantised one for int8
    peers), kept so that its memory can be measured in a fresh process on the same file."""

    name: str
    fn: Callable[[], Any]
    note: str = ""
    weight_bytes: int | None = None
    precision: str = "fp32"
    inference_precision: str | None = None
    model: onnx.ModelProto | None = None


def peer_outputs(result: Any) -> list[np.ndarray]:
    """What a peer's `fn()` returned (ORT's list, OpenVINO's OVDict, a torch tensor) as a list of arrays, in
    the model's output order."""
    if hasattr(result, "to_tuple"):  # OpenVINO OVDict
        return [np.asarray(a) for a in result.to_tuple()]
    if isinstance(result, (list, tuple)):
        return [np.asarray(a) for a in result]
    if hasattr(result, "detach"):  # torch tensor
        return [result.detach().numpy()]
    return [np.asarray(result)]


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


def calibration_feeds(feeds: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The int8 peers' calibration set: the feeds and 7 seeded standard-normal draws of the float inputs
    (integer inputs, token ids, stay as given)."""
    return [feeds] + [
        {k: np.random.default_rng(s).standard_normal(v.shape).astype(np.float32) if v.dtype.kind == "f" else v
         for k, v in feeds.items()}
        for s in range(1, 8)
    ]


def _initializer_bytes(model: onnx.ModelProto) -> int:
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


def ort_peer(name: str, model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray], threads: int) -> Peer:
    """ONNX Runtime on the whole model (fp32, or the QDQ model for ORT_INT8) with ORT's default options."""
    sess = ort_session(model, threads)
    proto = model if isinstance(model, onnx.ModelProto) else None
    wb = _initializer_bytes(proto) if proto is not None else None
    if name == ORT_INT8:
        return Peer(name, lambda: sess.run(None, feeds), "static QDQ, per-channel, reduce_range", wb, "int8",
                    model=proto)
    return Peer(name, lambda: sess.run(None, feeds), "whole graph, ORT default options", wb, "fp32", model=proto)


def openvino_unavailable() -> str | None:
    """None when OpenVINO and its CPU plugin load here, else one line saying why not."""
    try:
        import openvino as ov  # optional: the OpenVINO peers exist only where it is installed
    except ImportError as e:
        return f"openvino is not installed ({e})"
    try:
        devices = ov.Core().available_devices
    except Exception as e:  # noqa: BLE001 - any failure to start OpenVINO makes its peers unavailable
        return f"OpenVINO failed to start: {type(e).__name__}: {e}"
    if "CPU" not in devices:
        return f"OpenVINO's CPU plugin is not available (devices: {', '.join(devices) or 'none'})"
    return None


def openvino_config(name: str, threads: int) -> dict[str, Any]:
    """The compile configuration of an OpenVINO peer: latency hint and `threads` threads; OV_F32 also
    forces fp32 (`INFERENCE_PRECISION_HINT=f32`); the others keep OpenVINO's default precision."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": int(threads)}
    if name == OV_F32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


def openvino_peer(name: str, model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray], threads: int,
                  core: Any | None = None) -> Peer:
    """OpenVINO's CPU plugin on the whole model (the QDQ model for OV_INT8), through its public API: one
    compiled model, one reused infer request, `infer(feeds, share_inputs=True)`."""
    import openvino as ov  # optional (see openvino_unavailable)

    core = core or ov.Core()
    proto = model if isinstance(model, onnx.ModelProto) else None
    # read_model takes a path, or the serialised ONNX bytes a ModelProto becomes
    ov_model = core.read_model(proto.SerializeToString() if proto is not None else str(model))
    compiled = core.compile_model(ov_model, "CPU", openvino_config(name, threads))
    request = compiled.create_infer_request()
    reported = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    rest = _OV_PRECISION.get(reported, reported)
    if name == OV_INT8:
        precision = "int8" if rest == "fp32" else f"int8+{rest}"
        note = f"the ORT int8 QDQ model, OpenVINO default precision elsewhere ({reported})"
    elif name == OV_F32:
        precision, note = rest, "whole graph, INFERENCE_PRECISION_HINT=f32, latency hint"
    else:
        precision, note = rest, f"whole graph, OpenVINO's default precision on this CPU ({reported})"
    wb = _initializer_bytes(proto) if proto is not None else None

    def run() -> Any:
        return request.infer(feeds, share_inputs=True)

    peer = Peer(name, run, note, wb, precision, reported, model=proto)
    peer.compiled_model = compiled  # type: ignore[attr-defined] - for inspection (its properties)
    return peer


def torch_peer(name: str, module: Any, feeds: dict[str, np.ndarray], threads: int, *, in_place: bool = False) -> Peer:
    """torch eager on the model's torch module, NCHW or channels_last (a converted copy of the module, or the
    module itself converted when `in_place`: a user running channels_last keeps one copy)."""
    import torch  # optional: absent on boards where PyPI's torch cannot run

    torch.set_num_threads(threads)
    x = torch.from_numpy(next(iter(feeds.values())))
    n_params = sum(p.numel() * p.element_size() for p in module.parameters())
    if name == TORCH_CL:
        xc = x.contiguous(memory_format=torch.channels_last)
        m_cl = module.to(memory_format=torch.channels_last).eval() if in_place else _channels_last_copy(module)

        def eager_cl() -> Any:
            with torch.inference_mode():
                return m_cl(xc)

        return Peer(name, eager_cl, "torch eager, channels_last", n_params)

    def eager() -> Any:
        with torch.inference_mode():
            return module(x)

    return Peer(name, eager, "torch eager, oneDNN", n_params)


def build_peers(
    graph: Graph,
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    threads: int,
    *,
    int8: bool = True,
    torch_module: Any | None = None,
    calibration: list[dict[str, np.ndarray]] | None = None,
    openvino: bool = True,
    skipped: list[str] | None = None,
) -> list[Peer]:
    """The peers that apply to this model: torch eager only when the model's torch module is known, the
    OpenVINO peers where OpenVINO's CPU plugin loads (otherwise one line in `skipped` says why)."""
    peers: list[Peer] = [ort_peer(ORT_FP32, model, feeds, threads)]
    qmodel = quantize_int8(model, calibration or calibration_feeds(feeds)) if int8 else None
    if qmodel is not None:
        peers.append(ort_peer(ORT_INT8, qmodel, feeds, threads))
    if openvino:
        why = openvino_unavailable()
        if why is not None:
            if skipped is not None:
                skipped.append(f"OpenVINO peers skipped: {why}")
        else:
            import openvino as ov  # optional (see openvino_unavailable)

            core = ov.Core()  # one per process, as a user has; the three peers share it
            for name, m in ((OV_F32, model), (OV_DEFAULT, model), (OV_INT8, qmodel)):
                if m is None:
                    continue
                try:  # a model OpenVINO cannot read, compile or run loses that peer, not the comparison
                    peer = openvino_peer(name, m, feeds, threads, core)
                    peer.fn()
                except Exception as e:  # noqa: BLE001 - OpenVINO raises plain RuntimeErrors with its reason
                    if skipped is not None:
                        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                        skipped.append(f"{name} peer skipped: OpenVINO failed on this model: {first[:200]}")
                    continue
                peers.append(peer)
    if torch_module is not None:
        peers.append(torch_peer(TORCH_NCHW, torch_module, feeds, threads))
        peers.append(torch_peer(TORCH_CL, torch_module, feeds, threads))
    return peers


def _channels_last_copy(module: Any) -> Any:
    import torch  # optional (see build_peers)

    m = copy.deepcopy(module)
    return m.to(memory_format=torch.channels_last).eval()
