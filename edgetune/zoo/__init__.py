"""Built-in models: torch builders exported to ONNX (cached), with real weights where they exist.

``list_models()`` / ``entry(name)`` describe them, ``build_onnx(name)`` gives the ONNX model,
``export(name, path)`` writes it, ``torch_module(name)`` gives the eval-mode torch module with the
same weights (the torch-eager baseline).
"""

from .base import ZooEntry
from .onnx_export import build_onnx, cache_dir, cache_path, export
from .registry import entry, list_models, names, preprocessing, torch_module

__all__ = ["ZooEntry", "build_onnx", "cache_dir", "cache_path", "entry", "export", "list_models",
           "names", "preprocessing", "torch_module"]
