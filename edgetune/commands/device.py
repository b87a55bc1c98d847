"""`edgetune device`: the machine every figure was measured on (the fingerprint that keys the ProfileDB).

Why a command: the development machines are not all the same CPU (an AVX2-only AMD Zen 3 and an Intel
Xeon with AVX-512/VNNI have both been seen), and a latency read without its CPU means nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from edgetune.device.cpu import describe, library_versions


def add_arguments(p: argparse.ArgumentParser) -> None:
    del p  # no options beyond --json


def execute(args: argparse.Namespace) -> dict[str, Any]:
    del args
    return {"device": describe(), "versions": library_versions()}


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n // 1024} KiB"


def render(result: dict[str, Any], console: Any) -> None:
    d = result["device"]
    t = Table(title="edgetune device: the fingerprint every measurement is keyed by", show_header=False)
    t.add_column("what")
    t.add_column("value")
    t.add_row("CPU", d["cpu"])
    t.add_row("identity", d.get("identity") or "-")
    if d.get("board"):
        t.add_row("board", d["board"])
    t.add_row("architecture", d["arch"])
    for c in d.get("clusters") or []:
        cap = f", capacity {c['capacity']}" if c.get("capacity") is not None else ""
        t.add_row("cluster", f"{len(c['cpus'])}x {c['core']} (cpus {','.join(map(str, c['cpus']))}{cap})")
    t.add_row("usable cores", str(d["cores"]))
    t.add_row("SMT threads per core", str(d["smt_threads_per_core"]))
    t.add_row("features", "  ".join(f"{k} {'yes' if v else 'no'}" for k, v in d["features"].items()))
    t.add_row("ISA flags", " ".join(d["flags"]) or "-")
    t.add_row("caches", "  ".join(f"{k} {_mib(v)}" for k, v in d["caches"].items()) or "unknown")
    t.add_row("fingerprint id", d["id"])
    v = result["versions"]
    t.add_row("libraries", "  ".join(f"{k} {ver}" for k, ver in v.items() if ver))
    console.print(t)
