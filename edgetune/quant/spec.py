"""`QuantSpec`: the calibrated activation ranges of one model, the qparams derived from them, as JSON.

Why it carries every method's range and error, not only the chosen one: calibration is the slow part
(the model over all samples); with the candidates kept, the search (or a user) can switch one tensor's
method later without calibrating again, and a plan file records why each range was chosen.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.quant.maths import INT8_MAX, INT8_MAX_REDUCED, UINT8_MAX, affine_qparams

SPEC_FORMAT = 1


@dataclass(frozen=True)
class TensorRange:
    """One activation tensor's range: the chosen (lo, hi, method) and every method's range and MSE."""

    lo: float
    hi: float
    method: str
    candidates: dict[str, tuple[float, float]] = field(default_factory=dict)
    mse: dict[str, float] = field(default_factory=dict)

    def qparams(self, qmax: int = UINT8_MAX) -> tuple[float, int]:
        """(scale, zero_point) of the uint8 quantiser of this range."""
        return affine_qparams(self.lo, self.hi, qmax)

    def with_method(self, method: str) -> TensorRange:
        """The same tensor with another calibrated method's range."""
        if method not in self.candidates:
            raise EdgetuneError(f"range method {method!r} was not calibrated (have {', '.join(self.candidates)})")
        lo, hi = self.candidates[method]
        return dataclasses.replace(self, lo=lo, hi=hi, method=method)

    def to_dict(self) -> dict[str, Any]:
        scale, zp = self.qparams()
        return {"lo": self.lo, "hi": self.hi, "method": self.method, "scale": scale, "zero_point": zp,
                "candidates": {k: list(v) for k, v in self.candidates.items()}, "mse": dict(self.mse)}

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> TensorRange:
        try:
            r = cls(float(d["lo"]), float(d["hi"]), str(d["method"]),
                    {k: (float(v[0]), float(v[1])) for k, v in d.get("candidates", {}).items()},
                    {k: float(v) for k, v in d.get("mse", {}).items()})
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise EdgetuneError(f"quantisation spec: tensor {name!r} is malformed ({type(e).__name__}: {e})") from None
        if not r.lo <= r.hi:
            raise EdgetuneError(f"quantisation spec: tensor {name!r} has lo {r.lo} > hi {r.hi}")
        return r


@dataclass
class QuantSpec:
    """Calibrated ranges per activation tensor (ONNX tensor names of the float model) and how they were
    obtained, and how weights are quantised: `reduce_range` 7-bit (see `maths.INT8_MAX_REDUCED`),
    `per_channel` (else one scale per tensor), `bias_corrections` per node (subtracted from an int8
    node's bias, `equalize.bias_corrections`), `equalize_iterations` > 0: the ranges are of the model after
    cross-layer equalisation (`equalize.equalize`, that many sweeps), which a variant applies before
    quantising (0: none)."""

    tensors: dict[str, TensorRange]
    percentile: float
    samples: int
    reduce_range: bool = False
    per_channel: bool = True
    bias_corrections: dict[str, tuple[float, ...]] = field(default_factory=dict)
    equalize_iterations: int = 0

    @property
    def weight_qmax(self) -> int:
        return INT8_MAX_REDUCED if self.reduce_range else INT8_MAX

    def range_of(self, tensor: str) -> TensorRange:
        r = self.tensors.get(tensor)
        if r is None:
            raise EdgetuneError(f"quantisation spec has no range for tensor {tensor!r}: calibrate this model")
        return r

    def qparams(self, tensor: str) -> tuple[float, int]:
        return self.range_of(tensor).qparams()

    def with_method(self, tensor: str, method: str) -> QuantSpec:
        """A copy where `tensor` uses another calibrated method's range."""
        return dataclasses.replace(self, tensors={**self.tensors, tensor: self.range_of(tensor).with_method(method)})

    def methods(self) -> dict[str, int]:
        """How many tensors chose each method."""
        out: dict[str, int] = {}
        for r in self.tensors.values():
            out[r.method] = out.get(r.method, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"edgetune_quant_spec": SPEC_FORMAT, "percentile": self.percentile, "samples": self.samples,
                "reduce_range": self.reduce_range, "per_channel": self.per_channel,
                "bias_corrections": {k: list(v) for k, v in self.bias_corrections.items()},
                **({"equalize_iterations": self.equalize_iterations} if self.equalize_iterations else {}),
                "tensors": {k: v.to_dict() for k, v in self.tensors.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSpec:
        if not isinstance(d, dict) or d.get("edgetune_quant_spec") != SPEC_FORMAT:
            got = d.get("edgetune_quant_spec") if isinstance(d, dict) else type(d).__name__
            raise EdgetuneError(f"quantisation spec: format {got!r} is not {SPEC_FORMAT}")
        tensors = d.get("tensors")
        if not isinstance(tensors, dict):
            raise EdgetuneError("quantisation spec: 'tensors' must be an object")
        try:
            percentile, samples = float(d["percentile"]), int(d["samples"])
            corrections = {str(k): tuple(float(x) for x in v) for k, v in d.get("bias_corrections", {}).items()}
            sweeps = int(d.get("equalize_iterations", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise EdgetuneError(f"quantisation spec: {type(e).__name__}: {e}") from None
        return cls({k: TensorRange.from_dict(k, v) for k, v in tensors.items()}, percentile, samples,
                   bool(d.get("reduce_range", False)), bool(d.get("per_channel", True)), corrections,
                   max(sweeps, 0))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> QuantSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise EdgetuneError(f"quantisation spec: not JSON ({e})") from None
        return cls.from_dict(data)
