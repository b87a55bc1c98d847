"""`edgetune zoo list` and `edgetune zoo export NAME OUT.onnx`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from edgetune.errors import EdgetuneError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "export"], help="list the models, or export one")
    p.add_argument("name", nargs="?", help="zoo model name (for export)")
    p.add_argument("out", nargs="?", help="output .onnx path (for export)")


def execute(args: argparse.Namespace) -> dict[str, Any]:
    from edgetune import zoo  # loads torch on demand: building the CLI's parser must stay fast

    if args.action == "list":
        return {"models": [
            {"name": e.name, "description": e.description, "input_shape": list(e.input_shape),
             "num_classes": e.num_classes, "weights": e.weights}
            for e in zoo.list_models()
        ]}
    if not args.name or not args.out:
        raise EdgetuneError("zoo export needs NAME and OUT.onnx")
    zoo.entry(args.name)  # a clear error for unknown names
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        raise EdgetuneError(f"output folder does not exist: {out.parent}")
    zoo.export(args.name, out)
    return {"exported": str(out), "model": args.name, "bytes": out.stat().st_size}


def render(result: dict[str, Any], console: Any) -> None:
    if "models" in result:
        t = Table(title="edgetune zoo")
        for col in ("name", "input", "classes", "weights", "description"):
            t.add_column(col)
        for m in result["models"]:
            t.add_row(m["name"], "x".join(map(str, m["input_shape"])), str(m["num_classes"]), m["weights"],
                      m["description"])
        console.print(t)
    else:
        console.print(f"wrote {result['exported']} ({result['bytes'] / 1e6:.1f} MB)")
