"""Preprocessing: known pixels give known values, resize/crop follow torchvision's geometry, layouts and
channel orders are what they say, and bad settings are one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgetune.data import Preprocessing
from edgetune.errors import EdgetuneError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _solid(rgb: tuple[int, int, int], w: int = 4, h: int = 4) -> Image.Image:
    return Image.new("RGB", (w, h), rgb)


def _coordinates(w: int, h: int) -> Image.Image:
    """R = 10 * x, G = 10 * y, B = 0: every pixel says where it came from."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, :, 0] = 10 * np.arange(w)[None, :]
    a[:, :, 1] = 10 * np.arange(h)[:, None]
    return Image.fromarray(a, "RGB")


def test_imagenet_normalisation_of_a_known_pixel() -> None:
    x = Preprocessing(mean=MEAN, std=STD).apply(_solid((255, 0, 128)))
    assert x.dtype == np.float32 and x.shape == (3, 4, 4)
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    np.testing.assert_allclose(x[:, 0, 0], expected, rtol=1e-6)
    assert np.all(x == x[:, :1, :1])


def test_efficientnet_style_scale_one() -> None:
    p = Preprocessing(scale=1, mean=(127,), std=(128,))
    x = p.apply(_solid((255, 127, 0)))
    np.testing.assert_allclose(x[:, 0, 0], [1.0, 0.0, -127 / 128], rtol=1e-6)
    assert p.mean == (127.0, 127.0, 127.0)  # one value applies to every channel


def test_default_is_pixels_over_255() -> None:
    x = Preprocessing().apply(_solid((51, 102, 255)))
    np.testing.assert_allclose(x[:, 1, 2], [0.2, 0.4, 1.0], rtol=1e-6)


def test_centre_crop_takes_the_middle() -> None:
    x = Preprocessing(crop=(2, 2), scale=1).apply(_coordinates(6, 4))  # left (6-2)/2 = 2, top (4-2)/2 = 1
    assert x.shape == (3, 2, 2)
    assert x[0].tolist() == [[20, 30], [20, 30]]
    assert x[1].tolist() == [[10, 10], [20, 20]]
    x = Preprocessing(crop=(1, 3), scale=1).apply(_coordinates(5, 5))  # height 1, width 3
    assert x.shape == (3, 1, 3) and x[0, 0].tolist() == [10, 20, 30] and x[1, 0].tolist() == [20, 20, 20]


def test_resize_keeps_aspect_with_torchvision_rounding() -> None:
    assert Preprocessing(size=25).apply(_solid((1, 2, 3), 100, 50)).shape == (3, 25, 50)
    assert Preprocessing(size=256).apply(_solid((1, 2, 3), 300, 200)).shape == (3, 256, 384)
    assert Preprocessing(size=256).apply(_solid((1, 2, 3), 200, 301)).shape == (3, 385, 256)  # int(256*301/200)
    x = Preprocessing(size=256, crop=224).apply(_solid((10, 20, 30), 500, 375))
    assert x.shape == (3, 224, 224)
    np.testing.assert_allclose(x[:, 100, 100], [10 / 255, 20 / 255, 30 / 255], rtol=1e-5)  # flat stays flat


def test_nhwc_and_bgr() -> None:
    p = Preprocessing(mean=(0.1, 0.2, 0.3), layout="NHWC", bgr=True)
    x = p.apply(_solid((255, 0, 51), 3, 2))
    assert x.shape == (2, 3, 3)
    np.testing.assert_allclose(x[0, 0], [0.2 - 0.3, 0.0 - 0.2, 1.0 - 0.1], rtol=1e-6)  # B, G, R
    rgb = Preprocessing(mean=(0.1, 0.2, 0.3)).apply(_solid((255, 0, 51), 3, 2))
    np.testing.assert_allclose(x.transpose(2, 0, 1)[::-1], rgb, rtol=1e-6)


def test_grey_models_get_one_channel() -> None:
    p = Preprocessing(mean=(0.1307,), std=(0.3081,), channels=1)
    x = p.apply(Image.new("L", (5, 3), 51))
    assert x.shape == (1, 3, 5)
    np.testing.assert_allclose(x[0, 0, 0], (0.2 - 0.1307) / 0.3081, rtol=1e-6)
    assert p.apply(_solid((51, 51, 51), 5, 3)).shape == (1, 3, 5)  # colour images are converted
    assert Preprocessing(channels=1, layout="NHWC").apply(Image.new("L", (5, 3), 0)).shape == (3, 5, 1)


