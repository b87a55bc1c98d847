"""A small MNIST CNN (the PyTorch example's layout): the zoo's seconds-to-tune smoke-test model."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from edgetune.data.preprocess import Preprocessing

from .base import ModelSpec, Weights, init_random, quiet_build, random_weights

SEED = 28


class MnistCNN(nn.Module):
    """conv3x3 32, conv3x3 64, max pool 2, fc 9216->128, fc 128->10."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def _build(weights: Weights) -> nn.Module:
    model = quiet_build(MnistCNN)
    init_random(model, SEED)
    return model


SPECS = [ModelSpec("mnist_cnn", "small MNIST CNN (2 conv, 2 fully connected)", (1, 1, 28, 28), 10,
                   Preprocessing(size=28, crop=28, mean=(0.1307,), std=(0.3081,), channels=1), None,
                   random_weights(SEED), _build)]
