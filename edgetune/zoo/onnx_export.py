"""Export zoo models to ONNX once and keep the files in the user cache.

Exporting VGG-16 takes tens of seconds and ~550 MB, so every caller (CLI, tests, benchmarks) shares
one cached file per model. The key hashes everything that changes the file: the zoo version, the
source of the model's module, the weights description and weights file, torch and the opset.
Files are written to a temporary name and renamed, so concurrent processes never read half a file.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import onnx
import platformdirs
import torch

from edgetune.errors import EdgetuneError

from . import base, export_constants
from .base import ModelSpec
from .export_constants import fold_constants
from .registry import spec

ZOO_VERSION = "1"  # bump when exported files change for a reason the hashed sources miss
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def cache_dir() -> Path:
    """Folder of the cached exports (``<user cache>/edgetune/zoo``)."""
    return Path(platformdirs.user_cache_dir("edgetune")) / "zoo"


def version_key(name: str) -> str:
    """Short hash identifying the exported file of ``name`` as it would be built now."""
    s = spec(name)
    w = s.weights()
    h = hashlib.sha256()
    for part in (ZOO_VERSION, name, str(s.input_shape), w.description, torch.__version__, str(OPSET)):
        h.update(part.encode() + b"\0")
    if w.file is not None:
        st = w.file.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    sources = {inspect.getsourcefile(obj) for obj in (s.build, base, export_constants)} | {__file__}
    for source in sorted(x for x in sources if x):  # sorted: set order varies between processes
        h.update(Path(source).read_bytes())
    return h.hexdigest()[:12]


def cache_path(name: str) -> Path:
    """Where the cached export of ``name`` lives (it may not exist yet)."""
    return cache_dir() / f"{name}-{version_key(name)}.onnx"


def export_module(model: torch.nn.Module, input_shape: tuple[int, ...],
                  output_names: tuple[str, ...] = (OUTPUT_NAME,)) -> onnx.ModelProto:
    """Run the legacy (TorchScript) exporter, which needs no onnxscript, and fold its constants.

    ``TrainingMode.PRESERVE`` on an eval-mode module exports inference-mode BatchNormalization nodes
    instead of folding them into the convs (what ``EVAL`` does), so edgetune's own BN folding and
    the BN statistics stay visible in the file.
    """
    model = model.eval()
    x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, input_names=[INPUT_NAME], output_names=list(output_names),
                          opset_version=OPSET, dynamo=False, do_constant_folding=True,
                          training=torch.onnx.TrainingMode.PRESERVE)
    return fold_constants(onnx.load_from_string(buf.getvalue()))


def _export_bytes(s: ModelSpec) -> bytes:
    """The ONNX file of zoo model `s`, with its name, weights and preprocessing as metadata."""
    weights = s.weights()
    proto = export_module(s.build(weights), s.input_shape, s.outputs)
    proto.graph.name = s.name
    proto.producer_name = "edgetune.zoo"
    props = {"edgetune.zoo.name": s.name, "edgetune.zoo.weights": weights.description,
             "edgetune.zoo.preprocessing": s.preprocessing_text}
    onnx.helper.set_model_props(proto, props)
    return proto.SerializeToString()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is ordinary readable data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_file(name: str) -> Path:
    """The path of the cached export of ``name``, exporting it first when it is missing."""
    path = cache_path(name)
    if not path.is_file():
        try:
            data = _export_bytes(spec(name))
        except EdgetuneError:
            raise
        except Exception as exc:  # the exporter's failures are internal, but name the model
            raise RuntimeError(f"exporting zoo model {name!r} to ONNX failed: {exc}") from exc
        try:
            _write_atomic(path, data)
        except OSError as exc:
            raise EdgetuneError(f"cannot write the zoo cache {path}: {exc}") from exc
        _drop_stale(path, name)
    return path


def _drop_stale(path: Path, name: str) -> None:
    """Delete older exports of the same model (VGG-16 is 550 MB a version); a re-export is cheap."""
    pattern = re.compile(rf"{re.escape(name)}-[0-9a-f]{{12}}\.onnx")
    for old in path.parent.iterdir():
        if old != path and pattern.fullmatch(old.name):
            old.unlink(missing_ok=True)


def build_onnx(name: str) -> onnx.ModelProto:
    """The ONNX model of ``name`` (batch 1, fp32, input ``input``, outputs ``logits`` or the spec's
    `outputs`), from the cache."""
    path = cached_file(name)
    try:
        return onnx.load(str(path))
    except Exception:  # a damaged cache file: export again
        path.unlink(missing_ok=True)
        return onnx.load(str(cached_file(name)))


def export(name: str, path: str | os.PathLike[str]) -> Path:
    """Write the ONNX file of ``name`` to ``path`` (a copy of the cached export)."""
    dest = Path(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached_file(name), dest)
    except OSError as exc:
        raise EdgetuneError(f"cannot write {dest}: {exc}") from exc
    return dest
