"""The fleet's parts that need no Ray: board identity and the versions rule, the coordinator's state, the
board's stand-in DB replayed on a real one, the `fleet join` command line, and the flags' one-line errors."""

from __future__ import annotations

import json
import sys

import pytest

from edgetune.cli import main
from edgetune.device.cpu import fingerprint, fingerprint_id, library_versions, versions_id
from edgetune.errors import EdgetuneError
from edgetune.fleet import cluster
from edgetune.fleet.identity import (
    BoardIdentity,
    board_resources,
    kind_id,
    kinds_of,
    local_identity,
    refusal,
    version_mismatch,
)
from edgetune.fleet.join import join_command
from edgetune.fleet.rows import BoardRows, NodeWork, replay
from edgetune.fleet.state import FleetState
from edgetune.measure.db import ProfileDB
from edgetune.measure.timing import Timing

A76 = {"cpu": "Cortex-A76", "arch": "aarch64", "cores": 4, "flags": ["asimd"]}


def _timing(ms: float = 1.0, disturbed: bool = False) -> Timing:
    return Timing(median_ms=ms, p10_ms=ms, p90_ms=ms, min_ms=ms, spread=0.0, runs=5, foreign_cores=0.0,
                  disturbed=disturbed, ci_rel=0.01)


def test_kind_and_versions_ids_are_the_devices_own():
    assert kind_id(fingerprint()) == fingerprint_id()
    me = local_identity()
    assert me.kind == fingerprint_id() and me.versions_id == versions_id() and not me.simulated
    assert kinds_of(board_resources("abc")) == ["abc"] and kinds_of({"CPU": 2.0}) == []


def test_the_environment_simulates_another_board(monkeypatch):
    monkeypatch.setenv("EDGETUNE_FLEET_FINGERPRINT", json.dumps(A76))
    monkeypatch.setenv("EDGETUNE_FLEET_VERSIONS", json.dumps({"numpy": "1.0"}))
    me = local_identity()
    assert me.simulated and me.kind == kind_id(A76) and me.versions["numpy"] == "1.0"
    assert me.describe()["cpu"] == "Cortex-A76" and me.describe()["features"]["NEON"]
    monkeypatch.setenv("EDGETUNE_FLEET_FINGERPRINT", "[1, 2")
    with pytest.raises(EdgetuneError, match="EDGETUNE_FLEET_FINGERPRINT: not JSON"):
        local_identity()


def test_a_board_is_refused_in_one_line_naming_it_and_the_versions():
    head = library_versions()
    ok = BoardIdentity("pi-1", A76, {**head, "blas_core": "ARMV8"})
    assert refusal(ok, kind_id(A76), head, None, "pi-1 (node 1)") is None  # the BLAS core follows the CPU
    old = BoardIdentity("pi-2", A76, {**head, "numpy": "1.26.4"})
    why = refusal(old, kind_id(A76), head, None, "pi-2 (node 2)")
    assert why == f"board pi-2 (node 2) refused: library versions differ from the head's: numpy 1.26.4 (head " \
                  f"{head['numpy']})"
    wrong_kind = refusal(ok, "0123456789ab", head, None, "pi-1 (node 1)")
    assert wrong_kind and "declares kind 0123456789ab" in wrong_kind and kind_id(A76) in wrong_kind
    other_core = BoardIdentity("pi-3", A76, {**head, "blas_core": "NEOVERSEN1"})
    why = refusal(other_core, kind_id(A76), head, ok.versions, "pi-3 (node 3)")
    assert why and "NEOVERSEN1 (other boards ARMV8)" in why and "\n" not in why
    assert version_mismatch({"a": "1"}, {"a": "1", "b": "2"}) == "b missing (head 2)"
    assert version_mismatch({"torch": "2.13.0"}, {"torch": "2.13.0+cpu"}) is None  # aarch64 vs x86 wheels


