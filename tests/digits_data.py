"""A real labelled data set and a really trained model, small enough for tests: scikit-learn's digits.

scikit-learn ships the digits (1797 8x8 grey images, labels 0-9) inside its package, so tests need no
download and no ../shared. `write_digits` lays them out as one PNG folder per class (the CIFAR layout);
`train_digits_cnn` trains a small CNN on the training part in a few seconds (fixed seeds, CPU, one
thread) and exports it to ONNX as the zoo does. Held out: every third image (index % 3 == 0), about 600,
on which the net scores well above 90 % top-1.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx

from edgetune.data.preprocess import Preprocessing

INPUT_SHAPE = (1, 1, 8, 8)
NUM_CLASSES = 10
HELD_OUT_EVERY = 3
SEED = 0
# PNG pixels 0..255 (the 0..16 digits scaled), grey, 8x8 kept, then (x/255 - 0.5) / 0.5
PREPROCESSING = Preprocessing(crop=8, mean=(0.5,), std=(0.5,), channels=1)


@functools.cache
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The images as uint8 (1797, 8, 8) in 0..255 (what the PNGs hold) and the labels int64 (1797,)."""
    from sklearn.datasets import load_digits  # dev-only dependency, loaded by the tests that need it

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def held_out(n: int) -> np.ndarray:
    """Whether each of ``n`` samples is held out of training."""
    return np.arange(n) % HELD_OUT_EVERY == 0


def write_digits(root: str | Path, part: str = "all") -> Path:
    """Write ``part`` ("all", "train" or "held_out") as ``root/<digit>/<index>.png``; returns ``root``."""
    from PIL import Image  # only the PNG writer needs it

    if part not in ("all", "train", "held_out"):
        raise ValueError(f"part must be all, train or held_out, got {part!r}")
    images, labels = digits_arrays()
    keep = held_out(len(labels))
    root = Path(root)
    for digit in range(NUM_CLASSES):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        if part == "all" or keep[i] == (part == "held_out"):
            Image.fromarray(image, mode="L").save(root / str(label) / f"{i:04d}.png")
    return root


def model_inputs(images: np.ndarray) -> np.ndarray:
    """The float32 (N, 1, 8, 8) inputs `PREPROCESSING` makes of uint8 images (N, 8, 8)."""
    mean, std = PREPROCESSING.mean[0], PREPROCESSING.std[0]
    return ((images.astype(np.float32) / PREPROCESSING.scale - mean) / std)[:, None, :, :]


@functools.cache
def _trained() -> object:
    """The trained torch module (once per process: training takes a few seconds)."""
    import torch  # the training needs torch; importing this module must not
    from torch import nn

    images, labels = digits_arrays()
    train = ~held_out(len(labels))
    x = torch.from_numpy(model_inputs(images[train]))
    y = torch.from_numpy(labels[train])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            model = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES))
            optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
            batches = torch.Generator().manual_seed(SEED)
            model.train()
            for _ in range(8):
                for idx in torch.randperm(len(y), generator=batches).split(64):
                    optimiser.zero_grad()
                    nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                    optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def train_digits_cnn(out_dir: str | Path) -> Path:
    """Train (once per process) and export the digits CNN to ``out_dir/digits_cnn.onnx`` (opset 17, input
    ``input`` 1x1x8x8, output ``logits`` 1x10, BatchNormalization kept as a node); returns the path."""
    from edgetune.zoo.onnx_export import export_module  # the zoo's exporter: loads torch

    proto = export_module(_trained(), INPUT_SHAPE)  # type: ignore[arg-type]
    proto.graph.name = "digits_cnn"
    path = Path(out_dir) / "digits_cnn.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path
