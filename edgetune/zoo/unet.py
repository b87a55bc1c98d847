"""A small U-Net segmenter (Ronneberger et al. 2015) with a transposed-conv decoder and a bilinear
output upsampling as in DeepLab-style heads.

Why in the zoo: segmenters are common on the edge and bring the decoder ops classifiers lack:
ConvTranspose, skip Concats and Resize (bilinear).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgetune.data.preprocess import Preprocessing

from .base import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 128


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class UNet(nn.Module):
    """Stride-2 stem, `len(widths)` encoder levels (max pool between), a decoder of ConvTranspose 2x2
    stride 2 + skip concat + double conv per level, 1x1 classifier, bilinear x2 to the input size."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), num_classes: int = 21) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.down = nn.ModuleList([_double_conv(widths[max(i - 1, 0)], w) for i, w in enumerate(widths)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i], widths[i - 1], 2, 2)
                                 for i in range(len(widths) - 1, 0, -1)])
        self.dec = nn.ModuleList([_double_conv(2 * widths[i - 1], widths[i - 1])
                                  for i in range(len(widths) - 1, 0, -1)])
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        x = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1]), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return F.interpolate(self.classifier(x), size=size, mode="bilinear", align_corners=False)


def build_unet(widths: tuple[int, ...] = (16, 32, 64, 128), num_classes: int = 21, seed: int = SEED) -> nn.Module:
    model = quiet_build(lambda: UNet(widths, num_classes))
    init_random(model, seed)
    with torch.no_grad():  # ConvTranspose2d is not a Conv2d: give it the same He init
        g = torch.Generator().manual_seed(seed + 1)
        for m in model.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
                nn.init.normal_(m.bias, 0.0, 0.02, generator=g)
    return model


def _build(weights: Weights) -> nn.Module:
    return build_unet()


SPECS = [ModelSpec("unet_small", "small U-Net segmenter (4 levels 16..128, ConvTranspose decoder, bilinear "
                   "output), 21 classes", (1, 3, 128, 128), 21,
                   Preprocessing(size=128, crop=128, mean=IMAGENET_MEAN, std=IMAGENET_STD), None,
                   random_weights(SEED), _build)]
