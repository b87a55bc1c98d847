"""SqueezeNet 1.1 (Iandola et al. 2016), torchvision's layout: Fire modules, no BN, conv classifier.

Its Concat-heavy Fire modules and ceil-mode pools exercise layout choices on many small layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import IMAGENET_NORM, ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 111


class Fire(nn.Module):
    """1x1 squeeze, then 1x1 and 3x3 expands concatenated on channels."""

    def __init__(self, cin: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.squeeze(x))
        return torch.cat([self.relu(self.expand1x1(x)), self.relu(self.expand3x3(x))], 1)


class SqueezeNet11(nn.Module):
    """Stem 3x3/2, eight Fire modules with three max pools, dropout, 1x1 conv classifier, pool."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), pool(),
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1),
                                        nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x)).flatten(1)


def _build(weights: Weights) -> nn.Module:
    model = quiet_build(SqueezeNet11)
    init_random(model, SEED)
    return model


SPECS = [ModelSpec("squeezenet1_1", "SqueezeNet 1.1 (Fire modules, no BN)", (1, 3, 224, 224), 1000,
                   IMAGENET_NORM, "imagenet", random_weights(SEED), _build)]
