"""MobileNet v1 (Howard et al. 2017), width 1.0: the plain depthwise-separable stack.

Kept because its 13 depthwise + pointwise pairs with no residuals are the cleanest case for per-layer
primitive choice (the paper's favourite example).
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import IMAGENET_NORM, ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 101

# (output channels, stride) of each depthwise-separable block
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MobileNetV1(nn.Module):
    """Stem conv, 13 depthwise-separable blocks, global average pool, fully connected."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(3, 32, 3, 2)]
        cin = 32
        for cout, stride in _BLOCKS:
            layers += [_conv_bn(cin, cin, 3, stride, groups=cin), _conv_bn(cin, cout, 1, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def _build(weights: Weights) -> nn.Module:
    model = quiet_build(MobileNetV1)
    init_random(model, SEED)
    return model


SPECS = [ModelSpec("mobilenet_v1", "MobileNet v1 1.0 (depthwise-separable, ReLU)", (1, 3, 224, 224), 1000,
                   IMAGENET_NORM, "imagenet", random_weights(SEED), _build)]
