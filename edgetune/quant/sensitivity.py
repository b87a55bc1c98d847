"""Per-node int8 sensitivity by a cheap proxy: the SQNR of the model's outputs against fp32.

Two views, both useful to order fallbacks (AIMET's per-group sensitivity, NNCF's logits NMSE ranking):
- "only": only this node int8, everything else fp32: how much error the node brings on its own;
- "all_but": every quantisable node int8 except this one: how much reverting it recovers.
Each variant is built by one `Quantizer` (weights quantised once) and run by ONNX Runtime with all graph
optimisations, so the numbers are those of the fused int8 kernels that actually execute (QDQ->QLinear
fusion rounds differently from the QDQ graph read literally, and saturates on AVX2 without VNNI).

Why variants start at their node: in both views every node before the one scored is the same as in a
reference run (fp32 for "only", all-int8 for "all_but"), so those tensors are taken from that run (one
run with all of them as outputs, which changes no fusion) and a variant is cut to the nodes from its own
on (`cut_model`), which halves the session set-up and run time on average. From the all-int8 run the
cut is made at the uint8 Q outputs, never at a DQ output: a DQ must stay in front of each int8 consumer
or ORT would not fuse it (it would run a float conv on dequantised weights). Not taken from a reference:
graph outputs and Gemm/MatMul outputs (whether they end in a Q depends on their consumers' precision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

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


def cut_model(model: onnx.ModelProto, fed: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """`model` reduced to the nodes that compute its outputs from the tensors in `fed`, which become
    inputs (typed from the arrays); graph inputs still needed stay inputs."""
    g = model.graph
    needed = {o.name for o in g.output}
    kept = []
    for n in reversed(g.node):
        if any(o and o in needed and o not in fed for o in n.output):
            kept.append(n)
            needed.update(i for i in n.input if i)
    kept.reverse()
    out = onnx.ModelProto()
    out.ir_version = model.ir_version
    out.opset_import.extend(model.opset_import)
    out.graph.name = g.name
    out.graph.node.extend(kept)
    out.graph.initializer.extend(t for t in g.initializer if t.name in needed)
    inits = {t.name for t in g.initializer}
    out.graph.input.extend(i for i in g.input if i.name in needed and i.name not in fed and i.name not in inits)
    out.graph.input.extend(
        helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
        for t, a in fed.items() if t in needed)
    out.graph.output.extend(g.output)
    return out


class _Prefix:
    """The tensors of a reference run that variants scored at a later node share with it: name ->
    position of the original node that computes it."""

    def __init__(self, model: onnx.ModelProto, positions: dict[str, int], feeds: Feeds, threads: int) -> None:
        produced = {o: n.op_type for n in model.graph.node for o in n.output}
        self.position = {t: p for t, p in positions.items() if t in produced}
        self.feeds = feeds
        extra = onnx.ModelProto()
        extra.CopyFrom(model)
        elem = {t: onnx.TensorProto.UINT8 if produced[t] == "QuantizeLinear" else onnx.TensorProto.FLOAT
                for t in self.position}
        extra.graph.output.extend(helper.make_tensor_value_info(t, elem[t], None) for t in self.position)
        n_out = len(model.graph.output)
        runs = run_model(extra, feeds, threads)
        self.values = [dict(zip(self.position, r[n_out:], strict=True)) for r in runs]

    def run_from(self, variant: onnx.ModelProto, start: int, threads: int) -> list[list[np.ndarray]]:
        """Outputs of `variant` on every feed, computed from the node at `start` on."""
        fed = [{t: v for t, v in vals.items() if self.position[t] < start} for vals in self.values]
        cut = cut_model(variant, fed[0])
        sess = session(cut, threads, "all")
        names = [i.name for i in sess.get_inputs()]
        out = []
        for feed, vals in zip(self.feeds, fed, strict=True):
            both = {**feed, **vals}
            out.append(sess.run(None, {k: both[k] for k in names}))
        return out


def _shared_tensors(q: Quantizer, variant: onnx.ModelProto) -> dict[str, int]:
    """Tensors of `variant` a later-starting variant may take from its run, with their node positions:
    every original float tensor not made by a DequantizeLinear, and every activation's uint8 Q output."""
    idx = q.index
    made_by = {o: n.op_type for n in variant.graph.node for o in n.output}
    gemm = {u.output for u in idx.units.values() if u.kind in ("gemm", "matmul")}
    out: dict[str, int] = {}
    for t, j in idx.producer.items():
        if not idx.is_float(t) or t in idx.outputs or t in gemm:
            continue
        if made_by.get(t) not in (None, "DequantizeLinear"):
            out[t] = j
        q_name = q.q_output_name(t)
        if q_name is not None and made_by.get(q_name) == "QuantizeLinear":
            out[q_name] = j
    return out


def node_sensitivity(model: onnx.ModelProto, spec: QuantSpec, feeds: Feeds, nodes: Iterable[str] | None = None,
                     *, modes: Sequence[str] = MODES, threads: int = 1, quantizer: Quantizer | None = None,
                     reference: Sequence[Sequence[np.ndarray]] | None = None) -> SensitivityReport:
    """Sensitivity of `nodes` (default: every quantisable node) of the float `model` on `feeds` (a small
    ranking subset: a few samples), one ONNX Runtime session per variant at `threads` threads."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown sensitivity mode {unknown[0]!r} (one of {', '.join(MODES)})")
    q = quantizer or Quantizer(model, spec)
    idx = q.index
    names = list(q.units) if nodes is None else list(nodes)
    for name in names:
        if name not in idx.units:
            q.build([name])  # raises the one-line error naming it
    ref = reference if reference is not None else run_model(model, feeds, threads)
    all_int8 = q.build(None)
    everything = variant_nmse(all_int8, feeds, ref, threads)
    prefixes = {"only": _Prefix(model, _shared_tensors(q, model), feeds, threads) if "only" in modes else None,
                "all_but": _Prefix(all_int8, _shared_tensors(q, all_int8), feeds, threads)
                if "all_but" in modes else None}
    results = []
    for name in names:
        start = idx.units[name].index
        scores: dict[str, float] = {}
        for mode in modes:
            chosen = [name] if mode == "only" else [n for n in q.units if n != name]
            prefix = prefixes[mode]
            assert prefix is not None
            e = output_nmse(ref, prefix.run_from(q.build(chosen), start, threads))
            scores[f"{mode}_nmse"], scores[f"{mode}_sqnr_db"] = e, db_of(e)
        results.append(NodeSensitivity(name, **scores))
    return SensitivityReport(everything, db_of(everything), tuple(results))
