"""Per-node int8 sensitivity by a cheap proxy: the SQNR of the model's outputs against fp32.

Two views, both useful to order fallbacks (AIMET's per-group sensitivity, NNCF's logits NMSE ranking):
- "only": only this node int8, everything else fp32: how much error the node brings on its own;
- "all_but": every quantisable node int8 except this one: how much reverting it recovers.
Each variant is built by one `Quantizer` (weights quantised once) and run by ONNX Runtime with all graph
optimisations, so the numbers are those of the fused int8 kernels that actually execute (QDQ->QLinear
fusion rounds differently from the QDQ graph read literally).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from edgetune.kernels.libraries.onnxruntime.session import session
from edgetune.quant.metrics import db_of, output_nmse
from edgetune.quant.qdq import Quantizer
from edgetune.quant.spec import QuantSpec

MODES = ("only", "all_but")
Feeds = Sequence[Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class NodeSensitivity:
    """One node's scores (None for a mode not run). NMSE of the outputs vs fp32; SQNR = -10 log10 NMSE."""

    node: str
    only_nmse: float | None = None
    only_sqnr_db: float | None = None
    all_but_nmse: float | None = None
    all_but_sqnr_db: float | None = None


@dataclass(frozen=True)
class SensitivityReport:
    """Scores per node, and the all-int8 model's for reference."""

    all_int8_nmse: float
    all_int8_sqnr_db: float
    nodes: tuple[NodeSensitivity, ...]

    def most_sensitive(self, mode: str = "only") -> list[str]:
        """Node names, the one int8 hurts most first: lowest SQNR alone ("only"), or highest SQNR when it
        alone stays fp32 ("all_but")."""
        if mode == "only":
            return [s.node for s in sorted(self.nodes, key=lambda s: (s.only_sqnr_db, s.node))]
        if mode == "all_but":
            return [s.node for s in sorted(self.nodes, key=lambda s: (-(s.all_but_sqnr_db or 0.0), s.node))]
        raise ValueError(f"unknown sensitivity mode {mode!r} (one of {', '.join(MODES)})")


def run_model(model: onnx.ModelProto, feeds: Feeds, threads: int = 1) -> list[list[np.ndarray]]:
    """Outputs of `model` on each feed (ONNX Runtime CPU, all optimisations): outs[feed][output]."""
    sess = session(model, threads, "all")
    names = {i.name for i in sess.get_inputs()}
    return [sess.run(None, {k: v for k, v in f.items() if k in names}) for f in feeds]


def variant_nmse(model: onnx.ModelProto, feeds: Feeds, reference: Sequence[Sequence[np.ndarray]],
                 threads: int = 1) -> float:
    return output_nmse(reference, run_model(model, feeds, threads))


def node_sensitivity(model: onnx.ModelProto, spec: QuantSpec, feeds: Feeds, nodes: Iterable[str] | None = None,
                     *, modes: Sequence[str] = MODES, threads: int = 1, quantizer: Quantizer | None = None,
                     reference: Sequence[Sequence[np.ndarray]] | None = None) -> SensitivityReport:
    """Sensitivity of `nodes` (default: every quantisable node) of the float `model` on `feeds` (a small
    ranking subset: a few samples), one ONNX Runtime session per variant at `threads` threads."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown sensitivity mode {unknown[0]!r} (one of {', '.join(MODES)})")
    q = quantizer or Quantizer(model, spec)
    names = list(q.units) if nodes is None else list(nodes)
    ref = reference if reference is not None else run_model(model, feeds, threads)
    everything = variant_nmse(q.build(None), feeds, ref, threads)
    results = []
    for name in names:
        scores: dict[str, float] = {}
        if "only" in modes:
            e = variant_nmse(q.build([name]), feeds, ref, threads)
            scores.update(only_nmse=e, only_sqnr_db=db_of(e))
        if "all_but" in modes:
            e = variant_nmse(q.build([n for n in q.units if n != name]), feeds, ref, threads)
            scores.update(all_but_nmse=e, all_but_sqnr_db=db_of(e))
        results.append(NodeSensitivity(name, **scores))
    return SensitivityReport(everything, db_of(everything), tuple(results))
