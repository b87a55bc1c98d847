"""Segments a search proposes, measured whole on demand (issue 11, item 3).

Why: the profiler measures a fixed family of candidate segments (the whole graph, natural blocks, maximal
runs). A plan the search likes may merge other runs of consecutive nodes onto one library, which the
executor then compiles as one segment whose cost the model can only guess from its nodes and their
pairwise fusion gains: that guess is what made predictions 13-54 % off. So after the plans of a loop round
are measured, every such run that is not measured whole yet is remembered in the ProfileDB
(`measure.profiler.propose_segments`), measured whole like any other segment (in the isolated worker), and
offered by the next design space as a segment option: the next search prices it as measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgetune.device.cpu import fingerprint_id, versions_id
from edgetune.graph.ir import Graph
from edgetune.measure.db import ProfileDB
from edgetune.measure.profiler import Profiler, propose_segments
from edgetune.planning.design_space import choice_segments
from edgetune.search import DesignSpace


def merged_runs(space: DesignSpace, cands: Sequence[Any]) -> list[tuple[str, int, list[str]]]:
    """(library, threads, nodes) of every segment the compiled candidates run that their choice did not
    take as a segment measured whole."""
    out = []
    for c in cands:
        if c.executor is None or c.plan is not None or c.executor.plan.segments is None:
            continue  # not compiled, or a plan made outside the design space (a precision configuration)
        whole = {tuple(s.nodes) for s in choice_segments(space, c.choice)}
        out += [(s.library, s.threads, list(s.nodes)) for s in c.executor.plan.segments
                if tuple(s.nodes) not in whole and len(s.nodes) > 1]
    return out


def measure_proposed(graph: Graph, db: ProfileDB, space: DesignSpace, cands: Sequence[Any], threads: list[int],
                     time_cap_s: float, console: Any) -> int:
    """Remember the candidates' merged runs not measured whole and measure them (only what the DB lacks);
    returns how many runs were new."""
    if (db.device_id, db.versions_id) != (fingerprint_id(), versions_id()):
        return 0  # the DB holds another device's measurements (a fleet's boards): this CPU must not add to it
    new = propose_segments(graph, db, merged_runs(space, cands))
    if new:
        console.print(f"measuring {new} segment{'s' if new > 1 else ''} the search put together, each whole...")
        prof = Profiler(graph, db, threads, time_cap_s=time_cap_s)
        try:
            prof.run()
        finally:
            prof.close()
    return new
