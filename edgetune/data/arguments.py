"""The labelled-data and preprocessing flags, shared by the commands that measure accuracy.

Preprocessing flags override the model's own steps one by one (a zoo model brings its own; a user's
.onnx gets `Preprocessing.for_input`), so a user fixes the one step that differs without restating the rest.
Values argparse can check alone (numbers, >= 0) fail at parse time; those that depend on the model (how
many channels ``--mean`` needs) fail in `preprocessing_from_args`, both as one line naming flag and value.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from edgetune.errors import EdgetuneError

from .preprocess import LAYOUTS, Preprocessing

DEFAULT_MAX_DROP = 0.5
DEFAULT_CALIBRATION = 300
DEFAULT_EVALUATION = 1000


def _points(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of accuracy points") from None
    if not (math.isfinite(x) and x >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0 accuracy points, got {text}")
    return x


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of samples") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 samples, got {n}")
    return n


def _pixels(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 pixel, got {n}")
    return n


def _crop(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a crop size N or HxW in pixels >= 1")
    return (sizes[0], sizes[-1])


def _positive(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return x


def _numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers R,G,B")
    return values


def _layout(text: str) -> str:
    if text.upper() not in LAYOUTS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a layout ({' or '.join(LAYOUTS)})")
    return text.upper()


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, the accuracy budget, the sample counts and the preprocessing overrides."""
    g = parser.add_argument_group("accuracy budget (labelled data)")
    g.add_argument("--data", metavar="DIR",
                   help="images to measure accuracy on: labels.csv + images/, one folder per class, or plain "
                        "images (then fidelity to the fp32 model)")
    g.add_argument("--max-accuracy-drop", type=_points, default=DEFAULT_MAX_DROP, metavar="POINTS",
                   help=f"largest top-1 loss against fp32, in points (default {DEFAULT_MAX_DROP})")
    g.add_argument("--calibration-samples", type=_count, default=DEFAULT_CALIBRATION, metavar="N",
                   help=f"images for int8 calibration (default {DEFAULT_CALIBRATION})")
    g.add_argument("--evaluation-samples", type=_count, default=DEFAULT_EVALUATION, metavar="N",
                   help=f"images for accuracy, disjoint from calibration (default {DEFAULT_EVALUATION})")
    p = parser.add_argument_group("preprocessing (overrides the model's own)")
    p.add_argument("--size", type=_pixels, metavar="N", help="resize the shorter side to N pixels")
    p.add_argument("--crop", type=_crop, metavar="N|HxW", help="centre crop to N x N or H x W pixels")
    p.add_argument("--scale", type=_positive, metavar="S", help="divide pixels (0..255) by S first")
    p.add_argument("--mean", type=_numbers, metavar="R,G,B", help="subtract per channel after --scale")
    p.add_argument("--std", type=_numbers, metavar="R,G,B", help="then divide per channel")
    p.add_argument("--layout", type=_layout, metavar="NCHW|NHWC", help="the model input's layout")
    p.add_argument("--bgr", action="store_true", default=None, help="feed channels as B, G, R")


def preprocessing_from_args(args: argparse.Namespace, default: Preprocessing | None = None) -> Preprocessing:
    """The model's preprocessing (``default``, else `Preprocessing()`) with every flag given replacing its step."""
    base = default if default is not None else Preprocessing()
    changes: dict[str, object] = {}
    for name in ("size", "crop", "scale", "layout", "bgr"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    for flag, name in (("--mean", "mean"), ("--std", "std")):
        values = getattr(args, name, None)
        if values is None:
            continue
        if len(values) not in (1, base.channels):
            want = "R,G,B (or one value for all)" if base.channels == 3 else "one value (the model is grey)"
            raise EdgetuneError(f"{flag} {','.join(f'{v:g}' for v in values)}: expected {want}")
        if name == "std" and min(values) <= 0:
            raise EdgetuneError(f"{flag} {','.join(f'{v:g}' for v in values)}: every value must be > 0")
        changes[name] = values
    if changes.get("bgr") and base.channels != 3:
        raise EdgetuneError("--bgr: the model takes 1 channel (grey), there is no colour order to change")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
