"""The two real data sets in $EDGETUNE_DATA load with the right shapes and labels (skipped without them)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgetune.data import Preprocessing, open_dataset

DATA = Path(os.environ.get("EDGETUNE_DATA", "")) / "datasets" if os.environ.get("EDGETUNE_DATA") else None
IMAGENET_NORM = Preprocessing(size=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
LITE0 = Preprocessing(size=256, crop=224, scale=1, mean=(127,), std=(128,))
CIFAR = Preprocessing(size=32, crop=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def _folder(name: str) -> Path:
    if DATA is None or not (DATA / name).is_dir():
        pytest.skip(f"EDGETUNE_DATA unset or without datasets/{name}")
    return DATA / name


def test_imagenet_val_1300() -> None:
    d = open_dataset(_folder("imagenet-val-1300"))
    assert d.kind == "labels.csv" and len(d) == 1300 and len(set(d.labels)) == 725
    d.check_labels(1000)
    s = d.split(20, 20, seed=0)
    assert not set(s.calibration.paths) & set(s.evaluation.paths)
    for p in (IMAGENET_NORM, LITE0):
        x = s.evaluation.load(p)
        assert x.shape == (20, 3, 224, 224) and x.dtype == np.float32 and np.isfinite(x).all()
    assert -2.2 < x.min() < -0.9 and 0.9 < x.max() <= 1.0  # (0..255 - 127) / 128
    assert all(0 <= y < 1000 for y in s.evaluation.labels)


def test_cifar10_test_jpeg() -> None:
    d = open_dataset(_folder("cifar10-test-jpeg"))
    assert d.kind == "class folders" and len(d) == 10000 and d.num_classes == 10
    assert d.class_names[0] == "airplane" and d.class_names[9] == "truck"
    d.check_labels(10)
    s = d.split(0, 20, seed=0)
    x = s.evaluation.load(CIFAR)
    assert x.shape == (20, 3, 32, 32) and np.isfinite(x).all()
    assert sorted(set(s.evaluation.labels)) == list(range(10))  # stratified: 2 of each class
    assert all(d.class_names[y] == p.parent.name for p, y in s.evaluation.samples)
