"""Labelled image folders: find the images and their labels, split them, decode them on demand.

Three layouts, told apart by what the folder holds (`open_dataset`):
- ``labels.csv`` (rows ``FILE, LABEL``, an optional ``file,label`` header) with the images in ``images/``
  or beside it, as ``imagenet-val-1300``;
- one sub-folder per class, class index = position of the folder name in sorted order (torchvision's
  ``ImageFolder``), as ``cifar10-test-jpeg``;
- images without labels (in the folder or in ``images/``): only fidelity to the fp32 model can be measured.

Why lazy: 1000 ImageNet inputs at 224x224 are 600 MB of float32, so only paths are listed up front and
images are decoded batch by batch.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgetune.errors import EdgetuneError

from .preprocess import Preprocessing

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".pbm",
                            ".tif", ".tiff"})
LABELS_FILE = "labels.csv"
CSV_KIND, FOLDERS_KIND, UNLABELLED_KIND = "labels.csv", "class folders", "unlabelled images"
_HEADER_LABELS = frozenset({"label", "labels", "class", "class_index", "target"})


@dataclass(frozen=True)
class LabelledData:
    """Image files with their class indices (``labels`` None: unlabelled). ``num_classes`` is the class count
    the layout implies: the number of class folders, or for labels.csv the largest label + 1 (a lower
    bound: a subset of ImageNet need not hold class 999)."""

    root: Path
    kind: str
    paths: tuple[Path, ...]
    labels: tuple[int, ...] | None
    num_classes: int | None
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labelled(self) -> bool:
        """Whether accuracy against labels can be measured (else only fidelity to the fp32 model)."""
        return self.labels is not None

    @property
    def samples(self) -> list[tuple[Path, int | None]]:
        """(path, label) pairs; the label is None for unlabelled images."""
        labels = self.labels if self.labels is not None else (None,) * len(self.paths)
        return list(zip(self.paths, labels, strict=True))

    def label_array(self) -> np.ndarray:
        """The labels as int64, for `accuracy.evaluate`; an unlabelled set has none to give."""
        if self.labels is None:
            raise EdgetuneError(f"{self.root} holds images without labels: only fidelity can be measured")
        return np.asarray(self.labels, dtype=np.int64)

    def describe(self) -> str:
        """One line, e.g. "1300 images of imagenet-val-1300 (labels.csv, 725 classes present)"."""
        if self.labels is None:
            return f"{len(self)} {self.kind} in {self.root.name}"
        present = len(set(self.labels))
        classes = (f"{self.num_classes} classes" if self.kind == FOLDERS_KIND
                   else f"{present} classes present")
        return f"{len(self)} images of {self.root.name} ({self.kind}, {classes})"

    def check_labels(self, num_classes: int) -> None:
        """One line when the labels cannot be the model's classes 0..num_classes-1. Class folders must be
        exactly the model's classes: their index is a position, so one missing folder shifts the rest."""
        if self.labels is None:
            return
        if self.kind == FOLDERS_KIND:
            if self.num_classes != num_classes:
                raise EdgetuneError(f"{self.root} has {self.num_classes} class folders but the model has "
                                    f"{num_classes} classes (a folder's class is its position in sorted order, "
                                    "so every class needs a folder; or give a labels.csv)")
            return
        for path, label in zip(self.paths, self.labels, strict=True):
            if label >= num_classes:
                raise EdgetuneError(f"{self.root / LABELS_FILE}: label {label} of {path.name} is outside the "
                                    f"model's {num_classes} classes (0..{num_classes - 1})")

    def subset(self, indices: Sequence[int]) -> LabelledData:
        """The samples at ``indices``, in that order (same root, kind and class count)."""
        labels = None if self.labels is None else tuple(self.labels[i] for i in indices)
        return LabelledData(self.root, self.kind, tuple(self.paths[i] for i in indices), labels,
                            self.num_classes, self.class_names)

    def split(self, calibration: int, evaluation: int, seed: int = 0) -> Split:
        """Disjoint calibration and evaluation subsets, drawn by ``seed``: stratified by class when labelled
        (each subset holds every class in proportion), shuffled otherwise."""
        for what, n in (("calibration", calibration), ("evaluation", evaluation)):
            if n < 0:
                raise EdgetuneError(f"{what} samples must be >= 0, got {n}")
        if calibration + evaluation > len(self):
            raise EdgetuneError(f"{self.root} holds {len(self)} images, fewer than the {calibration} calibration "
                                f"+ {evaluation} evaluation samples asked for")
        order = _stratified_order(self.labels, len(self), seed)
        return Split(self.subset(order[:calibration]), self.subset(order[calibration:calibration + evaluation]),
                     seed, len(self))

    def sample(self, index: int, preprocessing: Preprocessing) -> np.ndarray:
        """One decoded image as `preprocessing` lays it out (no batch axis)."""
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                x = preprocessing.apply(image)
        except EdgetuneError as exc:
            raise EdgetuneError(f"{path}: {exc}") from None
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            raise EdgetuneError(f"cannot read image {path}: {' '.join(str(exc).split())}") from None
        return x

    def load(self, preprocessing: Preprocessing, indices: Sequence[int] | None = None) -> np.ndarray:
        """The images at ``indices`` (all by default) as one float32 batch (N, C, H, W) or (N, H, W, C)."""
        indices = range(len(self)) if indices is None else indices
        arrays = [self.sample(i, preprocessing) for i in indices]
        if not arrays:
            shape = preprocessing.output_shape or (preprocessing.channels, 0, 0)
            return np.zeros((0, *shape), np.float32)
        first = arrays[0].shape
        for i, a in zip(indices, arrays, strict=True):
            if a.shape != first:
                raise EdgetuneError(f"{self.paths[i]} gives an array of {'x'.join(map(str, a.shape))}, the first "
                                    f"image {'x'.join(map(str, first))}: set a centre crop (--crop)")
        return np.stack(arrays)

    def batches(self, preprocessing: Preprocessing, batch_size: int = 32) -> Iterator[np.ndarray]:
        """The images in order, ``batch_size`` at a time, so a large evaluation never sits in memory whole."""
        if batch_size < 1:
            raise EdgetuneError(f"batch size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            yield self.load(preprocessing, range(start, min(start + batch_size, len(self))))


@dataclass(frozen=True)
class Split:
    """Calibration and evaluation samples drawn from one data set, never sharing an image."""

    calibration: LabelledData
    evaluation: LabelledData
    seed: int
    total: int

    def describe(self) -> str:
        """One line for the report, e.g. "calibration 300 + evaluation 1000 of 1300 images (seed 0)"."""
        how = "stratified" if self.evaluation.labelled else "shuffled"
        return (f"calibration {len(self.calibration)} + evaluation {len(self.evaluation)} of {self.total} "
                f"images of {self.evaluation.root.name} ({how}, seed {self.seed})")


def open_dataset(root: str | Path) -> LabelledData:
    """The data set in folder ``root``, its layout detected (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise EdgetuneError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise EdgetuneError(f"data folder {root} is not a folder")
    if (root / LABELS_FILE).is_file():
        return _from_csv(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = _images_in(root, recursive=False)
    if [f.name for f in folders] == ["images"] and not loose:
        return _unlabelled(root, _images_in(folders[0], recursive=True))
    if folders and loose:
        raise EdgetuneError(f"data folder {root} mixes images ({loose[0].name}, ...) with class folders "
                            f"({folders[0].name}, ...): keep one layout")
    if folders:
        return _from_class_folders(root, folders)
    return _unlabelled(root, loose)


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                  and p.is_file())


def _none_found(root: Path) -> EdgetuneError:
    return EdgetuneError(f"data folder {root} holds no images (expected labels.csv with images/, one folder "
                         f"per class, or image files; suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")


def _unlabelled(root: Path, images: list[Path]) -> LabelledData:
    if not images:
        raise _none_found(root)
    return LabelledData(root, UNLABELLED_KIND, tuple(images), None, None)


def _from_class_folders(root: Path, folders: list[Path]) -> LabelledData:
    paths: list[Path] = []
    labels: list[int] = []
    for index, folder in enumerate(folders):
        images = _images_in(folder, recursive=True)
        paths += images
        labels += [index] * len(images)
    if not paths:
        raise _none_found(root)
    return LabelledData(root, FOLDERS_KIND, tuple(paths), tuple(labels), len(folders),
                        tuple(f.name for f in folders))


def _from_csv(root: Path) -> LabelledData:
    csv_path = root / LABELS_FILE
    image_dir = root / "images" if (root / "images").is_dir() else root
    paths: list[Path] = []
    labels: list[int] = []
    seen: dict[str, int] = {}
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            for lineno, row in enumerate(csv.reader(f, skipinitialspace=True), start=1):
                if not row or all(not cell.strip() for cell in row):
                    continue
                name, label = _csv_row(csv_path, lineno, row)
                if label is None:  # header
                    continue
                if name in seen:
                    raise EdgetuneError(f"{csv_path}:{lineno}: {name} is listed twice (first on line {seen[name]})")
                seen[name] = lineno
                path = image_dir / name
                if not path.is_file():
                    raise EdgetuneError(f"{csv_path}:{lineno}: image {name} not found in {image_dir}")
                paths.append(path)
                labels.append(label)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EdgetuneError(f"cannot read {csv_path}: {' '.join(str(exc).split())}") from None
    if not paths:
        raise EdgetuneError(f"{csv_path} lists no images")
    return LabelledData(root, CSV_KIND, tuple(paths), tuple(labels), max(labels) + 1)


def _csv_row(csv_path: Path, lineno: int, row: list[str]) -> tuple[str, int | None]:
    """(file, label) of one row; label None for a header on line 1."""
    cells = [c.strip() for c in row]
    if len(cells) != 2 or not cells[0]:
        raise EdgetuneError(f"{csv_path}:{lineno}: expected 'FILE, LABEL', got {', '.join(row)!r}")
    name, text = cells
    try:
        label = int(text)
    except ValueError:
        if lineno == 1 and text.lower() in _HEADER_LABELS:
            return name, None
        raise EdgetuneError(f"{csv_path}:{lineno}: label {text!r} of {name} is not a class index") from None
    if label < 0:
        raise EdgetuneError(f"{csv_path}:{lineno}: label {label} of {name} is negative")
    return name, label


def _stratified_order(labels: tuple[int, ...] | None, n: int, seed: int) -> list[int]:
    """A seeded order of 0..n-1 in which every prefix holds each class in proportion to its size.

    Each sample's key is (its rank in a shuffle of its class + a random offset) / class size, so sorting by
    key interleaves the classes evenly; the calibration set is a prefix and the evaluation set the
    next slice, which keeps them disjoint and both stratified.
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        return [int(i) for i in rng.permutation(n)]
    y = np.asarray(labels)
    key = np.empty(n, dtype=np.float64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        ranks = rng.permutation(len(members))
        key[members] = (ranks + rng.random(len(members))) / len(members)
    return [int(i) for i in np.argsort(key, kind="stable")]
