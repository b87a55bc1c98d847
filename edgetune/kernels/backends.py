"""Which nodes some installed backend can run, checked once at load.

Why: the importer accepts every standard op, but a model is only tunable if every node has at least one
primitive. Ops with a kernel in edgetune's reference executor or constant evaluator always do; any
other (generic) node needs a backend library that runs it: ONNX Runtime today (`op.ort`), OpenVINO
when installed. A model with nodes no backend runs is refused in one message listing them all.
"""

from __future__ import annotations

from edgetune.errors import UnsupportedModelError
from edgetune.graph.constant_ops import CONSTANT_OPS
from edgetune.graph.ir import Graph, Node
from edgetune.graph.reference import REFERENCE_OPS


def _ort_runs(node: Node, graph: Graph) -> str | None:
    """None when ONNX Runtime builds a session for the node alone, else its first error line."""
    from edgetune.kernels.libraries.onnxruntime.prims import node_model, session  # loads onnxruntime on demand

    try:
        session(node_model(graph, node, node.activation), threads=1, optimization="basic")
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return None


def generic_nodes(graph: Graph) -> list[Node]:
    """Nodes edgetune has no kernel of its own for (they need a backend library)."""
    return [n for n in graph.nodes if n.op not in REFERENCE_OPS and n.op not in CONSTANT_OPS]


def unrunnable(graph: Graph) -> dict[str, list[str]]:
    """Op type -> names of its nodes that no installed backend runs."""
    bad: dict[str, list[str]] = {}
    for node in generic_nodes(graph):
        if _ort_runs(node, graph) is not None:
            bad.setdefault(node.op, []).append(node.name)
    return bad


def check_runnable(graph: Graph, source: str) -> None:
    """Refuse a model with nodes no backend runs, every such op and node in one line."""
    bad = unrunnable(graph)
    if bad:
        listed = ", ".join(f"{op} ({', '.join(names)})" for op, names in bad.items())
        raise UnsupportedModelError(f"no installed backend runs these ops of {source}: {listed} "
                                    f"(backends: onnxruntime)")
