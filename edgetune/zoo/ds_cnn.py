"""DS-CNN keyword spotting (Zhang et al. 2017, "Hello Edge"), as in MLPerf Tiny's KWS benchmark.

Why in the zoo: the canonical microcontroller/edge audio model; its input is not an image but 49
frames x 10 MFCC coefficients, and its first conv is a 10x4 non-square kernel.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 49


def _ds_block(ch: int) -> nn.Sequential:
    """Depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU."""
    return nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, groups=ch, bias=False), nn.BatchNorm2d(ch), nn.ReLU(),
                         nn.Conv2d(ch, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU())


class DSCNN(nn.Module):
    """Conv 10x4 stride 2 to `ch` channels, `blocks` depthwise-separable blocks, average pool, FC."""

    def __init__(self, ch: int = 64, blocks: int = 4, num_classes: int = 12) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, ch, (10, 4), 2, (5, 1), bias=False), nn.BatchNorm2d(ch), nn.ReLU())
        self.blocks = nn.Sequential(*[_ds_block(ch) for _ in range(blocks)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


def build_ds_cnn(ch: int = 64, blocks: int = 4, num_classes: int = 12, seed: int = SEED) -> nn.Module:
    model = quiet_build(lambda: DSCNN(ch, blocks, num_classes))
    init_random(model, seed)
    return model


def _build(weights: Weights) -> nn.Module:
    return build_ds_cnn()


SPECS = [ModelSpec("ds_cnn_kws", "DS-CNN keyword spotting (MLPerf Tiny KWS, 49x10 MFCC input, 12 classes)",
                   (1, 1, 49, 10), 12, "49 frames x 10 MFCC coefficients (40 ms window, 20 ms stride)",
                   None, random_weights(SEED), _build)]
