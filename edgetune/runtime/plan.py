"""Plans: which primitive and thread count runs each node, as a JSON file loadable without the search.

A plan records what it was made for (model, graph signature) and on (device fingerprint, library
versions), so that running it somewhere else is refused or flagged instead of silently meaning
something different.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetune.device.cpu import fingerprint, fingerprint_id, library_versions, usable_cores, versions_id
from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph
from edgetune.graph.reference import reference_primitive_name
from edgetune.kernels import registry
from edgetune.kernels.segments import fuses, library_of

# 3: segments may compute in int8 (their "int8" nodes, quantised as the plan's "quantization" says) and at a
# floating-point precision; 2: explicit "segments"; 1 (no segments: runs of fusable nodes merge) still loads
PLAN_FORMAT = 3
READABLE_FORMATS = (1, 2, 3)
SEGMENT_PRECISIONS = ("fp32", "bf16", "f16")
BUILTIN_PLANS = ("reference", "blas")


def graph_signature(graph: Graph) -> str:
    """A hash of node names, ops, shapes and attributes: equal graphs give equal plans' targets."""
    h = hashlib.sha256()
    for n in graph.nodes:
        shapes = [graph.values[o].shape if o in graph.values else None for o in n.outputs]
        h.update(f"{n.name}|{n.op}|{n.inputs}|{shapes}|{sorted((k, str(v)) for k, v in n.attrs.items())}".encode())
        if n.activation is not None:
            h.update(f"{n.activation.op}{sorted(n.activation.params.items())}".encode())
    return h.hexdigest()[:16]


def input_shapes(graph: Graph) -> dict[str, list[int]]:
    """The concrete shape of every graph input (what a plan is made for)."""
    return {i: [int(d) for d in graph.shape(i)] for i in graph.inputs}


def _shapes_text(shapes: dict[str, list[int]]) -> str:
    return ", ".join(f"{k}={'x'.join(str(d) for d in v)}" for k, v in shapes.items())


@dataclass
class NodeChoice:
    primitive: str
    threads: int = 1


@dataclass
class PlanSegment:
    """Nodes compiled together into one kernel of `library` (one ONNX Runtime session, one OpenVINO
    compiled model) at `threads`. A node in no segment runs alone on its primitive (a one-node segment)."""

    library: str
    threads: int
    nodes: list[str]
    precision: str = "fp32"  # what the backend computes the float part in (OpenVINO's hint: bf16, f16)
    int8: list[str] = field(default_factory=list)  # the nodes it computes in int8 (the plan's quantization)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"library": self.library, "threads": self.threads, "nodes": list(self.nodes)}
        if self.precision != "fp32":
            d["precision"] = self.precision
        if self.int8:
            d["int8"] = list(self.int8)
        return d

    @property
    def plain(self) -> bool:
        """Whether the segment computes in fp32 throughout (as every backend compiles a subgraph)."""
        return self.precision == "fp32" and not self.int8


def merged_segments(graph: Graph, choices: dict[str, NodeChoice], exclude: Iterable[str] = ()) -> list[PlanSegment]:
    """The segments of plans that do not name theirs (format 1, or built from per-node choices): each maximal
    run of consecutive nodes (topological order) whose primitives fuse, of one library, at one thread
    count, of two nodes or more. Nodes in `exclude` (already in a named segment) end a run."""
    runs: list[list[str]] = []
    prev: NodeChoice | None = None
    skip = set(exclude)
    for n in graph.nodes:
        c = None if n.name in skip else choices.get(n.name)
        if c is not None and prev is not None and _joins(prev, c) and runs:
            runs[-1].append(n.name)
        else:
            runs.append([n.name])
        prev = c
    return [PlanSegment(str(library_of(choices[r[0]].primitive)), choices[r[0]].threads, r) for r in runs if len(r) > 1]


def _joins(prev: NodeChoice, choice: NodeChoice) -> bool:
    """Whether a node on `choice` continues the segment of the node before it, on `prev`."""
    return (prev.threads == choice.threads and fuses(prev.primitive) and fuses(choice.primitive)
            and library_of(prev.primitive) == library_of(choice.primitive))


