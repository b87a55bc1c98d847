"""How an image becomes a model input: resize, centre crop, scale, normalise, channel order and layout.

Why structured and not a sentence: accuracy under a budget is only meaningful when the images reach the
model exactly as it was trained on them (the usual mean/std instead of EfficientNet-Lite's
``(pixel - 127) / 128`` costs about 11 points), so the zoo, the CLI flags and the data loader share one
value that both runs the steps and describes them in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from edgetune.errors import EdgetuneError

LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class Preprocessing:
    """The steps, in order: decode (RGB, or grey for ``channels=1``), resize the shorter side to ``size``
    (bilinear, aspect kept), centre crop ``crop`` (height, width), divide by ``scale``, subtract ``mean``
    and divide by ``std`` per channel (given in R, G, B order), reverse the channels when ``bgr``, lay out
    as (C, H, W) or (H, W, C). ``mean``/``std`` of one value apply to every channel."""

    size: int | None = None
    crop: tuple[int, int] | None = None
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NCHW"
    bgr: bool = False
    channels: int = 3

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise EdgetuneError(f"preprocessing: channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.layout not in LAYOUTS:
            raise EdgetuneError(f"preprocessing: layout must be NCHW or NHWC, got {self.layout!r}")
        if self.bgr and self.channels != 3:
            raise EdgetuneError("preprocessing: BGR order needs 3 channels, the model takes 1 (grey)")
        if self.size is not None and self.size < 1:
            raise EdgetuneError(f"preprocessing: resize size must be >= 1 pixel, got {self.size}")
        crop = self.crop
        if isinstance(crop, int):
            crop = (crop, crop)
        if crop is not None:
            crop = (int(crop[0]), int(crop[1]))
            if min(crop) < 1:
                raise EdgetuneError(f"preprocessing: crop must be >= 1 pixel, got {crop[0]}x{crop[1]}")
        object.__setattr__(self, "crop", crop)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise EdgetuneError(f"preprocessing: scale must be a number > 0, got {self.scale}")
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "mean", self._per_channel("mean", self.mean))
        std = self._per_channel("std", self.std)
        if min(std) <= 0:
            raise EdgetuneError(f"preprocessing: std must be > 0, got {_numbers(std)}")
        object.__setattr__(self, "std", std)

    def _per_channel(self, what: str, values: tuple[float, ...]) -> tuple[float, ...]:
        values = tuple(float(v) for v in values)
        if not all(math.isfinite(v) for v in values):
            raise EdgetuneError(f"preprocessing: {what} must be finite numbers, got {_numbers(values)}")
        if len(values) == 1:
            return values * self.channels
        if len(values) != self.channels:
            raise EdgetuneError(f"preprocessing: {what} needs {self.channels} value(s) or one, "
                                f"got {_numbers(values)}")
        return values

    @classmethod
    def for_input(cls, input_shape: tuple[int, ...], **changes: object) -> Preprocessing:
        """A default for a model known only by its input shape (1, C, H, W) or (1, H, W, C): resize the
        shorter side to the input's and crop to it, pixels/255, no normalisation."""
        if len(input_shape) != 4:
            raise EdgetuneError(f"an image model takes a 4-d input (N, C, H, W), this one "
                                f"{'x'.join(map(str, input_shape))}")
        if input_shape[1] in (1, 3):
            layout, (channels, h, w) = "NCHW", input_shape[1:]
        elif input_shape[3] in (1, 3):
            layout, (h, w, channels) = "NHWC", input_shape[1:]
        else:
            raise EdgetuneError(f"input {'x'.join(map(str, input_shape))} has neither 1 nor 3 channels "
                                "in NCHW or NHWC: not an image input")
        base = {"size": min(h, w), "crop": (h, w), "layout": layout, "channels": channels}
        return cls(**{**base, **changes})  # type: ignore[arg-type]

    @property
    def output_shape(self) -> tuple[int, int, int] | None:
        """The shape ``apply`` returns, when a crop fixes it (otherwise it follows each image)."""
        if self.crop is None:
            return None
        h, w = self.crop
        return (self.channels, h, w) if self.layout == "NCHW" else (h, w, self.channels)

    def check_input(self, input_shape: tuple[int, ...]) -> None:
        """One line when the arrays this makes cannot feed a model input of ``input_shape``."""
        out = self.output_shape
        shape = "x".join(map(str, input_shape))
        if out is None:
            raise EdgetuneError(f"preprocessing gives each image's own size: set a crop (--crop) for the "
                                f"model input {shape}")
        if tuple(input_shape[1:]) != out:
            raise EdgetuneError(f"preprocessing ({self.describe()}) gives {'x'.join(map(str, out))} per image, "
                                f"the model input is {shape}")

    def apply(self, image: Image.Image) -> np.ndarray:
        """The float32 array of one image, (C, H, W) for NCHW or (H, W, C) for NHWC."""
        mode = "L" if self.channels == 1 else "RGB"
        if self.size is not None and image.format == "JPEG":
            image.draft(mode, (self.size, self.size))  # DCT-domain downscale, kept >= size: decodes 2-8x faster
        image = image.convert(mode)
        if self.size is not None:
            image = _resize_shorter(image, self.size)
        if self.crop is not None:
            image = _centre_crop(image, self.crop)
        x = np.asarray(image, dtype=np.float32)
        if x.ndim == 2:
            x = x[:, :, None]
        std = np.asarray(self.std, np.float32)
        x = x * (1.0 / (self.scale * std)) - np.asarray(self.mean, np.float32) / std
        if self.bgr:
            x = x[:, :, ::-1]
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def describe(self) -> str:
        """One readable line, e.g. "RGB: resize 256, centre crop 224, (pixel - 127) / 128"."""
        colour = "grey" if self.channels == 1 else ("BGR (channels reversed after normalising)" if self.bgr
                                                   else "RGB")
        steps = []
        if self.size is not None:
            steps.append(f"resize {self.size}")
        if self.crop is not None:
            h, w = self.crop
            steps.append(f"centre crop {h}" if h == w else f"centre crop {h}x{w}")
        steps.append(self._formula())
        if self.layout != "NCHW":
            steps.append(self.layout)
        return f"{colour}: {', '.join(steps)}"

    def _formula(self) -> str:
        pixel = "pixel" if self.scale == 1 else f"pixel/{self.scale:g}"
        if all(m == 0 for m in self.mean) and all(s == 1 for s in self.std):
            return pixel
        if len(set(self.mean)) == 1 and len(set(self.std)) == 1:
            return f"({pixel} - {self.mean[0]:g}) / {self.std[0]:g}"
        return f"{pixel}, then mean {_numbers(self.mean)}, std {_numbers(self.std)}"


def _numbers(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _resize_shorter(image: Image.Image, size: int) -> Image.Image:
    """torchvision's ``Resize(size)``: the shorter side to ``size``, the longer one truncated to scale."""
    w, h = image.size
    if min(w, h) == size:
        return image
    if w <= h:
        new = (size, int(size * h / w))
    else:
        new = (int(size * w / h), size)
    return image.resize(new, Image.Resampling.BILINEAR)


def _centre_crop(image: Image.Image, crop: tuple[int, int]) -> Image.Image:
    """torchvision's ``CenterCrop``, except that an image smaller than the crop is an error (padding it
    with black would feed the model pictures it was never trained on)."""
    ch, cw = crop
    w, h = image.size
    if ch > h or cw > w:
        raise EdgetuneError(f"image is {w}x{h} (width x height), smaller than the centre crop {cw}x{ch}: "
                            "resize it first (--size)")
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    if (top, left, ch, cw) == (0, 0, h, w):
        return image
    return image.crop((left, top, left + cw, top + ch))
