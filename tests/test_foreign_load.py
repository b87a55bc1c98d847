"""Foreign load beside a profile: with CPU-burning processes on every core, each row the profiler stores is
flagged `disturbed` or was measured in a quiet window (foreign load within the threshold); none is
silently stored as truth."""

import subprocess
import sys

import pytest
from onnx import helper

from edgetune.device.cpu import usable_cores
from edgetune.graph import load_graph
from edgetune.measure.db import ProfileDB
from edgetune.measure.profiler import Profiler
from tests.graph_cases import mk, vi

MAX_FOREIGN = 0.3  # the timing harness's default max_foreign_cores
_BURN = "import time\nprint('go', flush=True)\nend = time.time() + 90\nwhile time.time() < end:\n    pass\n"


@pytest.fixture
def burners():
    procs = [subprocess.Popen([sys.executable, "-c", _BURN], stdout=subprocess.PIPE) for _ in range(usable_cores())]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == b"go"
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="foreign load is read from /proc/stat")
def test_measurements_beside_a_cpu_burner_are_flagged_never_silently_stored(tmp_path, burners):
    graph = load_graph(mk([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                           helper.make_node("Sigmoid", ["r"], ["y"], name="sig")], [vi("x", [1, 64])],
                          [vi("y", None)]), name="rs")
    db = ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v")
    s = Profiler(graph, db, [1], time_cap_s=0.05, isolate=False).run()
    rows = [("node", r.primitive, bool(r.disturbed), r.foreign_cores) for r in db.nodes()]
    rows += [("converter", c, bool(d), f) for c, d, f in db.con.execute(
        "SELECT converter, disturbed, foreign_cores FROM converters")]
    assert len(rows) >= 6
    silent = [r for r in rows if not r[2] and (r[3] is None or r[3] > MAX_FOREIGN)]
    assert not silent, f"stored as truth under foreign load: {silent}"
    flagged = [r for r in rows if r[2]]
    assert flagged and all(r[3] is not None and r[3] > MAX_FOREIGN for r in flagged)
    assert s.disturbed >= 1
