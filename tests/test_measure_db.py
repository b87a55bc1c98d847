"""ProfileDB: round trips, durability when killed, refusal of files that are not ours, node signatures."""

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Activation, Graph, Node, Value
from edgetune.measure import ProfileDB, Timing, default_db_path, node_signature
from edgetune.measure.db import Measured, NodeRecord

T = Timing(median_ms=2.0, p10_ms=1.8, p90_ms=2.5, min_ms=1.7, spread=0.35, runs=40, foreign_cores=0.05,
           disturbed=False, ci_rel=0.03)
T_BAD = Timing(median_ms=9.0, p10_ms=8.0, p90_ms=16.0, min_ms=7.5, spread=0.9, runs=5, foreign_cores=1.2,
               disturbed=True, ci_rel=0.5)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _refused(path: Path, match: str) -> None:
    before = _snapshot(path.parent)
    with pytest.raises(EdgetuneError, match=match) as e:
        ProfileDB(path, device_id="dev", versions_id="ver")
    assert str(path) in str(e.value)
    assert "\n" not in str(e.value)
    assert _snapshot(path.parent) == before  # nothing written, nothing created


def test_round_trip_every_table(tmp_path):
    with ProfileDB(tmp_path / "p.sqlite", device_id="dev", versions_id="ver") as db:
        assert db.get_node("sig", "conv.x", 1) is None
        db.put_node("sig", "conv.x", 1, T, weight_bytes=1024, workspace_bytes=64)
        db.put_node("sig", "conv.x", 2, T_BAD)
        db.put_converter("nchw_to_nhwc", (1, 64, 56, 56), 1, T)
        db.put_verification("sig", "conv.x", True, 1.5e-6)
        db.put_verification("sig", "conv.bad", False, None, "shape mismatch")
        db.put_plan("model", "abc123", T, extra='{"peak_rss": 1}')

        n = db.get_node("sig", "conv.x", 1)
        assert n is not None and n.median_ms == 2.0 and n.p10_ms == 1.8 and n.p90_ms == 2.5 and n.runs == 40
        assert n.weight_bytes == 1024 and n.workspace_bytes == 64 and n.disturbed is False
        assert n.resident_bytes is None and n.transient_bytes is None  # memory not measured
        db.put_node("sig", "conv.mem", 1, T, 1024, 64, resident_bytes=4096, transient_bytes=0)
        m = db.get_node("sig", "conv.mem", 1)
        assert (m.resident_bytes, m.transient_bytes) == (4096, 0)
        assert db.get_node("sig", "conv.x", 2).disturbed is True
        c = db.get_converter("nchw_to_nhwc", [1, 64, 56, 56], 1)
        assert c is not None and c.shape == (1, 64, 56, 56) and c.median_ms == 2.0
        v = db.get_verification("sig", "conv.bad")
        assert v is not None and not v.ok and v.rel_error is None and v.reason == "shape mismatch"
        assert db.get_verification("sig", "conv.x").rel_error == pytest.approx(1.5e-6)
        p = db.get_plan("model", "abc123")
        assert p is not None and p.extra == '{"peak_rss": 1}' and p.foreign_cores == 0.05
        assert [(r.primitive, r.threads) for r in db.nodes("sig")] == [("conv.mem", 1), ("conv.x", 1), ("conv.x", 2)]
        assert db.count() == {"nodes": 3, "converters": 1, "verifications": 2, "plans": 1, "peer_memory": 0}

        db.put_node("sig", "conv.x", 1, T_BAD)  # a re-measurement replaces the row
        assert db.get_node("sig", "conv.x", 1).median_ms == 9.0
        assert db.count()["nodes"] == 3


def test_timing_and_records_refuse_positional_construction():
    # nine positional floats and flags once built both; Measured had disturbed/foreign_cores swapped
    with pytest.raises(TypeError):
        Timing(1.0, 0.9, 1.1, 0.9, 0.2, 5, 0.0, False, 0.01)
    with pytest.raises(TypeError):
        Measured(1.0, 0.9, 1.1, 0.9, 0.2, 5, 0.0, False, 0.0)
    with pytest.raises(TypeError):
        NodeRecord(1.0, 0.9, 1.1, 0.9, 0.2, 5, 0.0, False, 0.0)


def test_timing_and_measured_share_their_field_order():
    shared = [f.name for f in fields(Measured) if f.name != "measured_at"]
    assert shared == [f.name for f in fields(Timing)][:len(shared)]


@pytest.mark.parametrize("disturbed", [False, True])
def test_timing_round_trips_through_every_table_field_by_field(tmp_path, disturbed):
    # values told apart by type and size, so a swapped column (disturbed <-> foreign_cores) shows
    t = Timing(median_ms=3.25, p10_ms=3.0, p90_ms=4.5, min_ms=2.75, spread=0.46, runs=17, foreign_cores=0.125,
               disturbed=disturbed, ci_rel=0.04)
    shared = [f.name for f in fields(Measured) if f.name != "measured_at"]
    with ProfileDB(tmp_path / "p.sqlite", device_id="dev", versions_id="ver") as db:
        db.put_node("sig", "prim", 2, t)
        db.put_converter("conv", (1, 3), 1, t)
        db.put_plan("model", "hash", t)
        for rec in (db.get_node("sig", "prim", 2), db.get_converter("conv", (1, 3), 1), db.get_plan("model", "hash")):
            assert {n: getattr(rec, n) for n in shared} == {n: getattr(t, n) for n in shared}
            assert type(rec.disturbed) is bool and rec.measured_at > 0


