"""The table of built-in models and the lookups on it (names, entries, eval-mode torch modules)."""

from __future__ import annotations

from torch import nn

from edgetune.data.preprocess import Preprocessing
from edgetune.errors import EdgetuneError

from . import (
    deit,
    ds_cnn,
    efficientnet,
    googlenet,
    mnist,
    mobilenet_v1,
    mobilenet_v2,
    resnet,
    resnet_cifar,
    squeezenet,
    ssdlite,
    unet,
    vgg,
)
from .base import ModelSpec, ZooEntry

_SPECS: dict[str, ModelSpec] = {
    s.name: s
    for module in (mobilenet_v1, mobilenet_v2, resnet, squeezenet, googlenet, vgg, efficientnet, resnet_cifar,
                   mnist, ssdlite, deit, ds_cnn, unet)
    for s in module.SPECS
}


def spec(name: str) -> ModelSpec:
    """The builder of ``name``; an unknown name is a user error that lists the valid ones."""
    try:
        return _SPECS[name]
    except KeyError:
        raise EdgetuneError(f"unknown zoo model {name!r}; valid names: {', '.join(_SPECS)}") from None


def names() -> list[str]:
    """All model names, in listing order."""
    return list(_SPECS)


def list_models() -> list[ZooEntry]:
    """Every built-in model, with the weights it would use on this machine now."""
    return [s.entry() for s in _SPECS.values()]


def entry(name: str) -> ZooEntry:
    """The description of one model (raises `EdgetuneError` for an unknown name)."""
    return spec(name).entry()


def preprocessing(name: str) -> Preprocessing:
    """The steps from an image to the input of ``name`` (an `EdgetuneError` for a model fed no images)."""
    return spec(name).image_preprocessing()


def torch_module(name: str) -> nn.Module:
    """A fresh eval-mode torch module of ``name`` with the same weights as its ONNX export."""
    s = spec(name)
    model = s.build(s.weights())
    model.eval()
    model.requires_grad_(False)
    return model
