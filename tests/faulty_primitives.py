"""Primitives that misbehave on purpose: native crash, abort and hang (Relu only) for the isolation tests,
a Conv wrong by 5 % for the verification tests (profiler, tune), and a library whose segment compiler
crashes.

They are registered by the tests that use them (and removed afterwards); the isolation worker receives
them pickled, so this module must stay importable as `tests.faulty_primitives`.
"""

import ctypes
import os
import time

import numpy as np

from edgetune.kernels.base import FunctionKernel, Kernel, PrepareContext, Primitive
from edgetune.kernels.libraries.reference.prims import ReferencePrimitive
from edgetune.kernels.library import Library, ThreadPool


class _Faulty(Primitive):
    library = "test"
    op_types = frozenset({"Relu"})

    def supports(self, node, graph):
        return None


class NullRead(_Faulty):
    """Reads address 0 in prepare: SIGSEGV."""

    name = "relu.nullread.test"

    def prepare(self, node, ctx) -> Kernel:
        ctypes.c_int.from_address(0).value  # noqa: B018 - the null read is the point
        raise AssertionError("unreachable")


class Abort(_Faulty):
    """Calls abort(3) in prepare: SIGABRT."""

    name = "relu.abort.test"

    def prepare(self, node, ctx) -> Kernel:
        os.abort()


class Hang(_Faulty):
    """Its kernel never returns."""

    name = "relu.hang.test"

    def prepare(self, node, ctx) -> Kernel:
        def forever(x):
            while True:
                time.sleep(0.05)

        return FunctionKernel(forever)


class Good(_Faulty):
    """A correct Relu, to show the worker serves candidates again after a crash."""

    name = "relu.good.test"

    def prepare(self, node, ctx) -> Kernel:
        return FunctionKernel(lambda x: [np.maximum(x, 0)])


FAULTY = (NullRead, Abort, Hang, Good)


WRONG = "conv.wrong5pct.test"


class FivePercentWrong(ReferencePrimitive):
    """A Conv primitive that is fast to write and wrong by 5 %: verification must exclude it on any CPU."""

    library = "numpy"

    def __init__(self) -> None:
        super().__init__("Conv")
        self.name = WRONG

    def prepare(self, node, ctx: PrepareContext) -> Kernel:
        right = super().prepare(node, ctx)
        return FunctionKernel(lambda *xs: [y * 1.05 for y in right(*xs)])


def _segfaulting_segment(graph, nodes, threads, spin, variant):
    """A backend that crashes compiling any run of nodes (reads address 0)."""
    ctypes.c_int.from_address(0).value  # noqa: B018 - the null read is the point
    raise AssertionError("unreachable")


CRASHING_LIBRARY = Library("crash-test", modules=("tests.faulty_primitives",), pool=ThreadPool("crash-test"),
                           segment=_segfaulting_segment)
