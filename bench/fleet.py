"""Profiling throughput (measurements per second) against the number of boards, on simulated boards: the
nodes of one local Ray cluster on 127.0.0.1 (edgetune/fleet/local.py).

Two kinds of row, labelled as such:
- real: a whole profile (node phase and measurement tasks) of a small model on 1 and on 2 boards, timed for
  real. On a 2-core machine at most two boards can measure at once without disturbing each other, so real
  rows stop at 2 (and even 2 boards share the machine with the head: their timings are flagged disturbed).
- simulated: the measurement tasks' path (queue, dispatch to the board actors, results back, merged into a
  ProfileDB with the head's checks) with each measurement a calibrated sleep: the mean seconds one real
  measurement took on one board (or --sleep). It shows the scheduling, transfer and merge overhead from 1 to
  16 boards; the target is 16 boards >= 12x one board.

Usage: .venv/bin/python bench/fleet.py [--boards 1,2,4,8,16] [--tasks-per-board 12] [--sleep S]
[--model ZOO_NAME_OR_ONNX] [--time-cap 0.05] [--no-isolate] [--no-real]. Starts and stops its own cluster (minutes: one
Ray node per board); prints a table and writes bench/out/fleet.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# before Ray loads (fleet/cluster.py does the same for a loopback address)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import edgetune  # noqa: E402, F401 - thread-pool environment before numpy loads
from edgetune.device.cpu import summary_line  # noqa: E402
from edgetune.fleet.cluster import Fleet  # noqa: E402
from edgetune.fleet.local import LocalCluster, SimulatedBoard  # noqa: E402
from edgetune.fleet.runner import FleetRunner  # noqa: E402
from edgetune.graph.ir import Graph, Node, Value  # noqa: E402
from edgetune.measure.db import ProfileDB  # noqa: E402
from edgetune.measure.profiler import Profiler, ProfileSummary  # noqa: E402
from edgetune.measure.tasks import MeasurementTask, TaskContext  # noqa: E402
from edgetune.measure.timing import Timing  # noqa: E402
from edgetune.user_model import load_model  # noqa: E402


class CalibratedSleep:
    """A board's 'measurement' that takes `seconds` and returns a plausible timing (sent to the boards)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, task: MeasurementTask, ctx: TaskContext) -> Timing:
        time.sleep(self.seconds)
        ms = self.seconds * 1e3
        return Timing(median_ms=ms, p10_ms=ms, p90_ms=ms, min_ms=ms, spread=0.0, runs=1, foreign_cores=None,
                      disturbed=False, ci_rel=0.0)


def small_graph() -> Graph:
    """x -> Sigmoid -> Tanh -> Relu -> y: every kind of measurement (nodes, converters, ORT pairs, switches,
    dispatch, segments) in seconds per board."""
    nodes = [Node("a", "Sigmoid", ["x"], ["h1"]), Node("b", "Tanh", ["h1"], ["h2"]), Node("c", "Relu", ["h2"], ["y"])]
    return Graph("chain3", nodes, ["x"], ["y"], {k: Value(k, (1, 4, 8, 8)) for k in ("x", "h1", "h2", "y")}, {})


def real_row(fleet: Fleet, graph: Graph, boards: int, tmp: Path, time_cap: float, isolate: bool) -> dict:
    """A whole profile of `graph` on the cluster's boards, into a fresh DB."""
    runner = FleetRunner(fleet, None, warn=lambda m: print(m, file=sys.stderr)).start()
    db = ProfileDB(tmp / f"real-{boards}.sqlite", runner.device_id, runner.versions_id)
    try:
        s = Profiler(graph, db, [1], time_cap_s=time_cap, isolate=isolate, runner=runner).run()
    finally:
        runner.close()
        db.close()
    used = len({n for n, _ in runner.log})
    return {"boards": boards, "boards_used": used, "kind": "real", "what": f"profile of {graph.name} (1 thread)",
            "measurements": s.new_measurements, "seconds": s.seconds, "disturbed": s.disturbed,
            "per_second": s.new_measurements / s.seconds}


