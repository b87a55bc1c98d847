"""The zoo's preprocessing is structured: each image model's steps make arrays of its input's shape."""

from __future__ import annotations

import pytest

from edgetune import zoo
from edgetune.data import Preprocessing
from edgetune.errors import EdgetuneError


def test_every_image_model_has_preprocessing_that_fits_its_input() -> None:
    for name in zoo.names():
        entry = zoo.entry(name)
        if name == "ds_cnn_kws":
            continue
        p = zoo.preprocessing(name)
        assert isinstance(p, Preprocessing)
        p.check_input(entry.input_shape)
        assert entry.preprocessing == p.describe()


def test_known_models() -> None:
    lite = zoo.preprocessing("efficientnet_lite0")
    assert (lite.size, lite.crop, lite.scale, lite.mean, lite.std) == (256, (224, 224), 1.0, (127.0,) * 3,
                                                                       (128.0,) * 3)
    r18 = zoo.preprocessing("resnet18")
    assert (r18.size, r18.crop, r18.scale, r18.mean, r18.std) == (256, (224, 224), 255.0, (0.485, 0.456, 0.406),
                                                                  (0.229, 0.224, 0.225))
    cifar = zoo.preprocessing("resnet20_cifar")
    assert (cifar.crop, cifar.scale, cifar.mean) == ((32, 32), 255.0, (0.485, 0.456, 0.406))
    mnist = zoo.preprocessing("mnist_cnn")
    assert (mnist.channels, mnist.crop, mnist.mean, mnist.std) == (1, (28, 28), (0.1307,), (0.3081,))


def test_a_model_without_image_input_says_so() -> None:
    with pytest.raises(EdgetuneError) as info:
        zoo.preprocessing("ds_cnn_kws")
    assert "ds_cnn_kws does not take images" in str(info.value) and "\n" not in str(info.value)
    assert "MFCC" in zoo.entry("ds_cnn_kws").preprocessing
    with pytest.raises(EdgetuneError, match="resnet19"):
        zoo.preprocessing("resnet19")
