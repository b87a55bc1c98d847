"""Numerical verification: a primitive may be chosen for a node only if it matches the reference executor.

Why here and not in each library's tests: the design space holds dozens of (primitive, node) pairs per
model, several of them fast and wrong on some geometry (the probe found int8 paths with 10-20 % error).
Each pair is run on (a) random N(0,1) inputs and (b) realistic sample activations when given, through
the same converters the executor will insert, and compared with `reference.run_node` on the same inputs.

For int8 primitives with samples, the "random" inputs are drawn from each sample's mean/std and clipped
to its range: their quantisation was calibrated on those activations, and out-of-range noise would test
saturation, not whether the kernel computes the right function.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgetune.graph.ir import Graph, Node
from edgetune.graph.reference import run_node
from edgetune.kernels import registry
from edgetune.kernels.base import FP32, Format, Kernel, PrepareContext, Primitive
from edgetune.kernels.threads import set_threads


@dataclass
class VerifyResult:
    """ok: within tolerance on every input set; rel_error: the worst max|out-ref|/max|ref|;
    reason: why not ok (one line); sqnr_db: worst signal-to-quantisation-noise ratio (int8 only)."""

    ok: bool
    rel_error: float
    reason: str | None = None
    sqnr_db: float | None = None


class _Fail(Exception):
    """A verification failure with its one-line reason."""


_REF_CACHE: OrderedDict[tuple[Any, ...], list[np.ndarray]] = OrderedDict()
_REF_CACHE_SIZE = 32


def reference_outputs(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """The ground truth (imported lazily: the reference executor imports the kernels' users).

    Memoised on the node and the inputs' bytes: verifying twenty primitives of one node on the same
    inputs computes the float64 reference once, not twenty times."""

    h = hashlib.blake2b(digest_size=16)
    for x in inputs:
        if x is not None:
            a = np.ascontiguousarray(x)
            h.update(str((a.shape, a.dtype)).encode())
            h.update(a.data)
    key = (node.name, node.op, tuple(node.inputs), repr(node.attrs), repr(node.activation), h.digest())
    hit = _REF_CACHE.get(key)
    if hit is not None:
        _REF_CACHE.move_to_end(key)
        return hit
    out = run_node(node, inputs)
    _REF_CACHE[key] = out
    if len(_REF_CACHE) > _REF_CACHE_SIZE:
        _REF_CACHE.popitem(last=False)
    return out


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}".rstrip(": ")[:300]


def _random_inputs(
    node: Node, graph: Graph, rng: np.random.Generator, like: dict[str, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """N(0,1) per dynamic input (zeros for integer tensors); in-distribution when `like` is given."""
    feeds = {}
    for name in graph.dynamic_inputs(node):
        shape, dtype = graph.shape(name), np.dtype(graph.dtype(name))
        if not np.issubdtype(dtype, np.floating):
            feeds[name] = np.zeros(shape, dtype)
            continue
        x = rng.standard_normal(shape)
        s = like.get(name) if like else None
        if s is not None:
            x = np.clip(x * float(s.std()) + float(s.mean()), float(s.min()), float(s.max()))
        feeds[name] = x.astype(dtype)
    return feeds


def _convert(x: Any, src: Format, dst: Format, shape: tuple[int, ...]) -> Any:
    if src == dst:
        return x
    conv = registry.converter(src, dst)
    if conv is None:
        raise _Fail(f"no converter {src} -> {dst}")
    reason = conv.supports(shape)
    if reason:
        raise _Fail(f"converter {conv.name}: {reason}")
    return conv.prepare(shape)(x)


def _run_once(
    prim: Primitive, kernel: Kernel, node: Node, graph: Graph, feeds: dict[str, np.ndarray]
) -> tuple[float, float | None]:
    """(rel error, SQNR dB) of one run against the reference; raises _Fail on any mismatch."""
    dyn = graph.dynamic_inputs(node)
    fmts = prim.input_formats(node, graph)
    if len(fmts) != len(dyn):
        raise _Fail(f"declares {len(fmts)} input formats for {len(dyn)} dynamic inputs")
    args = []
    for name, fmt in zip(dyn, fmts, strict=True):
        x = feeds[name]
        held = Format("NCHW", str(x.dtype)) if x.dtype.kind == "f" else FP32  # non-float: see Format
        args.append(_convert(x, held, fmt, x.shape))
    try:
        outs = kernel(*args)
    except Exception as e:  # noqa: BLE001 - any kernel failure is a verification failure
        raise _Fail(f"kernel raised {_one_line(e)}") from e
    names = [o for o in node.outputs if o]
    if not isinstance(outs, list | tuple) or len(outs) != len(names):
        raise _Fail(
            f"returned {type(outs).__name__} of {len(outs) if isinstance(outs, list | tuple) else '?'} "
            f"outputs, node has {len(names)}"
        )
    out_fmt = prim.output_format(node, graph)
    all_inputs = [None if not i else graph.initializers.get(i, feeds.get(i)) for i in node.inputs]
    try:
        refs = reference_outputs(node, all_inputs)
    except Exception as e:  # noqa: BLE001
        raise _Fail(f"reference raised {_one_line(e)}") from e
    worst, sqnr = 0.0, None
    for name, out, ref in zip(names, outs, refs, strict=False):
        ref = np.asarray(ref)
        y = np.array(out if out_fmt == FP32 else _convert(out, out_fmt, FP32, ref.shape))
        if y.shape != ref.shape:
            raise _Fail(f"output {name}: shape {y.shape}, reference {ref.shape}")
        y64, r64 = y.astype(np.float64), ref.astype(np.float64)
        if not np.isfinite(y64).all() and np.isfinite(r64).all():
            raise _Fail(f"output {name}: NaN/Inf")
        peak = float(np.abs(r64).max()) if r64.size else 0.0
        err = float(np.abs(y64 - r64).max()) if r64.size else 0.0
        worst = max(worst, err / peak if peak > 0 else err)
        if prim.precision == "int8":
            noise = float(((y64 - r64) ** 2).sum())
            db = math.inf if noise == 0 else 10 * math.log10(max(float((r64**2).sum()), 1e-30) / noise)
            sqnr = db if sqnr is None else min(sqnr, db)
    return worst, sqnr


def verify(
    primitive: Primitive,
    node: Node,
    graph: Graph,
    *,
    samples: dict[str, np.ndarray] | None = None,
    threads: int = 1,
    seed: int = 0,
    kernel: Kernel | None = None,
) -> VerifyResult:
    """Run `primitive` on `node` and compare with the reference; never raises for a bad primitive.
    `kernel`: an already prepared kernel of this primitive for this node (saves a second prepare)."""
    sqnr: float | None = None
    worst = 0.0
    try:
        reason = primitive.supports(node, graph)
        if reason is not None:
            return VerifyResult(False, math.inf, f"not supported: {reason}")

        set_threads(threads)
        try:
            if kernel is None:
                kernel = primitive.prepare(
                    node, PrepareContext(graph, threads=threads, samples=dict(samples or {}))
                )
        except Exception as e:  # noqa: BLE001
            raise _Fail(f"prepare raised {_one_line(e)}") from e
        rng = np.random.default_rng(seed)
        dyn = graph.dynamic_inputs(node)
        have = {k: np.asarray(samples[k]) for k in dyn if samples and k in samples}
        sets = [
            (
                "random inputs",
                _random_inputs(node, graph, rng, have if primitive.precision == "int8" else None),
            )
        ]
        if have:
            sets.append(("sample activations", _random_inputs(node, graph, rng, None) | have))
        for label, feeds in sets:
            try:
                err, db = _run_once(primitive, kernel, node, graph, feeds)
            except _Fail as f:
                raise _Fail(f"{label}: {f}") from f
            worst = max(worst, err)
            if db is not None:
                sqnr = db if sqnr is None else min(sqnr, db)
            if not err <= primitive.tolerance:
                raise _Fail(f"{label}: rel error {err:.3g} > tolerance {primitive.tolerance:g}")
    except _Fail as f:
        return VerifyResult(False, max(worst, _err_of(str(f))), str(f), sqnr)
    except Exception as e:  # noqa: BLE001 - supports() or a converter crashed
        return VerifyResult(False, math.inf, _one_line(e), sqnr)
    return VerifyResult(True, worst, None, sqnr)


def _err_of(reason: str) -> float:
    """The rel error for a failure: the measured one for a tolerance miss, else infinity."""
    return 0.0 if "rel error" in reason else math.inf


def verify_node(
    node: Node, graph: Graph, samples: dict[str, np.ndarray] | None = None, threads: int = 1
) -> dict[str, VerifyResult]:
    """Verify every registered primitive that says it supports `node` (name -> result)."""
    return {
        p.name: verify(p, node, graph, samples=samples, threads=threads)
        for p, reason in registry.candidates(node, graph)
        if reason is None
    }
