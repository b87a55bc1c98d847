"""The plan executor: compiles Graph + Plan into a flat list of prepared steps and runs them.

Why a compile step: every weight transform, library session and layout converter is prepared once, and
values live in integer slots freed right after their last use (liveness), so the per-inference path is
a tight loop of kernel calls and the peak activation memory is the planned one, not an accident of
Python's garbage collection.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgetune.device.placement import pinned, usable_cpus
from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph, Node
from edgetune.graph.reference import default_feeds, reference_samples, run_graph, stand_in_input
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, Format, Kernel, PrepareContext, Workspace
from edgetune.kernels.int8_calib import stand_in_qparams
from edgetune.kernels.libraries.onnxruntime.spin import SPIN_MODES
from edgetune.kernels.library import ThreadPool
from edgetune.kernels.segments import boundary, segment_kernel
from edgetune.kernels.threads import set_threads
from edgetune.runtime.kernel_memory import measure_kernel_memory, warm_up_pools
from edgetune.runtime.plan import Plan, merged_segments
from edgetune.runtime.quantized import calibrated_graph, segment_variant


@dataclass
class Step:
    """One call of the compiled program: a node's kernel or an edge's converter."""

    kind: str  # "node" or "convert"
    name: str  # node name, or "<value>:<src>-><dst>"
    fn: Callable[..., Any]
    ins: list[int]
    outs: list[int]
    threads: int
    primitive: str
    free_after: list[int] = field(default_factory=list)
    library: str = ""  # the library whose kernel a node step calls (converters: "")


@dataclass
class MemoryReport:
    """Bytes a plan needs.

    weight_bytes / weight_bytes_by_precision: the weights the kernels report holding. workspace_bytes:
    their scratch, with the plan's shared workspace counted once: the scratch kernels keep themselves
    plus `shared_workspace_bytes`, the one arena all kernels' scratch requests share (kernels/base.py
    `Workspace`, sized by the largest request); `largest_workspace_bytes` the largest single kernel's
    scratch (its own plus its shared request).
    resident_bytes: what the prepared plan keeps resident: per kernel its *measured* persistent bytes
    (edgetune.runtime.kernel_memory: packed weights, library sessions and caches, kept buffers; the
    shared workspace excluded), at least its reported weights (a kernel may alias the graph's arrays,
    which RSS differences cannot see); weights + own scratch where a kernel was not measured; plus the
    shared workspace once; plus `startup_bytes`, the one-off per-process start-up of the libraries the
    plan uses when measured in a fresh process.
    peak_transient_bytes: the largest measured extra peak of one kernel call (temporaries) beyond its
    outputs. peak_activation_bytes: the activation arena peak from liveness analysis.
    total_bytes = resident + peak activations + peak transient (an upper bound: the transient peak and
    the arena peak are taken at their worst steps independently). `measured` says every kernel was.
    """

    weight_bytes: int
    weight_bytes_by_precision: dict[str, int]
    workspace_bytes: int
    largest_workspace_bytes: int
    peak_activation_bytes: int
    resident_bytes: int = -1  # -1: not given, weight + workspace
    peak_transient_bytes: int = 0
    startup_bytes: dict[str, int] = field(default_factory=dict)
    measured: bool = False
    shared_workspace_bytes: int = 0  # part of workspace_bytes (the shared arena, once)

    def __post_init__(self) -> None:
        if self.resident_bytes < 0:
            self.resident_bytes = self.weight_bytes + self.workspace_bytes + sum(self.startup_bytes.values())

    @property
    def total_bytes(self) -> int:
        return self.resident_bytes + self.peak_activation_bytes + self.peak_transient_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_bytes": self.weight_bytes,
            "weight_bytes_by_precision": self.weight_bytes_by_precision,
            "workspace_bytes": self.workspace_bytes,
            "largest_workspace_bytes": self.largest_workspace_bytes,
            "shared_workspace_bytes": self.shared_workspace_bytes,
            "resident_bytes": self.resident_bytes,
            "startup_bytes": dict(self.startup_bytes),
            "peak_transient_bytes": self.peak_transient_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "total_bytes": self.total_bytes,
            "measured": self.measured,
        }


def _format_bytes(fmt: Format, shape: tuple[int, ...]) -> int:
    itemsize = {"float32": 4, "float16": 2, "uint8": 1, "int8": 1}.get(fmt.dtype, 4)
    return int(np.prod(shape)) * itemsize


def placement_cpus(plan: Plan) -> list[int] | None:
    """The cpus the plan is placed on, checked against those this process may use (None: not placed)."""
    if plan.placement is None:
        return None
    cpus = list(plan.placement["cpus"])
    missing = sorted(set(cpus) - usable_cpus())
    if missing:
        raise EdgetuneError(f"plan: placed on cpus {cpus} ({plan.placement.get('label', '')}), but this process "
                            f"may not run on cpu {', '.join(map(str, missing))} (usable: {sorted(usable_cpus())})")
    return cpus


class Executor:
    """Graph + Plan -> prepared steps. `run(feeds)` returns the graph outputs as float32 NCHW arrays."""

    def __init__(
        self,
        graph: Graph,
        plan: Plan,
        *,
        samples: dict[str, np.ndarray] | None = None,
        check: bool = True,
        check_input: dict[str, np.ndarray] | None = None,
        fuse: bool = True,
        kernel_memory: dict[str, tuple[int, int]] | None = None,
        measure_memory: bool = False,
    ) -> None:
        """`kernel_memory`: measured (resident, transient) bytes per step name (node name, or
        "first..last" for an ORT segment), e.g. from the ProfileDB; `measure_memory`: measure every
        kernel at compile time instead (edgetune.runtime.kernel_memory; compile takes a few calls more
        per kernel), after paying the start-up of the libraries the plan uses (`startup_bytes`)."""
        plan.check_graph(graph)
        self.graph = graph = calibrated_graph(graph, plan)
        self.plan = plan
        if samples is None and self._needs_samples():
            samples = reference_samples(graph)
            stand_in_qparams(graph, samples)  # the int8 edges' stand-in ranges: from this run, not another
        self.samples = samples or {}
        self.fuse = fuse
        self.ort_spin = "stop"  # resolved in _compile (see resolve_ort_spin)
        self.steps: list[Step] = []
        self.kernels: dict[str, tuple[Kernel, str]] = {}
        self._slots: dict[tuple[str, str], int] = {}
        self._slot_bytes: list[int] = []
        self.kernel_memory: dict[str, tuple[int, int]] = dict(kernel_memory or {})
        self.measure_memory = measure_memory
        self.startup_bytes: dict[str, int] = {}
        # One scratch arena for every kernel of the plan (steps run one after another, never concurrently).
        self.workspace = Workspace()
        self.cpus = placement_cpus(plan)
        with pinned(self.cpus):  # the pools libraries create while compiling inherit the placement
            self._compile()
        self.max_error: float | None = None
        if check:
            self.max_error = self.check_against_reference(check_input)

    # ---- compilation ----------------------------------------------------------------------
    def _needs_samples(self) -> bool:
        return "int8" in self.plan.precisions

    def _slot(self, value: str, fmt: Format) -> int:
        key = (value, fmt.key)
        if key not in self._slots:
            self._slots[key] = len(self._slot_bytes)
            self._slot_bytes.append(_format_bytes(fmt, self.graph.shape(value)))
        return self._slots[key]

    def _converted(self, value: str, have: Format, want: Format) -> int:
        """The slot holding `value` in format `want`, adding converter steps (direct, or via NCHW fp32);
        a format the value already has a slot in was converted (or produced) before and is reused."""
        if (value, want.key) in self._slots:
            return self._slots[(value, want.key)]
        shape = self.graph.shape(value)
        route = registry.converter_route(have, want)
        if route is None:
            raise EdgetuneError(f"no converter from {have} to {want} for value {value!r} {shape}")
        src = self._slots[(value, have.key)]
        for conv in route:
            if conv.supports(shape):
                raise EdgetuneError(f"converter {conv.name} cannot convert value {value!r} {shape}")
            if (value, conv.dst.key) in self._slots:
                src = self._slots[(value, conv.dst.key)]
                continue
            dst = self._slot(value, conv.dst)
            self.steps.append(
                Step("convert", f"{value}:{conv.src}->{conv.dst}", conv.prepare(shape), [src], [dst], 1, conv.name))
            src = dst
        return src

    def _units(self) -> list[list[Node]]:
        """Nodes grouped into what becomes one step, in an order that respects the data flow: each of the
        plan's segments is one unit (`Plan.segments`; derived for plans that do not name theirs), every
        other node is alone. A segment that a path leaves and re-enters (not convex) cannot be one step."""
        if not self.fuse:
            return [[n] for n in self.graph.nodes]
        if self.plan.segments is None:
            self.plan.segments = merged_segments(self.graph, self.plan.choices)
        self.plan.check_segments(self.graph)
        segments = self.plan.segments
        return order_units(self.graph, [seg.nodes for seg in segments])

    def _compile(self) -> None:
        g = self.graph
        current: dict[str, Format] = {}
        for name in g.inputs:
            self._slot(name, FP32)
            current[name] = FP32
        ctx_cache: dict[int, PrepareContext] = {}
        units = self._units()
        segment_of = {frozenset(s.nodes): s for s in self.plan.segments or []}
        resolved = [[_resolve(self.plan.choices[n.name].primitive, n, g) for n in unit] for unit in units]
        self.ort_spin = resolve_ort_spin(self.plan.ort_spin, units, resolved)
        if self.measure_memory:
            self._warm_up(units, resolved)
        for unit, prims in zip(units, resolved, strict=True):
            threads = self.plan.choices[unit[0].name].threads
            set_threads(threads)
            if len(unit) > 1:
                in_values, out_values = boundary(g, unit)
                in_formats, out_formats = [FP32] * len(in_values), [FP32] * len(out_values)
                lib = prims[0].library  # check_segments: every node of a segment is on its library
                seg = segment_of[frozenset(n.name for n in unit)]
                variant = segment_variant(self.plan, seg)
                name, precision = f"{unit[0].name}..{unit[-1].name}", "int8" if seg.int8 else seg.precision
                prim_name = f"{registry.pool_of(lib).name}.segment[{len(unit)}]"
                build = lambda u=unit, t=threads, lb=lib, v=variant: segment_kernel(  # noqa: E731
                    g, u, t, self.ort_spin, lb, v)[0]
            else:
                node, prim = unit[0], prims[0]
                ctx = ctx_cache.setdefault(
                    threads, PrepareContext(g, threads, self.samples, self.ort_spin, self.workspace))
                in_values, in_formats = g.dynamic_inputs(node), prim.input_formats(node, g)
                out_values = node.outputs
                out_formats = [prim.output_format(node, g)] * len(out_values)
                name, prim_name, precision = node.name, prim.name, prim.precision
                build = lambda n=node, p=prim, c=ctx: p.prepare(n, c)  # noqa: E731
            if self.measure_memory:
                build = functools.partial(self._measured_build, name, build, in_values, in_formats)
            kernel = _prepare(build, unit[0])
            self.kernels[name] = (kernel, precision)
            ins = [self._converted(v, current[v], want) for v, want in zip(in_values, in_formats, strict=True)]
            outs = []
            for o, fmt in zip(out_values, out_formats, strict=True):
                outs.append(self._slot(o, fmt))
                current[o] = fmt
            self.steps.append(Step("node", name, kernel, ins, outs, threads, prim_name, library=prims[0].library))
        self._out_slots = [self._converted(o, current[o], FP32) for o in g.outputs]
        self._in_slots = [self._slots[(i, FP32.key)] for i in g.inputs]
        self._plan_liveness()
        self.program = compile_program(self.steps)
        self._inputs = [(name, slot, tuple(g.shape(name)), np.dtype(g.dtype(name)))
                        for name, slot in zip(g.inputs, self._in_slots, strict=True)]
        self._outputs = list(zip(g.outputs, self._out_slots, strict=True))

    def _warm_up(self, units: list[list[Node]], resolved: list[list[Any]]) -> None:
        """Pay (and measure) the per-process start-up of each thread pool the plan uses, at each thread
        count, before any kernel is measured."""
        wanted: dict[int, dict[str, ThreadPool]] = {}
        for unit, prims in zip(units, resolved, strict=True):
            threads = self.plan.choices[unit[0].name].threads
            for p in prims:
                pool = registry.pool_of(p.library)
                wanted.setdefault(threads, {})[pool.name] = pool
        for threads, pools in sorted(wanted.items()):
            for key, b in warm_up_pools(threads, [pools[k] for k in sorted(pools)]).items():
                self.startup_bytes[key] = b

    def _measured_build(self, name: str, build: Callable[[], Any], values: list[str], formats: list[Format]) -> Any:
        """Build a kernel while measuring its resident and transient bytes on stand-in inputs."""
        inputs = [sample_input(self.graph, v, f, self.samples.get(v)) for v, f in zip(values, formats, strict=True)]
        kernel, mem = measure_kernel_memory(build, inputs)
        del inputs
        if mem is not None:
            self.kernel_memory[name] = mem.as_tuple()
        return kernel

    def _plan_liveness(self) -> None:
        """Free each slot after the last step that reads it; compute the activation arena peak."""
        last_use: dict[int, int] = {}
        for i, s in enumerate(self.steps):
            for slot in s.ins:
                last_use[slot] = i
        keep = set(self._out_slots)
        for slot, i in last_use.items():
            if slot not in keep:
                self.steps[i].free_after.append(slot)
        live = {s: self._slot_bytes[s] for s in self._in_slots}
        peak = sum(live.values())
        for s in self.steps:
            for o in s.outs:
                live[o] = self._slot_bytes[o]
            peak = max(peak, sum(live.values()))
            for f in s.free_after:
                live.pop(f, None)
        self.peak_activation_bytes = peak

    # ---- running --------------------------------------------------------------------------
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run_program(self.program, feeds)

    def run_program(self, program: list[Instruction], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run `program` (this plan's, or a stand-in of the same shape such as `stub_program`)."""
        slots: list[Any] = [None] * len(self._slot_bytes)
        for name, slot, shape, dtype in self._inputs:
            x = feeds.get(name)
            if x is None:
                raise EdgetuneError(f"missing input {name!r} (expected shape {shape})")
            if x.shape != shape:
                raise EdgetuneError(f"input {name!r} has shape {tuple(x.shape)}, the model expects {shape}")
            slots[slot] = np.ascontiguousarray(x, dtype=dtype)
        if self.cpus is None:  # the usual case: no context manager on the per-inference path (~0.7 us)
            run_steps(program, slots)
        else:
            with pinned(self.cpus):
                run_steps(program, slots)
        return {name: slots[s] for name, s in self._outputs}

    def trace(self, feeds: dict[str, np.ndarray]) -> list[tuple[tuple[Any, ...], Any]]:
        """One run on `feeds`, returning per step the arguments its kernel got and what it returned."""
        calls: list[tuple[tuple[Any, ...], Any]] = []

        def recorder(fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(*xs: Any) -> Any:
                out = fn(*xs)
                calls.append((xs, out))
                return out
            return call

        self.run_program([(recorder(fn), *rest) for fn, *rest in self.program], feeds)
        return calls

    def stub_program(self, feeds: dict[str, np.ndarray]) -> list[Instruction]:
        """This plan's program with every kernel replaced by one returning what it returned on `feeds`: timing
        it measures the executor's own work per inference (slots, frees, thread checks, calls), nothing else."""
        return [(lambda *_, r=out: r, *rest) for (_, out), (_, *rest) in zip(self.trace(feeds), self.program,
                                                                               strict=True)]

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run(feeds)

    # ---- checks and accounting ------------------------------------------------------------
    def check_against_reference(self, feeds: dict[str, np.ndarray] | None = None) -> float:
        """Run once on a realistic input, compare with the reference executor; refuse over tolerance."""
        feeds = feeds or default_feeds(self.graph)
        ref = run_graph(self.graph, feeds)
        got = self.run(feeds)
        worst = 0.0
        for name in self.graph.outputs:
            r, o = ref[name].astype(np.float64), np.asarray(got[name], dtype=np.float64)
            if o.shape != r.shape or not np.all(np.isfinite(o)):
                raise EdgetuneError(f"plan output {name!r} is malformed (shape {o.shape} or not finite)")
            err = float(np.max(np.abs(o - r)) / max(float(np.max(np.abs(r))), 1e-12))
            worst = max(worst, err)
        tol = self.plan.effective_tolerance()
        if worst > tol:
            raise EdgetuneError(
                f"plan for {self.graph.name} changes the outputs by {worst:.3g} relative "
                f"(tolerance {tol:.3g}); refused"
            )
        return worst

    def memory(self) -> MemoryReport:
        """Planned memory; measured per-kernel figures (`kernel_memory`) are used where present."""
        by_prec: dict[str, int] = {}
        resident, transient, own_scratch = 0, 0, 0
        for name, (kernel, precision) in self.kernels.items():
            wb = int(kernel.weight_bytes)
            own = int(kernel.workspace_bytes) - int(kernel.shared_workspace_bytes)
            by_prec[precision] = by_prec.get(precision, 0) + wb
            own_scratch += own
            if name in self.kernel_memory:  # measured without the shared workspace (kernel_memory.py)
                r, t = self.kernel_memory[name]
                resident += max(int(r), wb)  # a kernel aliasing the graph's weights holds them unseen by RSS
                transient = max(transient, int(t))
            else:
                resident += wb + own
        shared = self.workspace.nbytes
        startup = dict(self.startup_bytes)
        return MemoryReport(
            weight_bytes=sum(by_prec.values()),
            weight_bytes_by_precision=by_prec,
            workspace_bytes=own_scratch + shared,
            largest_workspace_bytes=max((int(k.workspace_bytes) for k, _ in self.kernels.values()), default=0),
            peak_activation_bytes=self.peak_activation_bytes,
            resident_bytes=resident + shared + sum(startup.values()),
            peak_transient_bytes=transient,
            startup_bytes=startup,
            measured=bool(self.kernels) and all(n in self.kernel_memory for n in self.kernels),
            shared_workspace_bytes=shared,
        )

    @property
    def libraries(self) -> set[str]:
        """The libraries whose kernels the plan's steps call (converters excluded)."""
        return {s.library for s in self.steps if s.kind == "node"}


# which start-up (edgetune.runtime.kernel_memory.warm_up_libraries) a primitive's library needs
def order_units(graph: Graph, groups: list[list[str]]) -> list[list[Node]]:
    """Units (each group of node names, every other node alone) in a topological order of the contracted
    graph, earliest first node first; one-line error when a group is not convex."""
    by_name = {n.name: n for n in graph.nodes}
    position = {n.name: i for i, n in enumerate(graph.nodes)}
    unit_of: dict[str, int] = {}
    units: list[list[Node]] = []
    for group in groups:
        for name in group:
            unit_of[name] = len(units)
        units.append(sorted((by_name[name] for name in group), key=lambda n: position[n.name]))
    for n in graph.nodes:
        if n.name not in unit_of:
            unit_of[n.name] = len(units)
            units.append([n])
    producer = {o: unit_of[n.name] for n in graph.nodes for o in n.outputs}
    deps = [{producer[v] for n in u for v in n.inputs if v in producer} - {i} for i, u in enumerate(units)]
    return [units[i] for i in _kahn(deps, [position[u[0].name] for u in units], units)]


def _kahn(deps: list[set[int]], first: list[int], units: list[list[Node]]) -> list[int]:
    """Topological order of units by their dependencies, earliest first node first."""
    waiting = [len(d) for d in deps]
    users: list[list[int]] = [[] for _ in deps]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    ready = [(first[i], i) for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for k in users[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, (first[k], k))
    if len(order) < len(units):
        stuck = next(u for i, u in enumerate(units) if i not in set(order) and len(u) > 1)
        raise EdgetuneError(f"plan: segment {stuck[0].name}..{stuck[-1].name} is not convex (a path leaves it "
                            f"and re-enters), so it cannot run as one step")
    return order


def sample_input(graph: Graph, value: str, fmt: Format, sample: np.ndarray | None = None) -> Any:
    """A stand-in input for `value` in format `fmt`: `sample` (or N(0, 1) values) converted from NCHW fp32."""
    shape = graph.shape(value)
    if graph.dtype(value) != "float32":  # token ids, masks: plain arrays of their own dtype (see Format)
        return np.ascontiguousarray(sample) if sample is not None else stand_in_input(graph, value,
                                                                                      np.random.default_rng(0))
    x = sample if sample is not None else np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if fmt.key == FP32.key:
        return x.copy() if sample is not None else x
    conv = registry.converter(FP32, fmt)
    if conv is None:
        raise EdgetuneError(f"no converter from {FP32} to {fmt} for value {value!r} {shape}")
    return conv.prepare(shape)(x)


# One compiled step: (call, input slots, output slots, slots to free after, threads to set first or 0 when
# unchanged from the previous step, True when the call returns one value rather than a list).
Instruction = tuple[Callable[..., Any], tuple[int, ...], tuple[int, ...], tuple[int, ...], int, bool]


def compile_program(steps: list[Step]) -> list[Instruction]:
    """Steps as flat tuples, with thread changes found at compile time: the per-inference loop does no
    attribute lookups, format checks or thread calls that could be decided once."""
    program: list[Instruction] = []
    previous = None
    for s in steps:
        threads = s.threads if s.threads != previous or not program else 0
        program.append((s.fn, tuple(s.ins), tuple(s.outs), tuple(s.free_after), threads, s.kind == "convert"))
        previous = s.threads
    if program:  # the first step always sets its threads: other code may change them between runs
        fn, ins, outs, frees, _, single = program[0]
        program[0] = (fn, ins, outs, frees, steps[0].threads, single)
    return program


def run_steps(program: list[Instruction], slots: list[Any]) -> None:
    """The inner loop: call each step on its input slots, store its outputs, free dead slots."""
    for fn, ins, outs, frees, threads, single in program:
        if threads:
            set_threads(threads)
        res = fn(*[slots[i] for i in ins])
        if single:
            slots[outs[0]] = res
        else:
            for o, v in zip(outs, res, strict=False):
                slots[o] = v
        for f in frees:
            slots[f] = None


def resolve_ort_spin(requested: str, units: list[list[Node]], prims: list[list[Any]]) -> str:
    """The spin mode of the plan's ONNX Runtime sessions. "auto": a plan that is one ORT session and nothing
    else runs with ORT's own defaults ("on", exactly as ORT called directly); any other plan lets ORT workers
    spin only while their run is in flight ("stop"), so that another session's or library's pool gets the
    cores next. An explicit mode (chosen by measurement in `tune`, or by the user) is kept."""
    if requested not in ("auto", *SPIN_MODES):
        raise EdgetuneError(f"plan: unknown ort_spin {requested!r} (auto, {', '.join(SPIN_MODES)})")
    if requested != "auto":
        return requested
    alone = len(units) == 1 and (len(units[0]) > 1 or prims[0][0].library == "onnxruntime")
    return "on" if alone else "stop"


def _prepare(build: Callable[[], Any], node: Node) -> Any:
    """Run a kernel build; a library failing to prepare is reported as one line naming the node."""
    try:
        return build()
    except EdgetuneError:
        raise
    except Exception as e:  # noqa: BLE001
        raise EdgetuneError(f"preparing node {node.name!r} failed: {type(e).__name__}: {e}") from None


def _resolve(name: str, node: Node, graph: Graph):  # noqa: ANN202 - returns a Primitive
    try:
        prim = registry.get(name)
    except KeyError:
        why = registry.unavailable().get(name)
        extra = f" ({why})" if why else ""
        raise EdgetuneError(f"plan names unknown primitive {name!r} for node {node.name!r}{extra}") from None
    if not prim.runs(node.op):
        raise EdgetuneError(f"primitive {name} does not run {node.op} (node {node.name!r})")
    reason = prim.supports(node, graph)
    if reason:
        raise EdgetuneError(f"primitive {name} cannot run node {node.name!r}: {reason}")
    return prim
