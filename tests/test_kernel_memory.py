"""Measured per-kernel memory (edgetune.runtime.kernel_memory), the ProfileDB columns that keep it, the
schema-1 migration, and the executor's use of measured figures."""

import sqlite3

import numpy as np
import pytest

from edgetune import zoo
from edgetune.graph import load_graph
from edgetune.kernels.base import FunctionKernel, Workspace
from edgetune.measure import ProfileDB, Timing
from edgetune.runtime import kernel_memory as km
from edgetune.runtime.executor import Executor
from edgetune.runtime.plan import Plan

MB = 1 << 20
needs_proc = pytest.mark.skipif(not km.available(), reason="needs Linux /proc RSS and clear_refs")
T = Timing(median_ms=2.0, p10_ms=1.8, p90_ms=2.5, min_ms=1.7, spread=0.35, runs=40, foreign_cores=0.05,
           disturbed=False, ci_rel=0.03)


@needs_proc
def test_kept_buffer_is_resident():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)

    def build():
        buf = np.ones(50 * MB // 4, dtype=np.float32)  # touched: 50 MB resident
        return FunctionKernel(lambda a: [a + buf[: a.size]], workspace_bytes=buf.nbytes)

    kernel, mem = km.measure_kernel_memory(build, [x])
    assert kernel(x)[0].shape == x.shape
    assert mem.resident_bytes == pytest.approx(50 * MB, rel=0.15)
    assert mem.transient_bytes < 5 * MB


@needs_proc
def test_shared_workspace_is_not_charged_to_the_kernel():
    """A kernel's request from the shared workspace is counted once per plan (Executor.memory), not in the
    resident bytes of the kernel whose request grew the arena."""
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)

    def build():
        scratch = Workspace().request(((50 * MB // 4,), np.float32))

        def run(a):
            (buf,) = scratch.arrays()
            buf[: a.size] = a
            return [buf[: a.size] + 1]

        return FunctionKernel(run, scratch=scratch)

    kernel, mem = km.measure_kernel_memory(build, [x])
    assert kernel.shared_workspace_bytes == kernel.workspace_bytes == 50 * MB
    np.testing.assert_array_equal(kernel(x)[0], x + 1)
    assert mem.resident_bytes < 5 * MB and mem.transient_bytes < 5 * MB


@needs_proc
def test_per_call_temporary_is_transient_not_resident():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)

    def run(a):
        tmp = np.ones(40 * MB // 4, dtype=np.float32)  # allocated and freed within each call
        return [a * float(tmp[-1])]

    _, mem = km.measure_kernel_memory(lambda: FunctionKernel(run), [x])
    assert mem.transient_bytes == pytest.approx(40 * MB, rel=0.15)
    assert mem.resident_bytes < 2 * MB


@needs_proc
def test_noise_floor_and_output_bytes():
    x = np.zeros(16, np.float32)
    _, mem = km.measure_kernel_memory(lambda: FunctionKernel(lambda a: [a + 1]), [x])
    assert mem == km.KernelMemory(0, 0)
    assert km.output_bytes([np.zeros(10, np.float32), (np.zeros(3, np.float64),)]) == 64


_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE nodes (device TEXT, versions TEXT, sig TEXT, primitive TEXT, threads INTEGER, median_ms REAL,
    p10_ms REAL, p90_ms REAL, min_ms REAL, spread REAL, runs INTEGER, disturbed INTEGER, foreign_cores REAL,
    measured_at REAL, weight_bytes INTEGER, workspace_bytes INTEGER,
    PRIMARY KEY (device, versions, sig, primitive, threads));
INSERT INTO meta VALUES ('app', 'edgetune');
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO nodes VALUES ('dev', 'ver', 'sigA', 'conv.x', 1, 2.0, 1.8, 2.5, 1.7, 0.3, 40, 0, 0.1, 0, 1024, 64);
INSERT INTO nodes VALUES ('dev', 'ver', 'sigB', 'conv.y', 2, 3.0, 2.8, 3.5, 2.7, 0.3, 40, 1, 0.1, 0, 2048, 0);
"""


def test_schema_1_file_is_migrated_keeping_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_1)
    con.close()
    with ProfileDB(path, device_id="dev", versions_id="ver") as db:
        a, b = db.get_node("sigA", "conv.x", 1), db.get_node("sigB", "conv.y", 2)
        assert a.median_ms == 2.0 and a.weight_bytes == 1024 and a.workspace_bytes == 64
        assert a.resident_bytes is None and a.transient_bytes is None
        assert b.disturbed is True and b.weight_bytes == 2048
        assert db.count()["nodes"] == 2
        db.put_node("sigC", "conv.x", 1, T, 10, 20, resident_bytes=3 * MB, transient_bytes=MB)
    with ProfileDB(path, device_id="dev", versions_id="ver") as db:  # reopening a migrated file is a no-op
        c = db.get_node("sigC", "conv.x", 1)
        assert (c.resident_bytes, c.transient_bytes) == (3 * MB, MB)
        assert db.count()["nodes"] == 3
    con = sqlite3.connect(path)
    assert dict(con.execute("SELECT key, value FROM meta"))["schema"] == "2"
    con.close()


@pytest.fixture(scope="module")
def resnet20():
    return load_graph(zoo.build_onnx("resnet20_cifar"), name="resnet20_cifar")


@needs_proc
def test_executor_measures_kernels_and_prefers_measured_figures(resnet20):
    plan = Plan.builtin("blas", resnet20, 1)
    plain = Executor(resnet20, plan, check=False).memory()
    assert not plain.measured and plain.peak_transient_bytes == 0
    assert plain.resident_bytes == plain.weight_bytes + plain.workspace_bytes
    ex = Executor(resnet20, plan, check=False, measure_memory=True)
    mem = ex.memory()
    assert mem.measured and set(ex.kernel_memory) == set(ex.kernels)
    assert mem.resident_bytes >= mem.weight_bytes + mem.shared_workspace_bytes  # weights, and the arena once
    assert mem.total_bytes == mem.resident_bytes + mem.peak_activation_bytes + mem.peak_transient_bytes
    d = mem.to_dict()
    for key in ("weight_bytes", "weight_bytes_by_precision", "workspace_bytes", "largest_workspace_bytes",
                "peak_activation_bytes", "total_bytes", "resident_bytes", "peak_transient_bytes"):
        assert key in d
    # given figures (e.g. from the ProfileDB) are used as they are, where present
    first = next(iter(ex.kernels))
    given = Executor(resnet20, plan, check=False, kernel_memory={first: (10**9, 7 * MB)}).memory()
    assert given.resident_bytes >= 10**9 and given.peak_transient_bytes == 7 * MB and not given.measured
