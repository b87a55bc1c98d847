"""`edgetune inspect MODEL`: what the model is made of, layer by layer."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from edgetune.graph.stats import layer_table
from edgetune.runtime.plan import batch_of
from edgetune.user_model import add_model_arguments, load_model_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    add_model_arguments(p)


def execute(args: argparse.Namespace) -> dict[str, Any]:

    graph = load_model_args(args)
    rows = layer_table(graph)
    totals = {
        "nodes": len(rows),
        "macs": sum(int(r.get("macs", 0)) for r in rows),
        "params": sum(int(r.get("params", 0)) for r in rows),
        "activation_bytes": sum(int(r.get("activation_bytes", 0)) for r in rows),
    }

    return {"model": graph.name, "batch": batch_of(graph), "inputs": {i: list(graph.shape(i)) for i in graph.inputs},
            "layers": rows, "totals": totals}


def render(result: dict[str, Any], console: Any) -> None:
    t = Table(title=f"{result['model']}: layers (MACs = multiply-accumulates per inference, "
                      f"batch {result.get('batch', 1)})")
    for col in ("#", "node", "op", "input shapes", "output shape", "MACs", "params", "act. bytes"):
        t.add_column(col, justify="right" if col in ("#", "MACs", "params", "act. bytes") else "left")
    for i, r in enumerate(result["layers"]):
        op = r["op"] + (f"+{r['activation']}" if r.get("activation") else "")
        t.add_row(str(i), r["name"], op, " ".join(str(tuple(s)) for s in r.get("input_shapes", [])),
                  str(tuple(r.get("output_shape") or ())), f"{int(r.get('macs', 0)):,}",
                  f"{int(r.get('params', 0)):,}", f"{int(r.get('activation_bytes', 0)):,}")
    tot = result["totals"]
    t.add_section()
    t.add_row("", "total", f"{tot['nodes']} nodes", "", "", f"{tot['macs']:,}", f"{tot['params']:,}",
              f"{tot['activation_bytes']:,}")
    console.print(t)
