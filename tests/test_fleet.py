"""The device fleet on one machine: a local Ray cluster (127.0.0.1 only) whose nodes stand for boards, shared
by the whole module (Ray start-up takes seconds). Five boards: the head and two more of this machine's kind,
one simulating a foreign CPU, one with other library versions. What must hold: a profile across the boards
writes exactly the rows a local profile writes; the foreign board gets only its own kind's work; the odd
versions are refused in one line; a rerun is all cached (the CLI path); a board killed mid-profile loses
nothing; `fleet status` shows boards, kinds, work, queue and throughput."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

# Before Ray loads: a loopback cluster stays on loopback, and Ray reports nothing anywhere.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
pytest.importorskip("ray", reason="the fleet needs Ray (the optional extra: pip install 'edgetune[fleet]')")

from edgetune.cli import main  # noqa: E402 - after the Ray environment above
from edgetune.device.cpu import fingerprint_id, versions_id  # noqa: E402
from edgetune.fleet.cluster import Fleet  # noqa: E402
from edgetune.fleet.identity import kind_id  # noqa: E402
from edgetune.fleet.local import LocalCluster, SimulatedBoard  # noqa: E402
from edgetune.fleet.runner import FleetRunner  # noqa: E402
from edgetune.fleet.status import status  # noqa: E402
from edgetune.graph.ir import Graph, Node, Value  # noqa: E402
from edgetune.graph.onnx_export import to_onnx  # noqa: E402
from edgetune.measure.db import ProfileDB  # noqa: E402
from edgetune.measure.profiler import Profiler  # noqa: E402
from edgetune.user_model import load_model  # noqa: E402

CAP = 0.01  # seconds of timing per measurement: the rows matter here, not the values
THREADS = [1]  # one thread count: no pruning, so which rows exist does not depend on the timings
FOREIGN = {"cpu": "Simulated Cortex-A76 board", "arch": "aarch64", "cores": 4, "flags": ["asimd", "asimddp", "neon"]}
OLD_NUMPY = {"numpy": "1.26.4"}
HERE = fingerprint_id()


def _tiny_graph() -> Graph:
    """x -> Sigmoid -> Tanh -> Relu -> y: three nodes with four candidates each, converters, ORT pairs,
    switches between three pools, dispatch and segments: every kind of work, in seconds."""
    nodes = [Node("a", "Sigmoid", ["x"], ["h1"]), Node("b", "Tanh", ["h1"], ["h2"]), Node("c", "Relu", ["h2"], ["y"])]
    values = {k: Value(k, (1, 4, 8, 8)) for k in ("x", "h1", "h2", "y")}
    return Graph("tiny3", nodes, ["x"], ["y"], values, {})


def _keys(db: ProfileDB, with_device: bool = True) -> dict[str, set[tuple]]:
    """Every row's key, per table (ok included for verifications)."""
    dev = ("device, versions, " if with_device else "")
    queries = {"nodes": f"SELECT {dev}sig, primitive, threads FROM nodes",
               "verifications": f"SELECT {dev}sig, primitive, ok FROM verifications",
               "converters": f"SELECT {dev}converter, shape, threads FROM converters"}
    return {t: set(db.con.execute(q).fetchall()) for t, q in queries.items()}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The cluster, a driver connected to it, the tiny model as an ONNX file and its local profile."""
    tmp = tmp_path_factory.mktemp("fleet")
    model = tmp / "tiny3.onnx"
    model.write_bytes(to_onnx(_tiny_graph()).SerializeToString())
    graph = load_model(str(model))
    local = ProfileDB(tmp / "local.sqlite")
    Profiler(graph, local, THREADS, time_cap_s=CAP, isolate=False).run()
    lc = LocalCluster(SimulatedBoard(), (SimulatedBoard(), SimulatedBoard(), SimulatedBoard(fingerprint=FOREIGN),
                                         SimulatedBoard(versions=OLD_NUMPY)))
    f = None
    try:
        f = Fleet(lc.address)
        nodes = {lc.node_id(n): b for n, b in lc.boards}
        yield SimpleNamespace(lc=lc, fleet=f, tmp=tmp, model=model, graph=graph, local=_keys(local), nodes=nodes,
                              head=lc.node_id(lc.cluster.head_node), first_db=None)
    finally:
        local.close()
        if f is not None:
            f.close()
        lc.shutdown()


def _profile(fx, kind: str | None, db_name: str, **kw):
    """A profile of the tiny model on the fleet into a fresh DB: (runner, summary, db, warnings)."""
    warnings: list[str] = []
    runner = FleetRunner(fx.fleet, kind, warn=warnings.append, **kw).start()
    db = ProfileDB(fx.tmp / db_name, runner.device_id, runner.versions_id)
    try:
        summary = Profiler(fx.graph, db, THREADS, time_cap_s=CAP, isolate=False, runner=runner).run()
    finally:
        runner.close()
    return runner, summary, db, warnings


def test_three_boards_write_the_local_keys_and_the_others_get_nothing(fleet):
    seen = {}

    def look(node: str, description: str) -> None:  # `fleet status` as it is mid-profile
        if len(seen) == 0:
            seen.update(status(fleet.fleet))

    runner, s, db, warnings = _profile(fleet, None, "three.sqlite", on_result=look)
    fleet.first_db = db.path
    assert runner.kind == HERE and (db.device_id, db.versions_id) == (HERE, versions_id())
    assert _keys(db) == fleet.local
    assert s.new_measurements == sum(len(v) for v in fleet.local.values())
    measured_by = {node for node, _ in runner.log}
    assert measured_by and all(fleet.nodes[n].kind == HERE and fleet.nodes[n].versions is None for n in measured_by)
    refused = [w for w in warnings if "refused" in w]
    assert len(refused) == 1 and "numpy 1.26.4 (head " in refused[0] and "\n" not in refused[0]
    # mid-profile status: five boards, two kinds, the refused one with its reason, work under way
    assert len(seen["boards"]) == 5 and {k["kind"] for k in seen["kinds"]} == {HERE, kind_id(FOREIGN)}
    assert seen["profile"]["model"] == "tiny3" and seen["throughput"]["measurements"] > 0
    assert [b["state"] for b in seen["boards"] if "numpy" in b["reason"]] == ["refused"]


def test_a_foreign_kind_is_measured_on_its_own_board_only(fleet):
    foreign = kind_id(FOREIGN)
    runner, _, db, _ = _profile(fleet, foreign[:6], "foreign.sqlite")
    assert db.device_id == foreign and runner.device()["cpu"] == FOREIGN["cpu"]
    assert {fleet.nodes[n].fingerprint is not None for n, _ in runner.log} == {True}
    assert _keys(db, with_device=False) == {t: {k[2:] for k in rows} for t, rows in fleet.local.items()}
    with ProfileDB(db.path) as here:  # this machine's kind has no row in that file
        assert here.count() == {"nodes": 0, "converters": 0, "verifications": 0, "plans": 0, "peer_memory": 0}


def test_killing_a_board_mid_profile_loses_nothing(fleet):
    """It takes a board away for good: only the CLI rerun comes after it."""
    killed: list[str] = []
    runner_box: list[FleetRunner] = []

    def kill_one(node: str, description: str) -> None:
        if killed:
            return
        r = runner_box[0]
        busy = [b for b in r.boards.values() if b.state == "busy" and b.node.node != fleet.head]
        victim = (busy or [b for b in r.boards.values() if b.state == "idle" and b.node.node != fleet.head])[0]
        killed.append(victim.node.node)
        fleet.lc.kill_board(next(n for n, _ in fleet.lc.boards if fleet.lc.node_id(n) == victim.node.node))

    warnings: list[str] = []
    runner = FleetRunner(fleet.fleet, None, warn=warnings.append, on_result=kill_one).start()
    runner_box.append(runner)
    db = ProfileDB(fleet.tmp / "killed.sqlite", runner.device_id, runner.versions_id)
    try:
        Profiler(fleet.graph, db, THREADS, time_cap_s=CAP, isolate=False, runner=runner).run()
    finally:
        runner.close()
    assert killed and any("lost" in w and killed[0][:8] in w and "goes back to the queue" in w for w in warnings)
    assert _keys(db) == fleet.local


def test_a_rerun_through_the_cli_is_all_cached_and_status_reports_it(fleet, capsys):
    assert fleet.first_db is not None, "runs after the three-board profile (and the killed board)"
    code = main(["profile", str(fleet.model), "--cluster", fleet.lc.address, "--db", str(fleet.first_db),
                 "--threads", "1", "--time-cap", str(CAP), "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    out = json.loads(printed.out)
    assert out["new_measurements"] == 0 and out["cluster"]["kind"] == HERE
    # tune compares plans on this machine, so it refuses to profile another kind's boards, before any work
    assert main(["tune", str(fleet.model), "--cluster", fleet.lc.address, "--device-kind", kind_id(FOREIGN),
                 "--db", str(fleet.tmp / "tune.sqlite"), "--out", str(fleet.tmp / "tune")]) != 0
    err = capsys.readouterr().err
    assert "tune measures its candidate plans end to end on this machine" in err and len(err.splitlines()) == 1
    assert not (fleet.tmp / "tune.sqlite").exists()
    assert main(["fleet", "status", "--cluster", fleet.lc.address, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["profile"]["phase"] == "done" and st["queue"]["waiting"] == 0
    assert len(st["boards"]) == 5 and [b["state"] for b in st["boards"] if not b["alive"]] == ["dead"]
    assert [b["node"] for b in st["boards"] if b["head"]] == [fleet.head]
