"""The design space the strategies search: per node its options, per edge the conversion costs.

Pure data, built by others from the graph and the ProfileDB, so that every strategy can be tested on
synthetic spaces. Treat a space as immutable once built: the cost model is derived from it lazily.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.search.cost_model import CostModel


@dataclass
class Option:
    """One way to run one node (a primitive at a thread count, a precision, a fused session...).

    `key` names it for the plan (e.g. "conv.im2col.numpy@2"); `time_ms` is its measured time;
    `weight_bytes` the parameters it keeps resident (packed/quantised); `workspace_bytes` its scratch
    memory while it runs. Formats are informative here: the edge cost matrices already price them.
    `group`: options of several nodes sharing a group id run all or nothing (a segment measured whole:
    a plan takes it on every member node or on none; `DesignSpace.repair` enforces it).
    """

    key: str
    time_ms: float
    weight_bytes: int = 0
    workspace_bytes: int = 0
    out_format: str = "NCHW"
    in_formats: list[str] = field(default_factory=list)
    precision: str = "fp32"
    meta: dict[str, Any] = field(default_factory=dict)
    group: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Option:
        """Build from a plain dict (JSON); unknown keys are an error so typos do not pass silently."""
        try:
            return cls(**dict(d))
        except TypeError as exc:
            raise EdgetuneError(f"bad option {dict(d)!r}: {exc}") from None


ConversionFn = Callable[[Option, Option], float]


@dataclass
class DesignSpace:
    """Nodes in topological order, their options, and the DAG's edges with transition costs.

    edges[e] = (producer index, consumer index) with producer < consumer; a node may have several
    predecessors (Add, Concat) and successors. The first edge listed into a node is its "main"
    predecessor (used by Q-learning's state). edge_cost[e][a][b] is the ms paid on edge e when the
    producer runs option a and the consumer option b: 0 when formats match, positive for a converter,
    negative for a gain (e.g. both nodes fused in one library session). A plan's latency is
    sum of option times + sum of edge costs (+ dispatch, see `CostModel`).
    """

    nodes: list[str]
    options: list[list[Option]]
    edges: list[tuple[int, int]]
    edge_cost: list[np.ndarray]
    dispatch_ms_per_step: float = 0.0
    _cost_model: CostModel | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.nodes)
        if n == 0:
            raise EdgetuneError("design space has no nodes")
        if len(self.options) != n:
            raise EdgetuneError(f"design space has {n} nodes but {len(self.options)} option lists")
        for name, opts in zip(self.nodes, self.options, strict=True):
            if not opts:
                raise EdgetuneError(f"node {name!r} has no option that can run it")
        if len(self.edge_cost) != len(self.edges):
            raise EdgetuneError(f"{len(self.edges)} edges but {len(self.edge_cost)} cost matrices")
        self.edges = [(int(i), int(j)) for i, j in self.edges]
        mats = []
        for (i, j), m in zip(self.edges, self.edge_cost, strict=True):
            if not (0 <= i < j < n):
                raise EdgetuneError(f"edge ({i}, {j}) is not producer < consumer within {n} nodes")
            arr = np.asarray(m, dtype=np.float64)
            want = (len(self.options[i]), len(self.options[j]))
            if arr.shape != want:
                raise EdgetuneError(f"edge {self.nodes[i]}->{self.nodes[j]}: cost matrix {arr.shape}, want {want}")
            mats.append(arr)
        self.edge_cost = mats
        self._groups: dict[int, list[tuple[int, int]]] = {}
        for i, opts in enumerate(self.options):
            for a, o in enumerate(opts):
                if o.group is not None:
                    self._groups.setdefault(o.group, []).append((i, a))
        self._alone = [min((a for a, o in enumerate(opts) if o.group is None), key=lambda a: opts[a].time_ms,
                           default=0) for opts in self.options]

    def repair(self, choice: Sequence[int]) -> list[int]:
        """The plan with every group either whole or dropped: members of a group some other member left
        take their fastest option outside any group. The identity on a feasible plan."""
        out = [int(c) for c in choice]
        for members in self._groups.values():
            taken = [i for i, a in members if out[i] == a]
            if 0 < len(taken) < len(members):
                for i in taken:
                    out[i] = self._alone[i]
        return out

    # ---- costs -------------------------------------------------------------------------------

    @property
    def cost_model(self) -> CostModel:
        """The latency model of this space (built once; the space is treated as immutable)."""
        if self._cost_model is None:
            times = [[o.time_ms for o in opts] for opts in self.options]
            self._cost_model = CostModel(times, self.edges, self.edge_cost, self.dispatch_ms_per_step)
        return self._cost_model

    def plan_cost(self, choice: Sequence[int]) -> float:
        """Predicted latency (ms) of the plan; delegates to the cost model."""
        self.check_choice(choice)
        return self.cost_model.predict(choice)

    def plan_memory(self, choice: Sequence[int]) -> int:
        """Bytes = sum of the chosen options' weight bytes + the largest chosen workspace.

        Workspaces are reused across steps (one runs at a time), weights stay resident. Activation
        memory depends on the schedule and is planned by the runtime, not here.
        """
        self.check_choice(choice)
        weights = sum(self.options[i][c].weight_bytes for i, c in enumerate(choice))
        return int(weights + max(self.options[i][c].workspace_bytes for i, c in enumerate(choice)))

    def weight_table(self) -> list[np.ndarray]:
        """Per node, the weight bytes of each option (int64)."""
        return [np.array([o.weight_bytes for o in opts], dtype=np.int64) for opts in self.options]

    def workspace_table(self) -> list[np.ndarray]:
        """Per node, the workspace bytes of each option (int64)."""
        return [np.array([o.workspace_bytes for o in opts], dtype=np.int64) for opts in self.options]

    def check_choice(self, choice: Sequence[int]) -> None:
        """Raise EdgetuneError unless `choice` picks one valid option index per node."""
        if len(choice) != len(self.nodes):
            raise EdgetuneError(f"plan has {len(choice)} choices for {len(self.nodes)} nodes")
        for i, c in enumerate(choice):
            if not 0 <= int(c) < len(self.options[i]):
                raise EdgetuneError(f"node {self.nodes[i]!r}: option {c} out of range 0..{len(self.options[i]) - 1}")

    # ---- shape -------------------------------------------------------------------------------

    @property
    def n_options(self) -> list[int]:
        """Number of options per node."""
        return [len(o) for o in self.options]

    def size(self) -> float:
        """Number of distinct plans (product of option counts), as a float (may be inf)."""
        return float(math.prod(self.n_options))

    def log10_size(self) -> float:
        """log10 of `size()`, finite even for huge spaces."""
        return float(sum(math.log10(k) for k in self.n_options))

    def is_chain(self) -> bool:
        """True when the edges are exactly (0,1), (1,2), ... (a chain: dynamic programming is exact)."""
        return sorted(self.edges) == [(i, i + 1) for i in range(len(self.nodes) - 1)]

    def predecessors(self, j: int) -> list[tuple[int, int]]:
        """(edge index, producer) for every edge into node j, in edge-list order (first = main)."""
        return [(e, i) for e, (i, jj) in enumerate(self.edges) if jj == j]

    def keys(self, choice: Sequence[int]) -> dict[str, str]:
        """node name -> chosen option key, for building a Plan."""
        self.check_choice(choice)
        return {name: self.options[i][c].key for i, (name, c) in enumerate(zip(self.nodes, choice, strict=True))}

    # ---- building and (de)serialising ----------------------------------------------------------

    @classmethod
    def from_dicts(
        cls,
        nodes: Sequence[str],
        options: Mapping[str, Sequence[Option | Mapping[str, Any]]],
        edges: Sequence[tuple[str, str]],
        edge_cost: Mapping[tuple[str, str], Any] | None = None,
        conversion: ConversionFn | None = None,
        dispatch_ms_per_step: float = 0.0,
    ) -> DesignSpace:
        """Build from names: `options[node]`, `edges` as (producer, consumer) names.

        An edge's matrix comes from `edge_cost[(producer, consumer)]` when given, else from
        `conversion(producer_option, consumer_option)` for every pair, else is all zeros.
        """
        index = {n: k for k, n in enumerate(nodes)}
        opts: list[list[Option]] = []
        for n in nodes:
            if n not in options:
                raise EdgetuneError(f"node {n!r} has no options entry")
            opts.append([o if isinstance(o, Option) else Option.from_dict(o) for o in options[n]])
        idx_edges: list[tuple[int, int]] = []
        mats: list[np.ndarray] = []
        for src, dst in edges:
            if src not in index or dst not in index:
                raise EdgetuneError(f"edge {src}->{dst} names an unknown node")
            i, j = index[src], index[dst]
            idx_edges.append((i, j))
            if edge_cost is not None and (src, dst) in edge_cost:
                mats.append(np.asarray(edge_cost[(src, dst)], dtype=np.float64))
            elif conversion is not None:
                mats.append(np.array([[conversion(a, b) for b in opts[j]] for a in opts[i]], dtype=np.float64))
            else:
                mats.append(np.zeros((len(opts[i]), len(opts[j]))))
        return cls(list(nodes), opts, idx_edges, mats, dispatch_ms_per_step)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (version 1)."""
        return {
            "version": 1,
            "nodes": list(self.nodes),
            "options": [[asdict(o) for o in opts] for opts in self.options],
            "edges": [list(e) for e in self.edges],
            "edge_cost": [m.tolist() for m in self.edge_cost],
            "dispatch_ms_per_step": self.dispatch_ms_per_step,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DesignSpace:
        """Inverse of `to_dict`."""
        if d.get("version") != 1:
            raise EdgetuneError(f"unsupported design space version {d.get('version')!r}")
        try:
            return cls(
                nodes=list(d["nodes"]),
                options=[[Option.from_dict(o) for o in opts] for opts in d["options"]],
                edges=[(int(e[0]), int(e[1])) for e in d["edges"]],
                edge_cost=[np.asarray(m, dtype=np.float64) for m in d["edge_cost"]],
                dispatch_ms_per_step=float(d.get("dispatch_ms_per_step", 0.0)),
            )
        except KeyError as exc:
            raise EdgetuneError(f"design space JSON lacks {exc}") from None

    def to_json(self) -> str:
        """JSON text of `to_dict`."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> DesignSpace:
        """Inverse of `to_json`."""
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise EdgetuneError(f"design space is not valid JSON: {exc}") from None