def simulated_row(fleet: Fleet, graph: Graph, boards: int, per_board: int, sleep_s: float, tmp: Path) -> dict:
    """`per_board` x `boards` sleep tasks through the fleet runner, merged into a fresh DB (after one warm-up
    task per board, which loads the model there)."""
    runner = FleetRunner(fleet, None, performer=CalibratedSleep(sleep_s), warn=lambda m: print(m, file=sys.stderr))
    runner.start()
    db = ProfileDB(tmp / f"sim-{boards}.sqlite", runner.device_id, runner.versions_id)
    ctx = TaskContext(graph, 0.01, samples={})

    def tasks(prefix: str, n: int) -> list[MeasurementTask]:
        return [MeasurementTask(kind="converter", key=f"bench.sleep.{prefix}", shape=(i,), threads=1,
                                description=f"sleep {prefix} #{i}") for i in range(n)]

    try:
        runner.run_tasks(tasks("warm", boards), ctx, db, ProfileSummary(), None)
        runner.ready(boards)  # every board holds the model before the clock starts
        s = ProfileSummary()
        t0 = time.perf_counter()
        runner.run_tasks(tasks("timed", boards * per_board), ctx, db, s, None)
        seconds = time.perf_counter() - t0
    finally:
        runner.close()
        db.close()
    used = len({n for n, d in runner.log if "timed" in d})
    return {"boards": boards, "boards_used": used, "kind": "simulated", "what": f"sleep {sleep_s * 1e3:.0f} ms each",
            "measurements": s.new_measurements, "seconds": seconds, "disturbed": 0,
            "per_second": s.new_measurements / seconds}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", default="1,2,4,8,16")
    ap.add_argument("--tasks-per-board", type=int, default=12)
    ap.add_argument("--sleep", type=float, default=None, help="seconds per simulated measurement (default: "
                                                                "calibrated on the real 1-board profile)")
    ap.add_argument("--model", default=None, help="zoo name or .onnx for the real rows (default: a 3-node chain)")
    ap.add_argument("--time-cap", type=float, default=0.05)
    ap.add_argument("--no-isolate", action="store_true", help="real rows: measure in the board actor itself")
    ap.add_argument("--no-real", action="store_true", help="simulated rows only (needs --sleep)")
    args = ap.parse_args(argv)
    if args.no_real and args.sleep is None:
        ap.error("--no-real needs --sleep (the calibration comes from the real 1-board profile)")
    counts = sorted({int(x) for x in args.boards.split(",")})
    console = Console(stderr=True)
    graph = load_model(args.model) if args.model else small_graph()
    rows: list[dict] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name, LocalCluster(head=None, boards=(SimulatedBoard(),)) as lc:
        tmp = Path(tmp_name)
        fleet = Fleet(lc.address)
        sleep_s = args.sleep
        try:
            have = 1
            for n in counts:
                while have < n:
                    lc.add_board(SimulatedBoard())
                    have += 1
                console.print(f"[dim]{n} board(s) up after {time.perf_counter() - t_start:.0f} s[/dim]")
                if n <= 2 and not args.no_real:
                    rows.append(real_row(fleet, graph, n, tmp, args.time_cap, not args.no_isolate))
                    console.print(f"  real: {rows[-1]['per_second']:.2f} measurements/s")
                    if sleep_s is None:  # calibrated: what one real measurement took on one board
                        sleep_s = min(max(rows[-1]["seconds"] / rows[-1]["measurements"], 0.05), 1.0)
                rows.append(simulated_row(fleet, graph, n, args.tasks_per_board, sleep_s or 0.2, tmp))
                console.print(f"  simulated: {rows[-1]['per_second']:.2f} measurements/s")
        finally:
            fleet.close()
    base = {r["kind"]: r["per_second"] for r in rows if r["boards"] == min(counts)}
    for r in rows:
        r["speedup_vs_1_board"] = r["per_second"] / base[r["kind"]]
    t = Table(title="edgetune fleet: profiling throughput against boards (simulated boards = Ray nodes on 127.0.0.1)")
    for col in ("boards", "measurement", "what", "measurements", "seconds", "measurements/s", f"x {min(counts)} board"):
        t.add_column(col, justify="left" if col in ("measurement", "what") else "right")
    for r in rows:
        t.add_row(str(r["boards"]), r["kind"], r["what"], str(r["measurements"]), f"{r['seconds']:.1f}",
                  f"{r['per_second']:.2f}", f"{r['speedup_vs_1_board']:.2f}")
    Console(width=160).print(t)
    sims = [r for r in rows if r["kind"] == "simulated"]
    top = max(sims, key=lambda r: r["boards"])
    real = [r for r in rows if r["kind"] == "real"]
    print(f"simulated: {top['boards']} boards reach {top['speedup_vs_1_board']:.1f}x {min(counts)} board(s) "
          "(target for 16: >= 12x one board).")
    if real:
        print(f"real rows: measured on this machine, every board sharing its {os.cpu_count()} cores with the others "
              f"and the head (timings flagged disturbed by foreign load: {sum(r['disturbed'] for r in real)}).")
    print(f"machine: {summary_line()}")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "fleet.json").write_text(json.dumps({"rows": rows, "sleep_s": sleep_s, "device": summary_line()}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
