"""The library descriptors and their discovery: one package per library, nothing listed elsewhere."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from edgetune.errors import EdgetuneError
from edgetune.kernels import libraries as libraries_package
from edgetune.kernels import registry
from edgetune.kernels.library import Library, ThreadPool


def test_every_primitive_belongs_to_a_discovered_library() -> None:
    libs = {lib.name: lib for lib in registry.libraries()}
    assert {"numpy", "numpy-reference", "numba", "torch", "torch-int8", "onnxruntime"} <= set(libs)
    orphans = [p.name for p in registry.primitives() if p.library not in libs]
    assert orphans == []
    for c in registry.converters():
        assert c.library in libs, c.name


def test_pools_are_shared_where_libraries_share_threads() -> None:
    pool = {lib.name: lib.pool.name for lib in registry.installed_libraries()}
    assert pool["numpy"] == pool["numpy-reference"] == "numpy"
    assert pool["torch"] == pool["torch-int8"] == "torch"
    assert len({p.name for p in registry.pools()}) == len(registry.pools())


def test_each_probe_is_a_primitive_of_its_own_pool() -> None:
    for pool in registry.pools():
        if pool.probe:
            assert registry.pool_of(registry.get(pool.probe).library).name == pool.name


def test_flags_replace_the_old_name_lists() -> None:
    """`measure_last` marks exactly what the profiler's substring list did, `fuses` exactly the old set."""
    old_slow = ("ref.", "numba", ".fft.", "winograd", ".nnpack.", "int8_qnnpack", "xnnpack_nchw", ".jit.torch")
    prims = registry.primitives()
    assert {p.name for p in prims if p.measure_last} == {p.name for p in prims if any(k in p.name for k in old_slow)}
    assert {p.name for p in prims if p.fuses and p.library == "onnxruntime"} == {"conv.mlas.ort", "gemm.mlas.ort",
                                                                                 "op.ort"}


def test_a_library_whose_package_is_missing_is_unavailable_with_the_reason() -> None:
    lib = Library("fake-missing", ("prims",), ThreadPool("fake-missing"), requires=("no_such_package_xyz",))
    try:
        registry._load_library("edgetune_no_such_package", lib)  # not imported: the requirement is checked first
        assert registry.unavailable()["fake-missing"] == "library not installed: no_such_package_xyz"
        assert registry.library("fake-missing") is lib
    finally:
        registry.unregister("fake-missing")


def _package(root: Path, name: str, init: str, modules: dict[str, str]) -> None:
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(init))
    for mod, text in modules.items():
        (pkg / f"{mod}.py").write_text(textwrap.dedent(text))


def test_a_broken_module_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, "fakelib_broken", "", {"prims": "raise ImportError('a typo in the kernel module')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    lib = Library("fake-broken", ("prims",), ThreadPool("fake-broken"))
    try:
        with pytest.raises(EdgetuneError, match=r"fakelib_broken\.prims \(fake-broken\) failed to import: "
                                                r"ImportError: a typo in the kernel module"):
            registry._load_library("fakelib_broken", lib)
    finally:
        registry.unregister("fake-broken")
        sys.modules.pop("fakelib_broken", None)


def test_a_new_library_is_one_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package dropped beside the others is discovered, ranked, and its primitives registered and usable."""
    _package(tmp_path, "zz_fake", '''
        from edgetune.kernels.library import Library, ThreadPool

        LIBRARY = Library("zz-fake", ("prims",), ThreadPool("zz-fake", probe="relu.zz_fake"), rank=999)
        ''', {"prims": '''
        import numpy as np

        from edgetune.kernels.base import FunctionKernel, Primitive


        class Relu(Primitive):
            name, library, op_types = "relu.zz_fake", "zz-fake", frozenset({"Relu"})

            def supports(self, node, graph):
                return None

            def prepare(self, node, ctx):
                return FunctionKernel(lambda x: [np.maximum(x, 0)])


        PRIMITIVES = [Relu()]
        '''})
    monkeypatch.setattr(libraries_package, "__path__", [*libraries_package.__path__, str(tmp_path)])
    try:
        found = registry.discover()
        assert found[-1].__name__ == "edgetune.kernels.libraries.zz_fake"
        registry._load_library(found[-1].__name__, found[-1].LIBRARY)
        prim = registry.get("relu.zz_fake")
        assert prim.library == "zz-fake" and registry.pool_of("zz-fake").probe == "relu.zz_fake"
        assert prim.prepare(None, None)(-1.0 * __import__("numpy").ones(2))[0].tolist() == [0.0, 0.0]
    finally:
        registry.unregister("relu.zz_fake")
        registry.unregister("zz-fake")
        for m in [m for m in sys.modules if "zz_fake" in m]:
            sys.modules.pop(m)
