"""VGG-16 (Simonyan & Zisserman 2014, configuration D, no BN): 138 M parameters, 15.5 GFLOP.

The zoo's big plain 3x3 network: where Winograd and memory (a 400 MB first fully connected layer)
matter most. At 224x224 the 7x7 adaptive pool is an identity, so it is left out of the graph.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import IMAGENET_NORM, ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 116

_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                         512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16(nn.Module):
    """13 conv3x3+ReLU layers in five pooled stages, then three fully connected layers."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(), nn.Linear(4096, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


def _build(weights: Weights) -> nn.Module:
    model = quiet_build(VGG16)
    init_random(model, SEED)
    return model


SPECS = [ModelSpec("vgg16", "VGG-16 (configuration D, no BN, 138 M parameters)", (1, 3, 224, 224), 1000,
                   IMAGENET_NORM, "imagenet", random_weights(SEED), _build)]