def _segments(raw: Any, path: Path) -> list[PlanSegment]:
    """The plan's "segments" list, each entry checked: {"library": str, "threads": int >= 1, "nodes": [str]}."""
    if not isinstance(raw, list):
        raise EdgetuneError(f"{path}: not a valid edgetune plan ('segments' must be a list, got {type(raw).__name__})")
    out = []
    for i, seg in enumerate(raw):
        ok = (isinstance(seg, dict) and isinstance(seg.get("library"), str) and isinstance(seg.get("nodes"), list)
              and all(isinstance(n, str) for n in seg["nodes"]) and len(seg["nodes"]) >= 1)
        t = seg.get("threads", 1) if isinstance(seg, dict) else None
        if not ok or isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise EdgetuneError(f"{path}: segment {i} needs {{\"library\": name, \"threads\": n >= 1, "
                                f"\"nodes\": [names]}}, got {seg!r}"[:300])
        precision, int8 = seg.get("precision", "fp32"), seg.get("int8", [])
        names_ok = isinstance(int8, list) and all(isinstance(n, str) for n in int8)
        if precision not in SEGMENT_PRECISIONS or not names_ok:
            raise EdgetuneError(f"{path}: segment {i}: 'precision' must be one of {', '.join(SEGMENT_PRECISIONS)} and "
                                f"'int8' a list of its node names, got {precision!r}, {int8!r}"[:300])
        out.append(PlanSegment(seg["library"], t, [str(n) for n in seg["nodes"]], precision, [str(n) for n in int8]))
    return out


def _quantization(raw: Any, path: Path) -> dict[str, Any] | None:
    """The plan's "quantization" object (checked in full where a segment compiles with it)."""
    if raw is not None and not isinstance(raw, dict):
        raise EdgetuneError(f"{path}: not a valid edgetune plan ('quantization' must be an object, got "
                            f"{type(raw).__name__})")
    return raw


def _placement(raw: Any, path: Path) -> dict[str, Any] | None:
    """The plan's "placement" object: {"label": str, "cpus": [int >= 0, ...]} (non-empty)."""
    if raw is None:
        return None
    cpus = raw.get("cpus") if isinstance(raw, dict) else None
    if not (isinstance(cpus, list) and cpus and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                                    for c in cpus) and isinstance(raw.get("label", ""), str)):
        raise EdgetuneError(f"{path}: not a valid edgetune plan ('placement' must be {{\"label\": text, \"cpus\": "
                            f"[cpu numbers]}}, got {raw!r})"[:300])
    return {"label": raw.get("label", ""), "cpus": sorted(set(cpus))}


def _choices(nodes: Any, path: Path) -> dict[str, NodeChoice]:
    """The plan's "nodes" object, each entry checked: {"node": {"primitive": str, "threads": int >= 1}}."""
    if not isinstance(nodes, dict):
        raise EdgetuneError(f"{path}: not a valid edgetune plan ('nodes' must be an object of node -> "
                            f"{{primitive, threads}}, got {type(nodes).__name__})")
    out = {}
    for name, v in nodes.items():
        if not isinstance(v, dict) or not isinstance(v.get("primitive"), str):
            raise EdgetuneError(f"{path}: node {name!r} needs {{\"primitive\": name, \"threads\": n}}, got {v!r}"[:300])
        t = v.get("threads", 1)
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise EdgetuneError(f"{path}: node {name!r} has threads {t!r}; threads must be an integer >= 1")
        out[str(name)] = NodeChoice(v["primitive"], t)
    return out