def test_jpeg_draft_decode_matches_full_decode(tmp_path: Path) -> None:
    """A large JPEG is decoded at a reduced DCT scale; the result stays close to a full decode."""
    yy, xx = np.mgrid[0:480, 0:640]
    a = np.stack([xx * 255 // 639, yy * 255 // 479, (xx + yy) * 255 // 1118], axis=-1).astype(np.uint8)
    Image.fromarray(a, "RGB").save(tmp_path / "big.jpg", quality=95)
    Image.fromarray(a, "RGB").save(tmp_path / "big.png")
    p = Preprocessing(size=100, crop=100)
    with Image.open(tmp_path / "big.jpg") as im:
        fast = p.apply(im)
        assert im.size[0] < 640  # draft chose a smaller scale
    with Image.open(tmp_path / "big.png") as im:
        full = p.apply(im)
    assert fast.shape == full.shape == (3, 100, 100)
    assert float(np.abs(fast - full).mean()) < 0.02


def test_image_smaller_than_crop_is_an_error() -> None:
    with pytest.raises(EdgetuneError) as info:
        Preprocessing(crop=224).apply(_solid((0, 0, 0), 32, 32))
    assert "32x32" in str(info.value) and "224x224" in str(info.value) and "\n" not in str(info.value)


def test_describe() -> None:
    imagenet = Preprocessing(size=256, crop=224, mean=MEAN, std=STD)
    assert imagenet.describe() == ("RGB: resize 256, centre crop 224, pixel/255, then mean (0.485, 0.456, 0.406), "
                                   "std (0.229, 0.224, 0.225)")
    assert Preprocessing(size=256, crop=224, scale=1, mean=(127,), std=(128,)).describe() == \
        "RGB: resize 256, centre crop 224, (pixel - 127) / 128"
    assert Preprocessing(channels=1, mean=(0.1307,), std=(0.3081,)).describe() == "grey: (pixel/255 - 0.1307) / 0.3081"
    nhwc = Preprocessing(crop=(224, 192), layout="NHWC", bgr=True)
    assert nhwc.describe().endswith("centre crop 224x192, pixel/255, NHWC")
    assert Preprocessing(bgr=True).describe().startswith("BGR")


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"mean": (1.0, 2.0)}, "(1, 2)"),
    ({"std": (0.0,)}, "std"),
    ({"std": (1.0, -1.0, 1.0)}, "(1, -1, 1)"),
    ({"bgr": True, "channels": 1}, "BGR"),
    ({"layout": "NCWH"}, "'NCWH'"),
    ({"channels": 4}, "4"),
    ({"crop": (0, 5)}, "0x5"),
    ({"size": 0}, "0"),
    ({"scale": 0.0}, "scale"),
    ({"mean": (float("nan"),)}, "nan"),
])
def test_bad_settings_are_one_line_errors(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(EdgetuneError) as info:
        Preprocessing(**kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_for_input_and_check_input() -> None:
    p = Preprocessing.for_input((1, 3, 224, 224))
    assert (p.size, p.crop, p.layout, p.channels) == (224, (224, 224), "NCHW", 3)
    assert p.output_shape == (3, 224, 224)
    p.check_input((1, 3, 224, 224))
    q = Preprocessing.for_input((1, 32, 48, 1), mean=(0.5,))
    assert (q.size, q.crop, q.layout, q.channels, q.mean) == (32, (32, 48), "NHWC", 1, (0.5,))
    assert q.output_shape == (32, 48, 1)
    with pytest.raises(EdgetuneError, match="5x5x5"):
        Preprocessing.for_input((1, 5, 5, 5))
    with pytest.raises(EdgetuneError, match="3x224x224 per image, the model input is 1x3x256x256"):
        p.check_input((1, 3, 256, 256))
    with pytest.raises(EdgetuneError, match="--crop"):
        Preprocessing().check_input((1, 3, 8, 8))
