"""ResNet-18 and ResNet-50 (He et al. 2016) for ImageNet, torchvision's layout (stride on the 3x3).

The two cover both block kinds: 3x3+3x3 basic blocks (Winograd territory) and 1x1-3x3-1x1
bottlenecks (GEMM territory), with projection shortcuts where the shape changes.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import IMAGENET_NORM, ModelSpec, Weights, init_random, quiet_build, random_weights

SEED_18 = 118
SEED_50 = 150


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a shortcut."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes * 4, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """7x7 stem, max pool, four stages, global pool, fully connected."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        stages = []
        for i, n in enumerate(layers):
            planes = 64 * 2**i
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _builder(block: type[BasicBlock] | type[Bottleneck], layers: list[int], seed: int):
    def build(weights: Weights) -> nn.Module:
        model = quiet_build(lambda: ResNet(block, layers))
        damp = [m.last_bn() for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
        init_random(model, seed, damp)
        return model

    return build


SPECS = [
    ModelSpec("resnet18", "ResNet-18 (basic blocks, projection shortcuts)", (1, 3, 224, 224), 1000,
              IMAGENET_NORM, "imagenet", random_weights(SEED_18),
              _builder(BasicBlock, [2, 2, 2, 2], SEED_18)),
    ModelSpec("resnet50", "ResNet-50 v1.5 (bottlenecks, stride on the 3x3)", (1, 3, 224, 224), 1000,
              IMAGENET_NORM, "imagenet", random_weights(SEED_50),
              _builder(Bottleneck, [3, 4, 6, 3], SEED_50)),
]
