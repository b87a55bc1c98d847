"""Segment candidates: block boundaries, intervals, content keys."""

from __future__ import annotations

import pytest

from edgetune.kernels.segments import segment_signature
from edgetune.measure.db import node_signature
from edgetune.measure.segment_candidates import (
    blocks,
    interval_candidates,
    segment_candidates,
    single_tensor_cuts,
)
from tests.test_plan_segments import _graph


@pytest.fixture
def two_residuals():
    """Two identical residual blocks r(x) = x + Sigmoid(Relu(x)), then a Relu."""
    return _graph([("a1", "Relu", ["x"]), ("b1", "Sigmoid", ["a1"]), ("c1", "Add", ["x", "b1"]),
                   ("a2", "Relu", ["c1"]), ("b2", "Sigmoid", ["a2"]), ("c2", "Add", ["c1", "b2"]),
                   ("d", "Relu", ["c2"])])


def test_cuts_are_where_one_tensor_crosses(two_residuals) -> None:
    # inside a block two values cross (x or c1, and the branch); between blocks only the block's output,
    # made by a merge (Add) and read by two nodes
    assert single_tensor_cuts(two_residuals) == [3, 6]
    assert blocks(two_residuals) == [(0, 3), (3, 6), (6, 7)]


def test_a_chain_is_one_block() -> None:
    chain = _graph([("a", "Relu", ["x"]), ("b", "Sigmoid", ["a"]), ("c", "Relu", ["b"])])
    assert single_tensor_cuts(chain) == [] and blocks(chain) == [(0, 3)]


def test_intervals_cover_whole_graph_blocks_and_runs(two_residuals) -> None:
    got = interval_candidates(two_residuals, [True] * 7)
    assert got[(0, 7)] == "whole graph"
    assert {k for k, v in got.items() if v == "blocks"} == {(0, 3), (3, 6), (0, 6), (3, 7)}
    assert all(b - a >= 2 for a, b in got)


def test_an_ineligible_node_splits_the_candidates(two_residuals) -> None:
    ok = [True] * 7
    ok[4] = False  # b2: the backend cannot run it
    got = interval_candidates(two_residuals, ok)
    assert (0, 7) not in got and all(not (a <= 4 < b) for a, b in got)
    assert got[(0, 4)] == "run" and got[(5, 7)] == "run"


def test_candidates_per_library_and_thread_count(two_residuals) -> None:
    cands = segment_candidates(two_residuals, ["onnxruntime", "other"], [2, 1], lambda lib, n: lib == "onnxruntime")
    assert {c.library for c in cands} == {"onnxruntime"} and {c.threads for c in cands} == {1, 2}
    whole = [c for c in cands if c.kind == "whole graph"]
    assert len(whole) == 2 and whole[0].nodes == tuple(n.name for n in two_residuals.nodes)


def test_identical_blocks_share_a_content_key(two_residuals) -> None:
    g = two_residuals
    sigs = {n.name: node_signature(n, g) for n in g.nodes}
    first, second = g.nodes[0:3], g.nodes[3:6]
    assert segment_signature(g, first, sigs) == segment_signature(g, second, sigs)
    assert segment_signature(g, g.nodes[0:2], sigs) != segment_signature(g, g.nodes[1:3], sigs)


def test_mobilenet_v2_has_its_inverted_residual_blocks() -> None:
    from edgetune.user_model import load_model

    g = load_model("mobilenet_v2")
    bl = blocks(g)
    residual = sum(n.op == "Add" for n in g.nodes)
    assert residual == 10 and residual < len(bl) <= 2 * residual + 2  # each residual block, chains between
    assert all(g.nodes[b - 1].op == "Add" for a, b in bl[1:-1] if b - a == 4)