def test_the_coordinator_tracks_boards_queue_and_throughput():
    st = FleetState()
    st.register("n1", {"host": "pi-1", "kind": "k", "summary": "Cortex-A76, aarch64, 4 cores"})
    st.begin("mnist_cnn", "k", "/db")
    st.phase("verifying and timing primitives", 3, ["conv1", "conv2", "fc"])
    st.dispatch("n1", "conv1", 2, ["conv2", "fc"])
    snap = st.snapshot()
    assert snap["running"] == 1 and snap["boards"][0]["measuring"] == "conv1" and snap["queue"]["waiting"] == 2
    st.result("n1", 5, 1)
    st.mark("n2", "refused", "numpy differs")
    st.end()
    snap = st.snapshot()
    assert snap["throughput"]["measurements"] == 5 and snap["throughput"]["disturbed"] == 1
    assert snap["throughput"]["per_second"] > 0 and snap["profile"]["phase"] == "done"
    assert {b["node"]: b["state"] for b in snap["boards"]} == {"n1": "idle", "n2": "refused"}


def test_the_boards_writes_replay_into_the_same_rows(tmp_path):
    rows = BoardRows()
    rows.load(NodeWork("conv", "conv"))
    rows.put_verification("sig", "p", True, 1e-6)
    rows.put_node("sig", "p", 2, _timing(3.0, disturbed=True), 10, 20, 30, 40)
    assert rows.get_verification("sig", "p").ok and rows.get_node("sig", "p", 2).median_ms == 3.0
    with ProfileDB(tmp_path / "replayed.sqlite", "d", "v") as db, \
            ProfileDB(tmp_path / "direct.sqlite", "d", "v") as ref:
        replay(rows.calls, db)
        ref.put_verification("sig", "p", True, 1e-6)
        ref.put_node("sig", "p", 2, _timing(3.0, disturbed=True), 10, 20, 30, 40)
        got, want = db.get_node("sig", "p", 2), ref.get_node("sig", "p", 2)
        assert (got.disturbed, got.resident_bytes, got.transient_bytes) == (True, 30, 40)
        assert {k: v for k, v in vars(got).items() if k != "measured_at"} == \
               {k: v for k, v in vars(want).items() if k != "measured_at"}
        assert db.count() == ref.count()
        with pytest.raises(ValueError, match="not a ProfileDB write"):
            replay([("put_plan", ())], db)
    rows.load(NodeWork("next", "next"))  # a new node: the previous one's rows and calls are gone
    assert rows.get_node("sig", "p", 2) is None and rows.calls == []


def test_join_runs_ray_start_with_the_kinds_slot(capsys):
    cmd = join_command("10.0.0.5:6379", local_identity(), num_cpus=4)
    assert cmd[1:3] == ["start", "--address=10.0.0.5:6379"] and "--num-cpus=4" in cmd
    resources = json.loads(next(c for c in cmd if c.startswith("--resources="))[len("--resources="):])
    assert resources == {"edgetune-device": 1.0, f"edgetune-device-{fingerprint_id()}": 1.0}
    assert main(["fleet", "join", "10.0.0.5:6379", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == fingerprint_id() and not out["started"] and out["command"][1] == "start"


@pytest.mark.parametrize("argv, message", [
    (["profile", "mnist_cnn", "--device-kind", "abc"], "--device-kind needs --cluster"),
    (["profile", "mnist_cnn", "--cluster", "nonsense"], "expected HOST:PORT"),
    (["profile", "mnist_cnn", "--cluster", "127.0.0.1:1"], "no Ray head answers there"),
    (["fleet", "status", "--cluster", "127.0.0.1:1"], "no Ray head answers there"),
    (["fleet"], "give an action"),
])
def test_bad_fleet_flags_are_one_line_errors(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_without_ray_the_message_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(EdgetuneError, match=r"pip install 'edgetune\[fleet\]'"):
        cluster.ray_module()


def test_loopback_addresses_are_recognised():
    assert cluster.is_loopback("127.0.0.1:6379") and cluster.is_loopback("localhost:1")
    assert cluster.is_loopback("[::1]:6379") and not cluster.is_loopback("10.1.2.3:6379")
