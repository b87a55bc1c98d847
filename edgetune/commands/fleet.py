"""`edgetune fleet join HEAD` and `edgetune fleet status`: boards of a Ray cluster that `profile --cluster`
and `tune --cluster` measure on (edgetune/fleet). Needs the optional extra: pip install 'edgetune[fleet]'."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.table import Table

from edgetune.errors import EdgetuneError
from edgetune.fleet.cluster import Fleet
from edgetune.fleet.join import join
from edgetune.fleet.status import status


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="fleet_command", metavar="ACTION", parser_class=type(p))
    # --json after the action too (`fleet status --json`); SUPPRESS keeps `fleet --json status` working
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one machine-readable JSON object on stdout")
    j = sub.add_parser("join", parents=[common], help="make this machine a board of the cluster at HEAD",
                       description="run `ray start` as a board of this CPU's kind and describe it to the head")
    j.add_argument("head", metavar="HEAD", help="HOST:PORT of the Ray head (`ray start --head` prints it)")
    j.add_argument("--num-cpus", type=int, default=None, help="CPUs Ray may schedule here (default: Ray's count)")
    j.add_argument("--dry-run", action="store_true", help="print the `ray start` command and the board's kind only")
    s = sub.add_parser("status", parents=[common], help="boards, kinds, what each measures, queue, throughput",
                       description="boards, kinds, what each measures, the queue and the throughput so far")
    s.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="HOST:PORT of the Ray head (default: RAY_ADDRESS, else the cluster started here)")


def execute(args: argparse.Namespace) -> dict[str, Any]:
    if args.fleet_command == "join":
        if args.num_cpus is not None and args.num_cpus < 1:
            raise EdgetuneError(f"--num-cpus must be >= 1, got {args.num_cpus}")
        return {"action": "join", **join(args.head, args.num_cpus, args.dry_run)}
    if args.fleet_command == "status":
        fleet = Fleet(args.cluster)
        try:
            return {"action": "status", **status(fleet)}
        finally:
            fleet.close()
    raise EdgetuneError("fleet: give an action: join HEAD or status")


def render(result: dict[str, Any], console: Any) -> None:
    if result["action"] == "join":
        _render_join(result, console)
    else:
        _render_status(result, console)


def _render_join(r: dict[str, Any], console: Any) -> None:
    b = r["board"]
    console.print(f"board kind {r['kind']}: {b['summary']}" + (" (simulated)" if b.get("simulated") else ""))
    console.print(("ran: " if r["started"] else "would run: ") + " ".join(r["command"]), soft_wrap=True)
    if r.get("registered"):
        console.print(f"joined {r['head']} as node {r['node'][:8]}; the head's `edgetune fleet status` lists it")
    elif r.get("register_error"):
        console.print(f"joined {r['head']}, but could not describe the board to the head: {r['register_error']}")


def _render_status(r: dict[str, Any], console: Any) -> None:
    p, q, th = r["profile"], r["queue"], r["throughput"]
    t = Table(title=f"edgetune fleet status: {r['address']}")
    for col in ("board", "host", "kind", "state", "measuring", "done", "disturbed"):
        t.add_column(col, justify="right" if col in ("done", "disturbed") else "left")
    for b in r["boards"]:
        host = (b["host"] or b["address"] or "?") + (" (head)" if b.get("head") else "")
        t.add_row(b["node"][:8], host, b["kind"], b["state"], b["measuring"] or "-", str(b["done"]),
                  str(b["disturbed"]))
    console.print(t)
    for b in r["boards"]:
        if b.get("reason") and b["state"] in ("refused", "lost", "dead"):
            console.print(f"  {b['node'][:8]}: {b['reason']}", soft_wrap=True)
    k = Table(title="kinds (CPU fingerprint id: summary)")
    for col in ("kind", "CPU", "boards alive"):
        k.add_column(col)
    for kind in r["kinds"]:
        k.add_row(kind["kind"], kind["summary"] or "? (not described yet)", f"{kind['alive']}/{kind['boards']}")
    console.print(k)
    if not p:
        console.print("no profile has run on this cluster yet")
        return
    started = time.strftime("%H:%M:%S", time.localtime(p["started_at"]))
    console.print(f"profile: {p['model']} on kind {p['kind']}, phase: {p['phase']} (started {started}; db {p['db']})")
    nxt = "; next: " + ", ".join(q["next"]) if q.get("next") else ""
    console.print(f"queue: {q['waiting']} waiting, {r['running']} measuring{nxt}", soft_wrap=True)
    console.print(f"throughput: {th['measurements']} measurements in {th['seconds']:.1f} s = "
                  f"{th['per_second']:.2f}/s ({th['disturbed']} disturbed by foreign load)")
