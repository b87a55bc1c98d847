"""The peers' accuracy on the same evaluation split as the plan, and which of them meet the same budget.

Why: "faster than every peer configuration that meets the same budget" needs the peers' accuracy measured
as the plan's is: ONNX Runtime's static int8 and OpenVINO on that QDQ model, calibrated on the same
calibration split; OpenVINO at its default precision (bf16 on AMX/AVX512-BF16 CPUs, fp16 on Arm A76-class
cores), which changes the numerics too. The fp32 peers compute what the model computes: they meet any
budget.
"""

from __future__ import annotations

from typing import Any

from edgetune.data.accuracy import accuracy_drop, evaluate
from edgetune.planning.precision import PrecisionData, PrecisionSearch, evaluation_logits
from edgetune.planning.verdict import FP32_PEERS
from edgetune.user_model import ModelSource


def native_precisions() -> list[str]:
    """The float precisions OpenVINO computes in natively here ("fp32" only when it is absent)."""
    try:
        # loaded on demand: openvino is optional, and only a precision search asks
        from edgetune.kernels.libraries.openvino.compiled import supported_precisions
    except ImportError:
        return ["fp32"]
    return supported_precisions()


def peer_accuracies(src: ModelSource, data: PrecisionData, search: PrecisionSearch, threads: int
                    ) -> dict[str, dict[str, Any]]:
    """Accuracy (and drop against the fp32 reference) of the lower-precision peers, on the evaluation split."""
    # loaded on demand: ONNX Runtime's quantisation tools and OpenVINO take seconds to import
    from edgetune.peers.runtimes import (
        INT8_PEERS,
        ORT_INT8,
        OV_DEFAULT,
        OV_INT8,
        openvino_config,
        openvino_unavailable,
        ort_session,
        quantize_int8,
    )

    qmodel = quantize_int8(src.onnx_model, data.calibration)
    runs = {ORT_INT8: _ort_runner(ort_session(qmodel, threads))}
    if openvino_unavailable() is None:
        runs[OV_INT8] = _ov_runner(qmodel, openvino_config(OV_INT8, threads))
        runs[OV_DEFAULT] = _ov_runner(src.onnx_model, openvino_config(OV_DEFAULT, threads))
    out = {}
    for name, run in runs.items():
        logits = evaluation_logits(run, data.evaluation)
        result = evaluate(logits, data.labels, search.reference_logits)
        drop = accuracy_drop(search.reference, result)
        out[name] = {"metric": result.metric, "value": result.value, "drop": drop,
                     "meets_budget": drop <= data.budget + 1e-9, "int8": name in INT8_PEERS}
    return out


def budget_peers(peers: dict[str, dict[str, Any]], budget: float) -> set[str]:
    """The peers a plan under this budget must beat: the fp32 ones and every lower-precision one within it."""
    return set(FP32_PEERS) | {name for name, acc in peers.items() if acc["drop"] <= budget + 1e-9}


def _ort_runner(sess: Any) -> Any:
    name = sess.get_inputs()[0].name
    return lambda feeds: sess.run(None, {name: feeds[next(iter(feeds))]})[0]


def _ov_runner(model: Any, config: dict[str, Any]) -> Any:
    import openvino as ov  # optional (see openvino_unavailable)

    core = ov.Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString()), "CPU", config)
    request = compiled.create_infer_request()
    return lambda feeds: next(iter(request.infer(feeds).values()))
