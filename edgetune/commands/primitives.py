"""`edgetune primitives [MODEL]`: the registry, or per node which primitives can run it and why not."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from edgetune.commands import checks
from edgetune.graph.reference import reference_samples
from edgetune.kernels import registry
from edgetune.kernels.verify import verify
from edgetune.report.progress import progress_bar
from edgetune.user_model import add_model_arguments, load_model_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="zoo model name or .onnx path (omit for the registry)")
    add_model_arguments(p)
    p.add_argument("--threads", type=int, default=1, help="threads used while verifying (default 1)")
    p.add_argument("--no-verify", action="store_true", help="only list what each primitive supports")


def _registry() -> dict[str, Any]:
    rows = []
    for p in sorted(registry.primitives(), key=lambda p: p.name):
        rows.append({"name": p.name, "library": p.library, "ops": p.ops_label(), "precision": p.precision,
                     "tolerance": p.tolerance})
    convs = [{"name": c.name, "library": c.library, "from": c.src.key, "to": c.dst.key}
             for c in registry.converters()]
    return {"primitives": rows, "converters": convs, "unavailable": registry.unavailable()}


def execute(args: argparse.Namespace) -> dict[str, Any]:

    checks.threads(args.threads, console=args.console)
    if not args.model:
        return _registry()

    graph = load_model_args(args)
    samples = None if args.no_verify else reference_samples(graph)
    cands = {n.name: registry.candidates(n, graph) for n in graph.nodes}
    todo = sum(1 for c in cands.values() for _, r in c if r is None)
    nodes = []
    with progress_bar(args.console, "verifying primitives", 0 if args.no_verify else todo) as advance:
        for node in graph.nodes:
            entries = []
            for prim, reason in cands[node.name]:
                entry: dict[str, Any] = {"primitive": prim.name, "library": prim.library,
                                         "precision": prim.precision}
                if reason is not None:
                    entry.update(status="declined", reason=reason)
                elif args.no_verify:
                    entry.update(status="supported")
                else:
                    res = verify(prim, node, graph, samples=samples, threads=args.threads)
                    entry.update(status="verified" if res.ok else "excluded", rel_error=res.rel_error,
                                 reason=res.reason, sqnr_db=res.sqnr_db)
                    advance(node.name)
                entries.append(entry)
            nodes.append({"node": node.name, "op": node.op, "candidates": entries})
    return {"model": graph.name, "nodes": nodes}


def render(result: dict[str, Any], console: Any) -> None:
    if "primitives" in result:
        t = Table(title="edgetune primitive registry")
        for col in ("primitive", "library", "ops", "precision", "tolerance"):
            t.add_column(col)
        for r in result["primitives"]:
            t.add_row(r["name"], r["library"], ", ".join(r["ops"]), r["precision"], f"{r['tolerance']:g}")
        console.print(t)
        c = Table(title="converters (edge format changes)")
        for col in ("converter", "library", "from", "to"):
            c.add_column(col)
        for r in result["converters"]:
            c.add_row(r["name"], r["library"], r["from"], r["to"])
        console.print(c)
        for name, why in result["unavailable"].items():
            console.print(f"unavailable: {name}: {why}")
        return
    t = Table(title=f"{result['model']}: primitives per node (rel. error = max|out-ref|/max|ref| vs reference)")
    for col in ("node", "op", "verified (rel. error)", "excluded or declined (reason)"):
        t.add_column(col, overflow="fold")
    for n in result["nodes"]:
        ok = [f"{c['primitive']} ({c['rel_error']:.1e})" if "rel_error" in c else c["primitive"]
              for c in n["candidates"] if c["status"] in ("verified", "supported")]
        bad = [f"{c['primitive']}: {c['reason']}" for c in n["candidates"] if c["status"] in ("excluded", "declined")]
        t.add_row(n["node"], n["op"], "\n".join(ok), "\n".join(bad))
    console.print(t)
