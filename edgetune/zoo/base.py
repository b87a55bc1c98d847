"""What every zoo model shares: its public description, how it is built, and seeded random weights.

Models without trained weights still have to behave like real networks for tuning and for numerical
checks of kernels (no dead or exploding layers, BN that does not fold to an identity), so random
weights follow one documented recipe here instead of each builder inventing its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgetune.data.preprocess import Preprocessing
from edgetune.errors import EdgetuneError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's ImageNet evaluation: resize 256, centre crop 224, /255, ImageNet mean/std
IMAGENET_NORM = Preprocessing(size=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
# CIFAR-10 images are 32x32 already: /255 and the ImageNet mean/std (what resnet20-cifar10.th was trained with)
CIFAR_NORM = Preprocessing(size=32, crop=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)


@dataclass(frozen=True)
class ZooEntry:
    """A built-in model as the user sees it (``edgetune zoo`` lists these)."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    num_classes: int
    weights: str  # "trained (<source>)" or "random (seed N, He init)"
    preprocessing: str  # `Preprocessing.describe()`, or what a non-image input is
    dataset: str | None  # data set its accuracy can be measured on ("imagenet", "cifar10") or None

    @property
    def trained(self) -> bool:
        """Whether accuracy numbers mean anything for this model."""
        return self.weights.startswith("trained")


@dataclass(frozen=True)
class Weights:
    """Where a model's weights come from; ``file`` feeds the cache key so new weights re-export."""

    description: str
    file: Path | None = None


@dataclass(frozen=True)
class ModelSpec:
    """How to build one zoo model; ``weights`` is a function because it can depend on the environment."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    num_classes: int
    preprocessing: Preprocessing | str  # the steps from an image, or (not an image model) what the input is
    dataset: str | None
    weights: Callable[[], Weights]
    build: Callable[[Weights], nn.Module]  # returns the module with its weights, not yet in eval mode
    outputs: tuple[str, ...] = ("logits",)  # ONNX output names, in the module's return order

    def entry(self) -> ZooEntry:
        """The public description with the weights this machine would use now ("unavailable: why" when the
        package holding them is not installed: one model's missing package must not hide the others)."""
        try:
            weights = self.weights().description
        except EdgetuneError as e:
            weights = f"unavailable: {e}"
        return ZooEntry(self.name, self.description, self.input_shape, self.num_classes, weights,
                        self.preprocessing_text, self.dataset)

    @property
    def preprocessing_text(self) -> str:
        """The preprocessing as one readable line (the listing's and the ONNX metadata's)."""
        p = self.preprocessing
        return p.describe() if isinstance(p, Preprocessing) else p

    def image_preprocessing(self) -> Preprocessing:
        """The steps from an image to this model's input; a model fed something else is a one-line error."""
        if not isinstance(self.preprocessing, Preprocessing):
            raise EdgetuneError(f"zoo model {self.name} does not take images ({self.preprocessing}): "
                                "accuracy on an image folder cannot be measured for it")
        return self.preprocessing


def random_weights(seed: int) -> Callable[[], Weights]:
    """The weights function of a model that only has seeded random weights."""
    desc = Weights(f"random (seed {seed}, He init)")
    return lambda: desc


def data_dir() -> Path | None:
    """The folder of shared data sets and weights (``$EDGETUNE_DATA``), when it is set and exists."""
    value = os.environ.get("EDGETUNE_DATA")
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


def init_random(model: nn.Module, seed: int, damp: Iterable[nn.BatchNorm2d] = ()) -> None:
    """Seeded He init with non-identity BN statistics, so BN folding and kernels see realistic numbers.

    Convs: kaiming normal (fan_in, ReLU gain), which keeps the activation scale through plain stacks;
    conv/linear biases small; linear weights N(0, 1/fan_in). BN: gamma U(0.5, 1.5), beta N(0, 0.05),
    running_mean N(0, 0.1), running_var U(0.5, 1.5). BNs in ``damp`` (the last BN of a residual
    branch) get gamma U(0.1, 0.3) so deep residual sums do not blow up, as zero-init-residual does in
    trained nets but without making the branch constant.
    """
    g = torch.Generator().manual_seed(seed)
    damped = {id(m) for m in damp}
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
                if m.bias is not None:
                    nn.init.normal_(m.bias, 0.0, 0.02, generator=g)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, m.in_features ** -0.5, generator=g)
                if m.bias is not None:
                    nn.init.normal_(m.bias, 0.0, 0.02, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                lo, hi = (0.1, 0.3) if id(m) in damped else (0.5, 1.5)
                nn.init.uniform_(m.weight, lo, hi, generator=g)
                nn.init.normal_(m.bias, 0.0, 0.05, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def quiet_build(factory: Callable[[], nn.Module]) -> nn.Module:
    """Construct a module without disturbing the caller's global RNG (default inits draw from it)."""
    with torch.random.fork_rng(devices=[]):
        return factory()
