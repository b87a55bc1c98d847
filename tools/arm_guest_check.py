"""The aarch64 check, run inside the emulated guest by tools/arm-check: correctness only.

It checks that edgetune imports and fingerprints the emulated core, and that inspect, run (BLAS plan against
the reference), profile and tune --quick work on a small CNN (built here with onnx.helper, so no torch is
needed; the zoo's mnist_cnn too when torch is installed); then it runs the test files that need no timing.
It prints which primitives verified on the model's nodes and which were excluded, with the reasons, and ends
with one "arm-check: N checks passed, N failed" line (not the test runner's form: CI reads that one from
make test). Timings under emulation mean nothing about a real Arm core: none is asserted or shown.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_CORE = {"a76": "Cortex-A76", "a72": "Cortex-A72"}
TESTS_WITHOUT_TIMING = ["tests/test_device_arm.py", "tests/test_graph_import.py", "tests/test_graph_passes.py",
                        "tests/test_reference.py", "tests/test_search.py", "tests/test_kernels_ort.py",
                        "tests/test_lock.py"]
TESTS_WITH_TORCH = ["tests/test_kernels_torch.py", "tests/test_executor.py"]
TESTS_WITH_LITERT = ["tests/test_litert.py"]  # LiteRT/XNNPACK: edgetune's own TFLite writer, run on the Arm core
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
results: list[tuple[str, bool, str]] = []


def check(name: str, fn: Callable[[], str]) -> None:
    t0 = time.perf_counter()
    try:
        detail = fn()
        results.append((name, True, detail))
        print(f"PASS {name}: {detail} [{time.perf_counter() - t0:.0f} s]", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
        results.append((name, False, str(e)))
        print(f"FAIL {name}: {e}", flush=True)


def edgetune(*args: str, timeout: float = 900) -> dict:
    p = subprocess.run([sys.executable, "-m", "edgetune", *args, "--json"], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"edgetune {' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-400:]}")
    return json.loads(p.stdout)


def tiny_cnn(path: Path) -> Path:
    """A small CNN like the zoo's mnist_cnn, from onnx.helper (seeded weights)."""
    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...], scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc")]
    inits = [init("w1", (16, 1, 3, 3), 0.3), init("b1", (16,), 0.1), init("w2", (32, 16, 3, 3), 0.1),
             init("b2", (32,), 0.1), init("wf", (10, 32 * 7 * 7), 0.02), init("bf", (10,), 0.1)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph(nodes, "tiny_cnn", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def main(cpu_model: str) -> int:
    work = Path(tempfile.mkdtemp(prefix="arm-check-"))
    db = str(work / "profile.sqlite")
    models = [str(tiny_cnn(work / "tiny_cnn.onnx"))] + (["mnist_cnn"] if HAS_TORCH else [])
    print(f"aarch64 check: emulated {cpu_model}, torch {'installed' if HAS_TORCH else 'absent'}, LiteRT "
          f"{'installed' if HAS_LITERT else 'absent'}; "
          "correctness only (times under emulation mean nothing)", flush=True)

    def device() -> str:
        d = edgetune("device")["device"]
        assert d["arch"] == "aarch64", d["arch"]
        assert EXPECTED_CORE[cpu_model] in d["cpu"], d["cpu"]
        assert ("asimddp" in d["flags"]) == (cpu_model == "a76"), d["flags"]
        return f"{d['cpu']}, flags {' '.join(d['flags'])}, id {d['id']}"

    check("edgetune device", device)
    for model in models:
        def inspect(m: str = model) -> str:
            return f"{len(edgetune('inspect', m)['layers'])} layers"

        def run_blas(m: str = model) -> str:
            r = edgetune("run", m, "--plan", "blas", "--threads", "1", "--time-cap", "0.2")
            assert r["max_rel_error_vs_reference"] < 1e-4, r["max_rel_error_vs_reference"]
            return f"BLAS plan matches the reference within {r['max_rel_error_vs_reference']:.1e}"

        def profile(m: str = model) -> str:
            r = edgetune("profile", m, "--db", db, "--threads", "1", "--time-cap", "0.02")
            for key, why in sorted(r["excluded"].items()):
                print(f"    excluded {key}: {why}")
            verified = edgetune("primitives", m)
            if HAS_LITERT:
                litert = {c["primitive"] for n in verified["nodes"] for c in n["candidates"]
                          if c["primitive"].endswith(".litert") and c.get("status") == "verified"}
                assert litert, "LiteRT is installed but no LiteRT (XNNPACK) primitive verified on the Arm core"
            return f"{r['new_measurements']} measurements, {len(r['excluded'])} (node, primitive) excluded; " + \
                   _verified_summary(verified)

        def tune(m: str = model) -> str:
            r = edgetune("tune", m, "--db", db, "--threads", "1", "--budget", "50", "--compare-time", "0.5",
                         "--quick", "--out", str(work / f"run-{Path(m).stem}"))
            assert Path(r["plan"]).is_file() and Path(r["report"]).is_file()
            return f"plan {Path(r['plan']).name} and report written; chosen: {r['search']['chosen_candidate']}"

        for name, fn in (("inspect", inspect), ("run --plan blas", run_blas), ("profile", profile),
                         ("tune --quick", tune)):
            check(f"{name} {Path(model).name}", fn)

    def tests() -> str:
        files = TESTS_WITHOUT_TIMING + (TESTS_WITH_TORCH if HAS_TORCH else []) + \
            (TESTS_WITH_LITERT if HAS_LITERT else [])
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], cwd=ROOT,
                           capture_output=True, text=True, timeout=1500)
        summary = [line for line in p.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
        tail = summary[-1] if summary else p.stderr.strip()[-300:]
        if p.returncode != 0:
            print(p.stdout[-3000:])
            raise RuntimeError(tail)
        return tail

    check("tests that need no timing", tests)
    shutil.rmtree(work, ignore_errors=True)  # the root file system is cached: leave nothing behind in it
    passed = sum(ok for _, ok, _ in results)
    print(f"arm-check: {passed} checks passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


def _verified_summary(primitives: dict) -> str:
    """Per primitive: on how many of the model's nodes it verified, and why it was excluded elsewhere."""
    verified: dict[str, int] = {}
    excluded: dict[str, str] = {}
    for node in primitives.get("nodes", []):
        for c in node.get("candidates", []):
            if c.get("status") == "verified":
                verified[c["primitive"]] = verified.get(c["primitive"], 0) + 1
            elif c.get("status") not in ("declined", None):
                excluded.setdefault(c["primitive"], f"{node['node']}: {c.get('reason')}")
    for prim, why in sorted(excluded.items()):
        print(f"    not verified {prim} ({why})")
    return "verified: " + ", ".join(f"{p} x{n}" for p, n in sorted(verified.items()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "a76"))
