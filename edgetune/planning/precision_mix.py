"""Which int8 nodes to give back to float because int8 is *slower* for them on this CPU and backend,
decided by measuring the whole model both ways (issue 12: precision by measured speed, boundaries counted).

Why: whether int8 pays depends on the kind of layer, the backend and the CPU. On one Xeon with AMX, ONNX
Runtime's int8 MobileNet V2 is ~3x slower than its fp32 one (its int8 depthwise kernels), while OpenVINO's
int8 convolutions are up to 5x faster than fp32; on an AVX2 CPU the order differs again. Every tool users
have decides the float layers by accuracy alone. Here the accuracy search first fixes the nodes that *may*
be int8 within the budget; then, per class of layers (depthwise convolutions, pointwise ones, k x k ones,
GEMMs, element-wise adds, ...), the model with that class back in float is timed against the current one,
side by side in one alternating run. Measuring the whole model, not the layers alone, counts what a layer
table cannot: the Q/DQ boundaries each change adds or removes, and the fusions the backend then makes or
loses. A class goes back to float only when that is measurably faster (beyond the noise margin); the
result is evaluated on the evaluation split like every other configuration, so the budget stays measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.measure.timing import time_alternating

GAIN_MARGIN = 0.03  # a class goes back to float only when the model is at least this much faster for it
MIX_TIME_CAP_S = 1.5  # per side-by-side comparison


@dataclass(frozen=True)
class Reverted:
    """A class of layers given back to float, with the two whole-model medians that decided it."""

    layer_class: str
    nodes: tuple[str, ...]
    int8_ms: float
    float_ms: float

    def describe(self) -> str:
        return (f"{self.layer_class}: int8 {self.int8_ms:.2f} ms, float {self.float_ms:.2f} ms for the whole "
                f"model ({self.int8_ms / self.float_ms:.2f}x)")


def layer_class(node: Node, graph: Graph) -> str:
    """The class a node's int8 speed is judged by: what decides the kernel a backend picks for it."""
    if node.op == "Conv":
        kernel = node.attr("kernel_shape") or list(graph.shape(node.inputs[1])[2:])
        size = "x".join(str(int(k)) for k in kernel)
        groups = int(node.attr("group", 1))
        if groups > 1:
            return f"depthwise conv {size}" if groups == graph.shape(node.inputs[1])[0] else f"grouped conv {size}"
        return "pointwise conv" if all(int(k) == 1 for k in kernel) else f"conv {size}"
    if node.op in ("Gemm", "MatMul"):
        return "matrix multiply"
    if node.op in ("Add", "Mul"):
        return "element-wise"
    return node.op.lower()


def layer_classes(graph: Graph, nodes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """`nodes` grouped by class, the class with most nodes first."""
    by_name = {n.name: n for n in graph.nodes}
    groups: dict[str, list[str]] = {}
    for name in nodes:
        groups.setdefault(layer_class(by_name[name], graph), []).append(name)
    return {c: tuple(ns) for c, ns in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def revert_slow_classes(graph: Graph, int8: Sequence[str], build: Callable[[Sequence[str]], Callable[[], object]],
                        console: object) -> tuple[tuple[str, ...], list[Reverted]]:
    """Greedy, one class at a time: `build(int8_nodes)` returns a callable that runs the model once with
    those nodes int8. Returns the int8 nodes kept and the classes reverted (with their timings)."""
    current, current_run = tuple(int8), build(int8)
    reverted: list[Reverted] = []
    for cls, members in layer_classes(graph, current).items():
        trial = tuple(n for n in current if n not in set(members))
        if not trial:
            continue  # all of the int8 nodes: that is the float model, measured elsewhere
        trial_run = build(trial)
        ms = _side_by_side(current_run, trial_run)
        console.print(f"  speed mix: {cls} ({len(members)} nodes) int8 {ms[0]:.2f} ms vs float {ms[1]:.2f} ms")
        if ms[1] < ms[0] * (1 - GAIN_MARGIN):
            reverted.append(Reverted(cls, members, ms[0], ms[1]))
            current, current_run = trial, trial_run
    return current, reverted


def _side_by_side(a: Callable[[], object], b: Callable[[], object]) -> tuple[float, float]:
    t = time_alternating({"a": a, "b": b}, time_cap_s=MIX_TIME_CAP_S, target_rel_ci=0.02, block=4, settle_s=0.03)
    return float(np.float64(t["a"].median_ms)), float(np.float64(t["b"].median_ms))
