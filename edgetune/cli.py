"""The `edgetune` command line.

Each subcommand lives in `edgetune/commands/<name>.py` and exposes `add_arguments(parser)`,
`execute(args) -> dict` (the machine-readable result) and `render(result, console)` (the human view).
This module only parses, dispatches, prints (`--json`: one JSON object on stdout) and turns
`EdgetuneError` into a one-line message with a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape

import edgetune  # noqa: F401 - sets thread-pool environment before numpy/torch load
from edgetune.device.cpu import describe, summary_line
from edgetune.errors import EdgetuneError

COMMANDS = {
    "zoo": "built-in models: list them or export one to ONNX",
    "inspect": "per-layer table of a model: op, shapes, MACs, parameters, activation bytes",
    "primitives": "the primitive registry, or per node of a model the verified primitives",
    "run": "run a model with a plan (reference, blas, or a plan.json) and time it",
    "profile": "measure every (node, primitive, threads) and converter into the profile database",
    "tune": "profile, search and measure the best plan; writes plan.json and report.html",
    "bench": "side-by-side latency and memory of baselines, peers and a plan",
    "device": "the CPU fingerprint (model, ISA features, cores, caches) every measurement is keyed by",
    "fleet": "boards of a Ray cluster to profile on: join one, or show their status",
}
# Commands whose output holds measurements: their JSON carries the device, their tables end with it.
MEASURING = frozenset({"run", "profile", "tune", "bench", "primitives"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise EdgetuneError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgetune", description="Measured design-space exploration for DNNs on edge CPUs.")
    parser.add_argument("--version", action="version", version=f"edgetune {edgetune.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one machine-readable JSON object on stdout")
        _module(name).add_arguments(p)
    return parser


def _module(name: str) -> Any:
    return importlib.import_module(f"edgetune.commands.{name}")


def _jsonable(obj: Any) -> Any:

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN
        return None
    return obj


def _one_line(e: BaseException) -> str:
    """The message with line breaks folded: an error is one line however a library worded it."""
    return " ".join(str(e).split())


def main(argv: list[str] | None = None) -> int:

    err = Console(stderr=True, highlight=False)
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            raise EdgetuneError("no command given (try: edgetune --help)")
        module = _module(args.command)
        # With --json, stdout carries only the JSON object; progress and tables go to stderr.
        console = err if args.json else Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        args.console = console
        out = sys.stdout
        # --json: whatever a library prints while the command runs (Ray's forwarded cluster messages, from its
        # own threads) goes to stderr, so that stdout holds the one JSON object and nothing else
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            result = module.execute(args)
            if args.command in MEASURING and isinstance(result, dict):
                result.setdefault("device", describe())
        if args.json:
            out.write(json.dumps(_jsonable(result), default=str) + "\n")
        else:
            module.render(result, console)
            if args.command in MEASURING:
                console.print(f"[dim]measured on: {summary_line(result['device'])}[/dim]", soft_wrap=True)
        return 0
    except EdgetuneError as e:

        err.print(f"[red]edgetune: error:[/red] {escape(_one_line(e))}", markup=True, soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt:
        err.print("edgetune: interrupted (measurements already written are kept)")
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: one line unless debugging
        if os.environ.get("EDGETUNE_DEBUG"):
            raise
        err.print(f"edgetune: internal error: {type(e).__name__}: {_one_line(e)} (set EDGETUNE_DEBUG=1 for a "
                  "traceback)", markup=False, soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
