"""GoogLeNet / Inception v1 (Szegedy et al. 2014) in torchvision's BN variant, without aux heads.

Structure follows the paper's table 1 (nine Inception modules; the third branch is the paper's 5x5,
where torchvision uses a 3x3); every conv is conv+BN+ReLU as in torchvision instead of LRN. Four
parallel branches per module make it the zoo's multi-branch graph.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import IMAGENET_NORM, ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 122


class BasicConv2d(nn.Sequential):
    """Conv (no bias), BN (eps 1e-3), ReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout, eps=1e-3),
                         nn.ReLU(inplace=True))


class Inception(nn.Module):
    """1x1 | 1x1->3x3 | 1x1->5x5 | maxpool 3x3->1x1, concatenated on channels."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, pool_proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    """Stem (7x7/2, pool, 1x1, 3x3, pool), Inception 3a-5b with pools, global pool, dropout, fc."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        pool = lambda k=3: nn.MaxPool2d(k, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            BasicConv2d(3, 64, 7, 2, 3), pool(),
            BasicConv2d(64, 64, 1), BasicConv2d(64, 192, 3, padding=1), pool(),
            Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64), pool(),
            Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
            Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
            Inception(528, 256, 160, 320, 32, 128, 128), pool(2),
            Inception(832, 256, 160, 320, 32, 128, 128), Inception(832, 384, 192, 384, 48, 128, 128))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(self.avgpool(self.features(x)).flatten(1)))


def _build(weights: Weights) -> nn.Module:
    model = quiet_build(GoogLeNet)
    init_random(model, SEED)
    return model


SPECS = [ModelSpec("googlenet", "GoogLeNet / Inception v1 (BN variant, no aux heads)", (1, 3, 224, 224), 1000,
                   IMAGENET_NORM, "imagenet", random_weights(SEED), _build)]
