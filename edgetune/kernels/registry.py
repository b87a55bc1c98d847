"""The one registry of primitives and converters.

Library modules (`kernels/numpy_*.py`, `kernels/torch_*.py`, `kernels/ort_*.py`, `kernels/numba_*.py`)
call `register(...)` at import; `load_all()` imports them, and a library that is not installed (or a
primitive whose `available()` gives a reason) simply contributes nothing usable.
"""

from __future__ import annotations

import importlib

from edgetune.graph.ir import Graph, Node
from edgetune.kernels.base import FP32, Converter, Format, Primitive

_PRIMITIVES: dict[str, Primitive] = {}
_CONVERTERS: dict[tuple[str, str], Converter] = {}
_UNAVAILABLE: dict[str, str] = {}

# Modules that register primitives; each may fail to import when its library is missing.
PROVIDER_MODULES = (
    "edgetune.kernels.reference_prims",
    "edgetune.kernels.numpy_conv",
    "edgetune.kernels.numpy_ops",
    "edgetune.kernels.numba_conv",
    "edgetune.kernels.torch_conv",
    "edgetune.kernels.torch_int8",
    "edgetune.kernels.ort_prims",
    "edgetune.kernels.converters",
)
_loaded = False


def register(obj: Primitive | Converter) -> Primitive | Converter:
    """Add a primitive or converter (usable as a class decorator on an instance factory too)."""
    if isinstance(obj, Primitive):
        if obj.name in _PRIMITIVES:
            raise ValueError(f"duplicate primitive name {obj.name}")
        reason = obj.available()
        if reason:
            _UNAVAILABLE[obj.name] = reason
        else:
            _PRIMITIVES[obj.name] = obj
    else:
        _CONVERTERS[(obj.src.key, obj.dst.key)] = obj
    return obj


def unregister(name: str) -> None:
    """Remove a primitive registered from outside edgetune (tests, plugins); unknown names are ignored."""
    _PRIMITIVES.pop(name, None)
    _UNAVAILABLE.pop(name, None)


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in PROVIDER_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("edgetune"):
                continue  # provider module not written yet
            _UNAVAILABLE[mod] = f"library not installed: {e.name}"


def primitives() -> list[Primitive]:
    load_all()
    return list(_PRIMITIVES.values())


def get(name: str) -> Primitive:
    load_all()
    try:
        return _PRIMITIVES[name]
    except KeyError:
        raise KeyError(name) from None


def unavailable() -> dict[str, str]:
    load_all()
    return dict(_UNAVAILABLE)


def candidates(node: Node, graph: Graph) -> list[tuple[Primitive, str | None]]:
    """Every registered primitive for the node's op type, with None or the reason it does not apply."""
    return [(p, p.supports(node, graph)) for p in primitives() if node.op in p.op_types]


def converters() -> list[Converter]:
    load_all()
    return list(_CONVERTERS.values())


def converter(src: Format, dst: Format) -> Converter | None:
    load_all()
    return _CONVERTERS.get((src.key, dst.key))


def converter_route(src: Format, dst: Format) -> list[Converter] | None:
    """The converters taking src to dst: direct, or through NCHW fp32; None when impossible."""
    if src.key == dst.key:
        return []
    direct = converter(src, dst)
    if direct is not None:
        return [direct]
    a, b = converter(src, FP32), converter(FP32, dst)
    if (a is not None or src.key == FP32.key) and (b is not None or dst.key == FP32.key):
        return [c for c in (a, b) if c is not None]
    return None
