"""Precision by measured speed (planning/precision_mix.py): which class each layer is judged in, and the
greedy that gives a class back to float only when the whole model measures faster without its int8."""

import time

import numpy as np
from onnx import helper

from edgetune.graph import load_graph
from edgetune.planning.precision_mix import GAIN_MARGIN, layer_classes, revert_slow_classes
from tests.graph_cases import mk, vi

RNG = np.random.default_rng(3)


def _w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _graph():
    """conv 3x3 -> depthwise 3x3 -> pointwise -> depthwise 3x3 -> pointwise -> add -> pool -> flatten -> gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "dw1"], ["b"], name="dw1", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "pw1"], ["c"], name="pw1"),
        helper.make_node("Conv", ["c", "dw2"], ["d"], name="dw2", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["d", "pw2"], ["e"], name="pw2"),
        helper.make_node("Add", ["c", "e"], ["f"], name="add"),
        helper.make_node("GlobalAveragePool", ["f"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["h"], name="flat"),
        helper.make_node("Gemm", ["h", "fc", "fcb"], ["y"], name="fc", transB=1),
    ]
    inits = {"w0": _w(8, 3, 3, 3), "dw1": _w(8, 1, 3, 3), "pw1": _w(8, 8, 1, 1), "dw2": _w(8, 1, 3, 3),
             "pw2": _w(8, 8, 1, 1), "fc": _w(4, 8), "fcb": _w(4)}
    return load_graph(mk(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4])], inits))


def test_layers_are_classed_by_what_picks_their_kernel():
    classes = layer_classes(_graph(), ["stem", "dw1", "pw1", "dw2", "pw2", "add", "pool", "fc"])
    assert classes == {"depthwise conv 3x3": ("dw1", "dw2"), "pointwise conv": ("pw1", "pw2"),
                       "conv 3x3": ("stem",), "element-wise": ("add",), "globalaveragepool": ("pool",),
                       "matrix multiply": ("fc",)}
    assert list(classes)[:2] == ["depthwise conv 3x3", "pointwise conv"]  # most nodes first


class _Console:
    def __init__(self):
        self.lines = []

    def print(self, *args, **_):
        self.lines.append(" ".join(map(str, args)))


def test_only_the_class_whose_int8_is_slower_goes_back_to_float():
    """A stand-in backend where each int8 depthwise layer costs 4 ms and each float one 1 ms (int8 slower,
    as ONNX Runtime's int8 depthwise on some CPUs), while int8 pointwise layers cost 1 ms and float ones 2 ms:
    only the depthwise class is reverted, and the timings that decided it are kept."""
    graph = _graph()
    cost = {"dw1": (4, 1), "dw2": (4, 1), "pw1": (1, 2), "pw2": (1, 2), "stem": (1, 1.2)}

    def build(int8):
        ms = sum(c[0] if n in int8 else c[1] for n, c in cost.items())
        return lambda: time.sleep(ms / 1000)

    console = _Console()
    kept, reverted = revert_slow_classes(graph, list(cost), build, console)
    assert set(kept) == {"pw1", "pw2", "stem"}
    assert [r.layer_class for r in reverted] == ["depthwise conv 3x3"] and reverted[0].nodes == ("dw1", "dw2")
    r = reverted[0]
    assert r.float_ms < r.int8_ms * (1 - GAIN_MARGIN) and "depthwise conv 3x3: int8" in r.describe()
    assert any("pointwise conv" in line for line in console.lines)  # every class tried is shown


def test_a_class_that_is_all_the_int8_nodes_is_left_to_the_float_model():
    """Reverting the only class would give the float model, which the search measures on its own."""
    called = []

    def build(int8):
        called.append(tuple(int8))
        return lambda: None

    kept, reverted = revert_slow_classes(_graph(), ["dw1", "dw2"], build, _Console())
    assert kept == ("dw1", "dw2") and reverted == [] and called == [("dw1", "dw2")]
