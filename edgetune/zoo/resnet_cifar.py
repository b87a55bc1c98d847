"""CIFAR-10 ResNet-20 (He et al. 2016, section 4.2) with option-A shortcuts, trained when available.

Option A (parameter-free shortcuts: subsample by 2 and zero-pad channels) is what the shared trained
checkpoint uses, so the layout and parameter names here match it (``conv1``, ``layer1.0.bn2``,
``linear``). The weights file is data, not code: it comes from ``$EDGETUNE_DATA/models`` and the
model falls back to seeded random weights (and says so) where that is absent.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgetune.errors import EdgetuneError

from .base import CIFAR_NORM, ModelSpec, Weights, data_dir, init_random, quiet_build

SEED = 120
WEIGHTS_FILE = "models/resnet20-cifar10.th"


class BasicBlockA(nn.Module):
    """Two 3x3 convs; a shape-changing shortcut is x[:, :, ::2, ::2] zero-padded to the new width."""

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - cin) // 2 if (stride != 1 or cin != planes) else None

    def shortcut(self, x: Tensor) -> Tensor:
        if self.pad is None:
            return x
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetCifar(nn.Module):
    """3x3 stem (16), three stages of n blocks (16, 32, 64 channels), global pool, linear."""

    def __init__(self, n: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        stages = []
        for i, planes in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlockA(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _weights() -> Weights:
    root = data_dir()
    path = root / WEIGHTS_FILE if root is not None else None
    if path is not None and path.is_file():
        return Weights(f"trained (CIFAR-10, $EDGETUNE_DATA/{WEIGHTS_FILE})", path)
    return Weights(f"random (seed {SEED}, He init; trained weights need $EDGETUNE_DATA/{WEIGHTS_FILE})")


def load_checkpoint(path: Path) -> dict[str, Tensor]:
    """The state dict of the shared checkpoint, without the DataParallel ``module.`` prefix."""
    try:
        ckpt = torch.load(path, map_location="cpu")
        state = ckpt["state_dict"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise EdgetuneError(f"cannot read ResNet-20 weights {path}: {first}") from exc
    return {k.removeprefix("module."): v for k, v in state.items()}


def _build(weights: Weights) -> nn.Module:
    model = quiet_build(ResNetCifar)
    if weights.file is None:
        init_random(model, SEED, [m.bn2 for m in model.modules() if isinstance(m, BasicBlockA)])
    else:
        missing, unexpected = model.load_state_dict(load_checkpoint(weights.file), strict=False)
        if unexpected or [k for k in missing if not k.endswith("num_batches_tracked")]:
            raise EdgetuneError(f"ResNet-20 weights {weights.file} do not match the architecture "
                                f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


SPECS = [ModelSpec("resnet20_cifar", "CIFAR-10 ResNet-20 (option-A shortcuts, 0.27 M parameters)",
                   (1, 3, 32, 32), 10, CIFAR_NORM, "cifar10", _weights, _build)]
