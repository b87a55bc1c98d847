"""The one registry of libraries, primitives and converters.

Every package under `edgetune/kernels/libraries/` describes one library (`LIBRARY`, see
`kernels/library.py`); `load_all()` discovers those packages, skips a library whose required packages
are not installed (it is listed by `unavailable()` with the reason), imports the modules it names and
registers their `PRIMITIVES` and `CONVERTERS`. A module that fails to import although its library is
installed is an error naming the module: a broken kernel is never silently dropped.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from types import ModuleType

from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph, Node
from edgetune.kernels import libraries as libraries_package
from edgetune.kernels.base import FP32, Converter, Format, Primitive
from edgetune.kernels.library import Library, ThreadPool

_PRIMITIVES: dict[str, Primitive] = {}
_CONVERTERS: dict[tuple[str, str], Converter] = {}
_CONVERTER_FAMILIES: dict[tuple[str, str], Converter] = {}  # quantise/dequantise: any parameters
_UNAVAILABLE: dict[str, str] = {}
_LIBRARIES: dict[str, Library] = {}
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
    elif obj.any_parameters:
        _CONVERTER_FAMILIES[(obj.src.family, obj.dst.family)] = obj
    else:
        _CONVERTERS[(obj.src.key, obj.dst.key)] = obj
    return obj


def register_library(lib: Library) -> Library:
    """Add a library that is not one of edgetune's packages (a plugin, or a test's deliberately crashing
    one); its primitives are registered apart with `register`."""
    load_all()
    _LIBRARIES[lib.name] = lib
    return lib


def unregister(name: str) -> None:
    """Remove a primitive or a library's entry (tests register deliberately wrong or crashing ones and
    must leave no trace)."""
    _PRIMITIVES.pop(name, None)
    _UNAVAILABLE.pop(name, None)
    _LIBRARIES.pop(name, None)


def load_all() -> None:
    """Discover every library package once; register the primitives of those that are installed."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package in discover():
        _load_library(package.__name__, package.LIBRARY)


def discover() -> list[ModuleType]:
    """The library packages under `edgetune/kernels/libraries/`, in `Library.rank` order."""
    found = [importlib.import_module(f"{libraries_package.__name__}.{info.name}")
             for info in pkgutil.iter_modules(libraries_package.__path__)]
    return sorted(found, key=lambda m: (m.LIBRARY.rank, m.LIBRARY.name))


def _load_library(package: str, lib: Library) -> None:
    _LIBRARIES[lib.name] = lib
    missing = [r for r in lib.requires if importlib.util.find_spec(r) is None]
    if missing:
        _UNAVAILABLE[lib.name] = f"library not installed: {', '.join(missing)}"
        return
    for name in lib.modules:
        try:
            module = importlib.import_module(f"{package}.{name}")
        except Exception as e:  # noqa: BLE001 - any failure of an installed library's module is reported
            raise EdgetuneError(f"kernel module {package}.{name} ({lib.name}) failed to import: "
                                f"{type(e).__name__}: {e}") from None
        for obj in (*getattr(module, "PRIMITIVES", ()), *getattr(module, "CONVERTERS", ())):
            register(obj)


def libraries() -> list[Library]:
    """Every discovered library, installed or not (see `unavailable()`)."""
    load_all()
    return list(_LIBRARIES.values())


def library(name: str) -> Library:
    load_all()
    try:
        return _LIBRARIES[name]
    except KeyError:
        raise KeyError(f"unknown library {name!r}") from None


def installed_libraries() -> list[Library]:
    load_all()
    return [lib for lib in _LIBRARIES.values() if lib.name not in _UNAVAILABLE]


def pools() -> list[ThreadPool]:
    """The thread pools of the installed libraries, each once."""
    out: dict[str, ThreadPool] = {}
    for lib in installed_libraries():
        out.setdefault(lib.pool.name, lib.pool)
    return list(out.values())


def pool_of(library_name: str) -> ThreadPool:
    """The pool a library runs on; a library edgetune does not know (tests) has a pool of its own."""
    load_all()
    lib = _LIBRARIES.get(library_name)
    return lib.pool if lib is not None else ThreadPool(library_name)


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
    return [(p, p.supports(node, graph)) for p in primitives() if p.runs(node.op)]


def converters() -> list[Converter]:
    """Every converter; a quantising one as registered (its formats' parameters are placeholders)."""
    load_all()
    return [*_CONVERTERS.values(), *_CONVERTER_FAMILIES.values()]


def converter(src: Format, dst: Format) -> Converter | None:
    """The converter from src to dst: one filed under their keys, or, for a quantised edge, the family's
    converter bound to these formats' parameters."""
    load_all()
    direct = _CONVERTERS.get((src.key, dst.key))
    if direct is not None or not (src.quantised or dst.quantised):
        return direct
    family = _CONVERTER_FAMILIES.get((src.family, dst.family))
    return family.bound(src, dst) if family is not None else None


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
