"""`edgetune profile MODEL`: fill the profile database for a model (verification, node, converter and
dispatch timings); a second run on the same machine measures nothing new and says so."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from edgetune.commands import checks
from edgetune.device.cpu import fingerprint_id, usable_cores
from edgetune.errors import EdgetuneError
from edgetune.fleet.cluster import Fleet, check_address, resolve_address
from edgetune.fleet.runner import FleetRunner
from edgetune.measure.db import ProfileDB
from edgetune.measure.profiler import DEFAULT_KERNEL_TIMEOUT_S, DEFAULT_TIME_CAP_S, Profiler
from edgetune.report.progress import progress_bar
from edgetune.user_model import add_model_arguments, load_model_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    add_model_arguments(p)
    add_db_arguments(p)


def add_db_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that measures (profile, tune)."""
    p.add_argument("--db", help="profile database (default: one per user, in the cache folder)")
    p.add_argument("--threads", default=None,
                   help="thread counts to measure, comma-separated (default: 1 and all cores)")
    p.add_argument("--time-cap", type=float, default=None, help="seconds of timing per measurement at most")
    p.add_argument("--kernel-timeout", type=float, default=None,
                   help="seconds one candidate's prepare, verification and timing may take before it is "
                        "excluded as hung (default 60)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="measure on the boards of the Ray cluster whose head is at ADDRESS (HOST:PORT), merged "
                        "into this machine's --db (needs pip install 'edgetune[fleet]')")
    p.add_argument("--device-kind", metavar="KIND",
                   help="with --cluster: the boards' kind, a fingerprint id or its prefix (`edgetune fleet status` "
                        "lists them; default: this machine's kind if boards of it joined, else the only kind)")


def thread_counts(spec: str | None, console: Any = None) -> list[int]:
    """The thread counts of --threads, each in 1.. (a warning above the usable cores)."""

    if not spec:
        return sorted({1, usable_cores()})
    try:
        counts = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise EdgetuneError(f"--threads: expected comma-separated integers, got {spec!r}") from None
    if not counts or min(counts) < 1:
        raise EdgetuneError(f"--threads: thread counts must be >= 1, got {spec!r}")
    checks.threads(max(counts), console=console)
    return counts


def check_db_arguments(args: argparse.Namespace) -> None:
    """Validate the measuring flags before anything is opened or measured."""

    checks.positive(args.time_cap, "--time-cap")
    checks.positive(args.kernel_timeout, "--kernel-timeout")
    thread_counts(args.threads, getattr(args, "console", None))
    if getattr(args, "device_kind", None) and not getattr(args, "cluster", None):
        raise EdgetuneError("--device-kind needs --cluster (it chooses among the cluster's boards)")
    if getattr(args, "cluster", None):
        check_address(resolve_address(args.cluster))  # before the model loads: a wrong address fails at once


def fleet_runner(args: argparse.Namespace, this_kind_only: bool = False) -> FleetRunner | None:
    """With --cluster: the runner over the chosen kind's boards, started (None without --cluster).
    `this_kind_only`: the caller measures on this machine afterwards (tune), so the kind must be its own."""
    if not getattr(args, "cluster", None):
        return None
    fleet = Fleet(args.cluster)
    try:
        runner = FleetRunner(fleet, args.device_kind, warn=lambda m: checks.warn(args.console, m))
        here = fingerprint_id()
        if this_kind_only and runner.kind != here:
            raise EdgetuneError(f"--cluster: tune measures its candidate plans end to end on this machine (kind "
                                f"{here}), so it profiles only boards of that kind, not {runner.kind}; for those "
                                f"run `edgetune profile --cluster {args.cluster} --device-kind {runner.kind}`, "
                                "then `edgetune tune` on one of them with that --db")
        return runner.start()
    except BaseException:
        fleet.close()
        raise


def run_profile(graph: Any, args: argparse.Namespace, this_kind_only: bool = False) -> tuple[Any, Any]:
    """Open the DB and profile `graph` with a progress bar; returns (db, summary). The flags must have
    passed `check_db_arguments` first."""

    runner = fleet_runner(args, this_kind_only)
    try:
        return _profile(graph, args, runner)
    finally:
        if runner is not None:  # who measured what, for the result (the boards' CPU is the device)
            args.cluster_report = {"cluster": runner.summary(), "device": runner.device()}
            runner.close()
            runner.fleet.close()


def _profile(graph: Any, args: argparse.Namespace, runner: FleetRunner | None) -> tuple[Any, Any]:
    """The profile itself: here, or on the boards of `runner` (the DB keyed by their kind and versions)."""
    db = ProfileDB(args.db, runner.device_id, runner.versions_id) if runner else ProfileDB(args.db)
    # getattr: bench/ scripts call run_profile with only the flags they set
    time_cap = getattr(args, "time_cap", None) or DEFAULT_TIME_CAP_S
    timeout = getattr(args, "kernel_timeout", None) or DEFAULT_KERNEL_TIMEOUT_S
    threads = runner.thread_counts() if runner and not args.threads else thread_counts(args.threads)
    prof = Profiler(graph, db, threads, time_cap_s=time_cap, kernel_timeout_s=timeout, runner=runner)
    bars: list[Any] = []

    def progress(description: str, total: int) -> Any:
        for b in bars:
            b.__exit__(None, None, None)
        bars.clear()
        cm = progress_bar(args.console, f"{graph.name}: {description}", total)
        bars.append(cm)
        return cm.__enter__()

    try:
        summary = prof.run(progress)
    finally:
        for b in bars:
            b.__exit__(None, None, None)
    return db, summary


def execute(args: argparse.Namespace) -> dict[str, Any]:
    check_db_arguments(args)
    graph = load_model_args(args)
    db, s = run_profile(graph, args)
    out = {"model": graph.name, "new_measurements": s.new_measurements, "cached": s.cached,
           "db": str(db.path), "verified": s.verified, "excluded": s.excluded, "disturbed": s.disturbed,
           "pruned": s.pruned,
           "seconds": s.seconds, "db_rows": db.count()}
    return {**out, **getattr(args, "cluster_report", {})}


def render(result: dict[str, Any], console: Any) -> None:
    t = Table(title=f"edgetune profile {result['model']}")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("new measurements", str(result["new_measurements"]))
    t.add_row("already in the database", str(result["cached"]))
    t.add_row("verified (node, primitive) pairs", str(result["verified"]))
    t.add_row("excluded by verification", str(len(result["excluded"])))
    t.add_row("disturbed by foreign load (flagged)", str(result["disturbed"]))
    t.add_row("not timed at fewer threads (>3x the node's best)", str(result["pruned"]))
    t.add_row("time", f"{result['seconds']:.1f} s")
    t.add_row("database", result["db"])
    if "cluster" in result:
        c = result["cluster"]
        t.add_row("measured on the cluster", f"{c['address']}, kind {c['kind']}")
        for board, n in c["results_by_board"].items():
            t.add_row(f"  work items done by board {board}", str(n))
    console.print(t)
    if result["new_measurements"] == 0:
        console.print("nothing new to measure: every measurement came from the database")
    for k, why in list(result["excluded"].items())[:20]:
        console.print(f"  excluded {k}: {why}")