def test_second_instance_sees_rows_and_ids_isolate(tmp_path):
    path = tmp_path / "p.sqlite"
    a = ProfileDB(path, device_id="dev", versions_id="ver")
    b = ProfileDB(path, device_id="dev", versions_id="ver")
    other = ProfileDB(path, device_id="other-cpu", versions_id="ver")
    try:
        a.put_node("sig", "conv.x", 1, T)
        assert b.get_node("sig", "conv.x", 1) is not None
        assert other.get_node("sig", "conv.x", 1) is None and other.count()["nodes"] == 0
    finally:
        for db in (a, b, other):
            db.close()
    with ProfileDB(path, device_id="dev", versions_id="ver") as again:
        assert again.count()["nodes"] == 1
    with pytest.raises(EdgetuneError, match="closed"):
        a.count()


def test_killed_writer_keeps_committed_rows(tmp_path):
    path = tmp_path / "p.sqlite"
    script = textwrap.dedent(f"""
        import os
        from edgetune.measure import ProfileDB, Timing
        t = Timing(median_ms=1.0, p10_ms=0.9, p90_ms=1.1, min_ms=0.9, spread=0.2, runs=5, foreign_cores=0.0,
                   disturbed=False, ci_rel=0.01)
        db = ProfileDB({str(path)!r}, device_id="dev", versions_id="ver")
        for i in range(100):
            db.put_node(f"sig{{i}}", "p", 1, t)
            if i == 40:
                os._exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    with ProfileDB(path, device_id="dev", versions_id="ver") as db:
        assert db.count()["nodes"] == 41
        assert db.get_node("sig40", "p", 1) is not None and db.get_node("sig41", "p", 1) is None


def test_random_bytes_refused_untouched(tmp_path):
    path = tmp_path / "p.sqlite"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    _refused(path, "not an SQLite")


def test_corrupt_sqlite_refused_untouched(tmp_path):
    path = tmp_path / "p.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(1).bytes(8192))
    _refused(path, "corrupt|cannot open")


def test_other_apps_sqlite_refused_untouched(tmp_path):
    path = tmp_path / "p.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE songs (title TEXT)")
    con.commit()
    con.close()
    _refused(path, "another application")


def test_newer_schema_refused_untouched(tmp_path):
    path = tmp_path / "p.sqlite"
    ProfileDB(path, device_id="dev", versions_id="ver").close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='99' WHERE key='schema'")
    con.commit()
    con.close()
    _refused(path, "newer edgetune")


def test_read_only_folder_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(EdgetuneError, match="not writable") as e:
            ProfileDB(ro / "p.sqlite", device_id="dev", versions_id="ver")
        assert str(ro) in str(e.value)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(stat.S_IRWXU)


def test_read_only_file_refused_untouched(tmp_path):
    path = tmp_path / "p.sqlite"
    with ProfileDB(path, device_id="dev", versions_id="ver") as db:
        db.put_node("sig", "p", 1, T)
    path.chmod(stat.S_IRUSR)
    try:
        _refused(path, "read-only")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_folder_that_is_a_file_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EdgetuneError, match="cannot create") as e:
        ProfileDB(blocker / "sub" / "p.sqlite", device_id="dev", versions_id="ver")
    assert str(blocker) in str(e.value)


def test_default_db_path_and_default_ids(tmp_path):
    assert default_db_path().name == "profile.sqlite" and "edgetune" in str(default_db_path())
    with ProfileDB(tmp_path / "p.sqlite") as db:
        assert len(db.device_id) == 12 and len(db.versions_id) == 12


# ---- node signatures ---------------------------------------------------------------------------

def _conv_graph(name: str, stride: int, seed: int, act: Activation | None = None) -> tuple[Node, Graph]:
    rng = np.random.default_rng(seed)
    out_hw = 8 // stride
    node = Node(name, "Conv", ["x", f"{name}_w", f"{name}_b"], [f"{name}_y"],
                attrs={"strides": [stride, stride], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1,
                       "kernel_shape": [3, 3]},
                activation=act)
    values = {"x": Value("x", (1, 3, 8, 8)), f"{name}_y": Value(f"{name}_y", (1, 4, out_hw, out_hw))}
    inits = {f"{name}_w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             f"{name}_b": rng.standard_normal(4).astype(np.float32)}
    return node, Graph("g", [node], ["x"], [f"{name}_y"], values, inits)


def test_node_signature_ignores_names_and_weights():
    a = node_signature(*_conv_graph("layer1", 1, seed=0))
    b = node_signature(*_conv_graph("other_model/conv_7", 1, seed=42))
    assert a == b
    assert "layer1" not in a and a.startswith("Conv|in=1x3x8x8:float32,c4x3x3x3:float32,c4:float32|")


def test_node_signature_sees_strides_and_activation():
    base = node_signature(*_conv_graph("c", 1, seed=0))
    assert node_signature(*_conv_graph("c", 2, seed=0)) != base
    relu6 = node_signature(*_conv_graph("c", 1, seed=0, act=Activation("Clip", {"min": 0.0, "max": 6.0})))
    assert relu6 != base and relu6.endswith("act=Clip(max=6,min=0)")


def test_node_signature_attribute_order_irrelevant():
    n1, g = _conv_graph("c", 1, seed=0)
    n2 = Node("d", "Conv", n1.inputs, n1.outputs, attrs=dict(reversed(list(n1.attrs.items()))))
    assert node_signature(n1, g) == node_signature(n2, g)
    assert os.path.sep not in node_signature(n1, g)
