"""`edgetune fleet status` as data: every board the cluster has (live or dead), the kinds with their CPU
summaries, what each board is measuring, the queue and the throughput of the current (or last) profile.

The boards come from Ray's node table (what has joined), their descriptions and work from the coordinator
(what edgetune knows of them); a board no profile has used yet is listed with its kind and "idle", one that
left the cluster as "dead".
"""

from __future__ import annotations

from typing import Any

from edgetune.fleet.cluster import Fleet


def status(fleet: Fleet) -> dict[str, Any]:
    """The cluster's boards merged with the coordinator's snapshot (empty when no profile ran)."""
    coord = fleet.coordinator(create=False)
    snap: dict[str, Any] = fleet.ray.get(coord.snapshot.remote(), timeout=30) if coord is not None else {}
    known = {b["node"]: b for b in snap.get("boards", [])}
    boards = []
    for n in fleet.nodes():
        if not n.is_board:
            continue
        b = {"node": n.node, "host": "", "kind": n.kinds[0] if n.kinds else "", "summary": "", "state": "idle",
             "measuring": "", "done": 0, "disturbed": 0, "reason": "", "simulated": False, **known.get(n.node, {})}
        b["address"], b["alive"], b["head"] = n.address, n.alive, n.is_head
        if not n.alive:
            b.update(state="dead", measuring="")
        boards.append(b)
    listed = {b["node"] for b in boards}
    for node, b in known.items():  # boards Ray no longer lists (removed, or its table forgot them)
        if node not in listed:
            boards.append({**b, "address": "", "alive": False, "head": False, "state": "dead", "measuring": ""})
    kinds: dict[str, dict[str, Any]] = {}
    for b in boards:
        k = kinds.setdefault(b["kind"], {"kind": b["kind"], "summary": "", "boards": 0, "alive": 0})
        k["boards"] += 1
        k["alive"] += int(b["alive"])
        k["summary"] = k["summary"] or b["summary"]
    return {"address": fleet.address, "boards": boards, "kinds": sorted(kinds.values(), key=lambda k: k["kind"]),
            "profile": snap.get("profile", {}), "queue": snap.get("queue", {"waiting": 0, "next": []}),
            "running": sum(b["state"] == "measuring" for b in boards),
            "throughput": snap.get("throughput", {"measurements": 0, "disturbed": 0, "seconds": 0.0,
                                                  "per_second": 0.0})}