@dataclass
class Plan:
    model: str
    graph_signature: str
    choices: dict[str, NodeChoice]
    tolerance: float | None = None
    device_id: str = ""
    versions_id: str = ""
    device: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # How ONNX Runtime sessions' workers wait: "auto" (ORT's defaults when the plan is one ORT session, else
    # spin only during a run), or "on" / "stop" / "off" as chosen by measurement (kernels.threads).
    ort_spin: str = "auto"
    # Multi-node segments (kernels compiled from several nodes); None (not named, as in format 1): derived
    # from the graph by `merged_segments` when the plan is checked against it or compiled.
    segments: list[PlanSegment] | None = None
    # How the int8 nodes of segments are quantised (edgetune.quant's spec as JSON: per-tensor ranges); None when
    # no segment computes in int8.
    quantization: dict[str, Any] | None = None
    # The cpus the plan runs on where a CPU has core clusters and a measurement chose some ({"label": "4x
    # Cortex-A76", "cpus": [4, 5, 6, 7]}, device.placement); None: wherever the OS schedules it. An optional key
    # of format 3: it changes where the plan runs, never what it computes.
    placement: dict[str, Any] | None = None

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def builtin(cls, name: str, graph: Graph, threads: int = 1) -> Plan:
        """The reference plan (every node on the NumPy reference kernels) or the BLAS fp32 baseline
        (every Conv as im2col + OpenBLAS sgemm in NCHW, Gemm/MatMul through numpy, the rest reference)."""
        if name not in BUILTIN_PLANS:
            raise EdgetuneError(f"unknown built-in plan {name!r} (built-ins: {', '.join(BUILTIN_PLANS)})")
        choices = {}
        for n in graph.nodes:
            prim = reference_primitive_name(n.op)
            if name == "blas":
                if n.op == "Conv":
                    prim = "conv.im2col.numpy"
                elif n.op in ("Gemm", "MatMul"):
                    prim = "gemm.numpy"
            choices[n.name] = NodeChoice(prim, threads)
        return cls.for_graph(graph, choices, meta={"builtin": name})

    @classmethod
    def for_graph(cls, graph: Graph, choices: dict[str, NodeChoice], segments: list[PlanSegment] | None = None,
                  **kw: Any) -> Plan:
        """A plan for `graph` on this device; `meta` records the concrete input shapes it was made for.
        `segments` None: the merged runs of fusable nodes (`merged_segments`), derived when the plan is checked
        against the graph or compiled (so that choices may still change until then)."""
        kw["meta"] = {**kw.get("meta", {}), "input_shapes": input_shapes(graph)}
        return cls(
            segments=segments,
            model=graph.name, graph_signature=graph_signature(graph), choices=choices,
            device_id=fingerprint_id(), versions_id=versions_id(), device=fingerprint(),
            versions=library_versions(), **kw,
        )

    # ---- properties -----------------------------------------------------------------------
    @property
    def precisions(self) -> set[str]:
        out = {p for s in self.segments or [] for p in ([s.precision] + (["int8"] if s.int8 else []))} - {"fp32"}
        for c in self.choices.values():
            try:
                out.add(registry.get(c.primitive).precision)
            except KeyError:
                pass
        return out

    def effective_tolerance(self) -> float:
        """The relative output error this plan may show against the reference (declared or derived
        from the lowest precision it uses; errors accumulate across layers, hence the margin)."""
        if self.tolerance is not None:
            return self.tolerance
        p = self.precisions
        if "int8" in p:
            return 0.15
        if "bf16" in p or "f16" in p:
            return 5e-2
        if "fp16w" in p:
            return 1e-2
        return 1e-3

    def hash(self) -> str:
        body = json.dumps({k: [c.primitive, c.threads] for k, c in sorted(self.choices.items())})
        if self.segments is not None:
            body += json.dumps([s.to_dict() for s in self.segments])
        if self.ort_spin != "auto":
            body += f"|ort_spin={self.ort_spin}"
        if self.quantization is not None:
            body += json.dumps(self.quantization, sort_keys=True)
        if self.placement is not None:
            body += f"|cpus={self.placement['cpus']}"
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "edgetune_plan": PLAN_FORMAT,
            "model": self.model,
            "graph_signature": self.graph_signature,
            "tolerance": self.tolerance,
            "device_id": self.device_id,
            "versions_id": self.versions_id,
            "device": self.device,
            "versions": self.versions,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "meta": self.meta,
            "ort_spin": self.ort_spin,
            "nodes": {k: {"primitive": c.primitive, "threads": c.threads} for k, c in self.choices.items()},
            **({"segments": [s.to_dict() for s in self.segments]} if self.segments is not None else {}),
            **({"quantization": self.quantization} if self.quantization is not None else {}),
            **({"placement": self.placement} if self.placement is not None else {}),
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, default=str))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        path = Path(path)
        if path.is_dir():
            raise EdgetuneError(f"{path}: is a directory, expected a plan .json file")
        if not path.is_file():
            raise EdgetuneError(f"plan file not found: {path}")
        try:
            d = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise EdgetuneError(f"{path}: not a valid edgetune plan (not JSON: {e})") from None
        if not isinstance(d, dict) or "edgetune_plan" not in d:
            raise EdgetuneError(f"{path}: not a valid edgetune plan (missing 'edgetune_plan': {PLAN_FORMAT})")
        if d["edgetune_plan"] not in READABLE_FORMATS:
            raise EdgetuneError(f"{path}: plan format {d['edgetune_plan']!r} is not one this edgetune reads "
                                f"({', '.join(map(str, READABLE_FORMATS))}); tune again with this version")
        choices = _choices(d.get("nodes"), path)
        segments = _segments(d["segments"], path) if "segments" in d else None
        ort_spin = d.get("ort_spin", "auto")
        if ort_spin not in ("auto", "on", "stop", "off"):
            raise EdgetuneError(f"{path}: not a valid edgetune plan (ort_spin {ort_spin!r} is not one of auto, "
                                "on, stop, off)")
        return cls(
            model=d.get("model", ""), graph_signature=d.get("graph_signature", ""), choices=choices,
            tolerance=d.get("tolerance"), device_id=d.get("device_id", ""), versions_id=d.get("versions_id", ""),
            device=d.get("device", {}), versions=d.get("versions", {}), meta=d.get("meta", {}), ort_spin=ort_spin,
            segments=segments, quantization=_quantization(d.get("quantization"), path),
            placement=_placement(d.get("placement"), path),
        )

    def check_graph(self, graph: Graph, source: str = "plan") -> None:
        """Refuse a plan made for another model (different graph), another input shape, or missing nodes."""
        made_for, now = self.meta.get("input_shapes"), input_shapes(graph)
        if made_for and self.model == graph.name and made_for != now:
            raise EdgetuneError(
                f"{source} was made for input shape {_shapes_text(made_for)} of {self.model!r}, not "
                f"{_shapes_text(now)}; tune again with --input-shape for this shape"
            )
        if self.graph_signature and self.graph_signature != graph_signature(graph):
            raise EdgetuneError(
                f"{source} was made for model {self.model!r} (graph {self.graph_signature}), "
                f"not for {graph.name!r} (graph {graph_signature(graph)})"
            )
        missing = [n.name for n in graph.nodes if n.name not in self.choices]
        if missing:
            raise EdgetuneError(f"{source} has no choice for {len(missing)} node(s): {', '.join(missing[:5])}")
        if self.segments is None:  # format 1 on disk: merge along this graph's order, as format 1 ran
            self.segments = merged_segments(graph, self.choices)
        self.check_segments(graph, source)

    def check_segments(self, graph: Graph, source: str = "plan") -> None:
        """Every segment names known nodes, each at most once, whose choices are on the segment's library
        at its thread count; the library is installed."""
        seen: set[str] = set()
        for i, seg in enumerate(self.segments or []):
            unknown = [n for n in seg.nodes if n not in self.choices]
            twice = [n for n in seg.nodes if n in seen]
            if unknown or twice:
                raise EdgetuneError(f"{source}: segment {i} ({seg.library}) names "
                                    + (f"unknown node(s) {unknown[:3]}" if unknown else f"node(s) {twice[:3]} twice"))
            seen.update(seg.nodes)
            stray = [n for n in seg.int8 if n not in seg.nodes]
            if stray:
                raise EdgetuneError(f"{source}: segment {i} ({seg.library}) lists int8 node(s) {stray[:3]} it does not "
                                    "contain")
            if seg.int8 and self.quantization is None:
                raise EdgetuneError(f"{source}: segment {i} ({seg.library}) has int8 nodes but the plan has no "
                                    "'quantization'")
            if seg.library in registry.unavailable():
                raise EdgetuneError(f"{source}: segment {i} runs on {seg.library}, which is not usable here "
                                    f"({registry.unavailable()[seg.library]})")
            for n in seg.nodes:
                c = self.choices[n]
                if library_of(c.primitive) != seg.library or c.threads != seg.threads:
                    raise EdgetuneError(f"{source}: node {n} is in segment {i} ({seg.library} at {seg.threads} "
                                        f"threads) but chooses {c.primitive} at {c.threads} threads")

    def check_environment(self, source: str = "plan") -> list[str]:
        """Warnings when the plan was tuned on another device or other library versions."""
        warn = []
        if self.device_id and self.device_id != fingerprint_id():
            warn.append(f"{source} was tuned on another device ({self.device.get('cpu', self.device_id)})")
        if self.versions_id and self.versions_id != versions_id():
            warn.append(f"{source} was tuned with other library versions ({self.versions})")
        return warn


def batch_of(graph: Graph) -> int:
    """The batch the model runs at: the first dim of its first input (1 for a model without inputs)."""
    shape = graph.shape(graph.inputs[0]) if graph.inputs else ()
    return int(shape[0]) if len(shape) >= 2 else 1


def resolve_plan(spec: str, graph: Graph, threads: int | None, allow_foreign: bool = False) -> Plan:
    """A built-in plan by name (at `threads`, default all usable cores) or a plan file checked against the
    graph and this machine (`allow_foreign` runs one tuned on another device or library versions)."""
    if spec in BUILTIN_PLANS:
        return Plan.builtin(spec, graph, threads or usable_cores())
    plan = Plan.load(spec)
    plan.check_graph(graph, source=spec)
    problems = plan.check_environment(source=spec)
    if problems and not allow_foreign:
        raise EdgetuneError(f"{problems[0]}; re-tune, or pass --allow-foreign-plan to run it anyway")
    return plan
