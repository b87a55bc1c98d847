"""Primitives registered for one test (or module) and removed afterwards, whatever the test does."""

from collections.abc import Iterator
from contextlib import contextmanager

from edgetune.kernels import registry
from edgetune.kernels.base import Primitive


@contextmanager
def registered(*primitives: Primitive) -> Iterator[None]:
    """`primitives` registered (after edgetune's own libraries are loaded) for the block, then unregistered."""
    registry.load_all()
    for p in primitives:
        registry.register(p)
    try:
        yield
    finally:
        for p in primitives:
            registry.unregister(p.name)
