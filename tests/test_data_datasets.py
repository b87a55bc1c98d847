"""Data-set folders: both labelled layouts and plain images load with the right labels, splits are disjoint,
stratified and seeded, and every bad input is one line naming the file or value at fault."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgetune.data import LabelledData, Preprocessing, open_dataset
from edgetune.errors import EdgetuneError

CROP = Preprocessing(crop=4)


def _png(path: Path, value: int = 0, size: tuple[int, int] = (4, 4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def _class_folders(root: Path, counts: dict[str, int]) -> Path:
    for cls, n in counts.items():
        for i in range(n):
            _png(root / cls / f"{i:03d}.png", value=10 * i)
    return root


def _csv_data(root: Path, rows: list[tuple[str, int]], sub: str = "images", header: bool = False) -> Path:
    for name, label in rows:
        _png(root / sub / name, value=label)
    lines = (["file,label"] if header else []) + [f"{n}, {lbl}" for n, lbl in rows]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def _error(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(EdgetuneError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_labels_csv_with_images_folder(tmp_path: Path) -> None:
    d = open_dataset(_csv_data(tmp_path, [("a.png", 3), ("b.png", 0), ("c.png", 7)], header=True))
    assert d.kind == "labels.csv" and d.labelled and len(d) == 3
    assert [(p.name, y) for p, y in d.samples] == [("a.png", 3), ("b.png", 0), ("c.png", 7)]
    assert d.num_classes == 8  # largest label + 1
    assert d.label_array().tolist() == [3, 0, 7] and d.label_array().dtype == np.int64
    x = d.load(CROP)
    assert x.shape == (3, 3, 4, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0, 0], [3 / 255, 0, 7 / 255], rtol=1e-6)  # each file its own pixels
    d.check_labels(8)
    d.check_labels(1000)


def test_labels_csv_with_images_beside_it(tmp_path: Path) -> None:
    d = open_dataset(_csv_data(tmp_path, [("x.png", 1), ("y.png", 2)], sub="."))
    assert [p.name for p in d.paths] == ["x.png", "y.png"] and d.labels == (1, 2)


def test_class_folders_in_sorted_order(tmp_path: Path) -> None:
    root = _class_folders(tmp_path, {"cat": 2, "ant": 3, "bee": 1})
    _png(root / "bee" / "nested" / "deep.png")  # sub-folders of a class belong to it
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    d = open_dataset(root)
    assert d.kind == "class folders" and d.num_classes == 3
    assert d.class_names == ("ant", "bee", "cat")
    assert Counter(d.labels) == {0: 3, 1: 2, 2: 2}
    assert all(d.class_names[y] in p.relative_to(root).parts[:1] for p, y in d.samples)
    assert d.describe() == f"7 images of {root.name} (class folders, 3 classes)"
    d.check_labels(3)


def test_plain_images_are_unlabelled(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "flat" / f"{i}.png")
        _png(tmp_path / "sub" / "images" / f"{i}.png")
    for root in (tmp_path / "flat", tmp_path / "sub"):
        d = open_dataset(root)
        assert d.kind == "unlabelled images" and not d.labelled and d.labels is None and len(d) == 3
        assert d.samples[0][1] is None
        d.check_labels(10)  # nothing to check
        assert d.load(CROP).shape == (3, 3, 4, 4)
        assert "without labels" in _error(d.label_array)


def test_batches_cover_everything_in_order(tmp_path: Path) -> None:
    d = open_dataset(_class_folders(tmp_path, {"a": 5, "b": 2}))
    batches = list(d.batches(CROP, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), d.load(CROP))
    assert d.load(CROP, []).shape == (0, 3, 4, 4)


def _ids(data: LabelledData) -> set[str]:
    return {str(p) for p in data.paths}


def test_split_is_disjoint_stratified_and_seeded(tmp_path: Path) -> None:
    d = open_dataset(_class_folders(tmp_path, {"a": 10, "b": 10, "c": 20}))
    s = d.split(8, 20, seed=3)
    assert len(s.calibration) == 8 and len(s.evaluation) == 20
    assert not _ids(s.calibration) & _ids(s.evaluation)
    assert Counter(s.calibration.labels) == {0: 2, 1: 2, 2: 4}  # every class in proportion
    assert Counter(s.evaluation.labels) == {0: 5, 1: 5, 2: 10}
    again = d.split(8, 20, seed=3)
    assert again.calibration.paths == s.calibration.paths and again.evaluation.paths == s.evaluation.paths
    other = d.split(8, 20, seed=4)
    assert other.calibration.paths != s.calibration.paths
    assert s.describe() == f"calibration 8 + evaluation 20 of 40 images of {tmp_path.name} (stratified, seed 3)"
    full = d.split(10, 30, seed=0)
    assert _ids(full.calibration) | _ids(full.evaluation) == _ids(d)
    for p, y in full.evaluation.samples:  # labels travel with their files
        assert d.class_names[y] == p.parent.name


def test_split_of_unlabelled_images(tmp_path: Path) -> None:
    for i in range(10):
        _png(tmp_path / f"{i}.png")
    s = open_dataset(tmp_path).split(3, 7, seed=1)
    assert len(s.calibration) == 3 and len(s.evaluation) == 7
    assert not _ids(s.calibration) & _ids(s.evaluation)
    assert "shuffled" in s.describe() and s.evaluation.labels is None


def test_missing_empty_and_mixed_folders(tmp_path: Path) -> None:
    assert str(tmp_path / "nope") in _error(open_dataset, tmp_path / "nope")
    f = tmp_path / "file.png"
    f.write_bytes(b"")
    assert "is not a folder" in _error(open_dataset, f)
    (tmp_path / "empty").mkdir()
    assert "holds no images" in _error(open_dataset, tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.md").write_text("hi")
    assert "holds no images" in _error(open_dataset, tmp_path / "text")
    (tmp_path / "classes" / "a").mkdir(parents=True)
    (tmp_path / "classes" / "b").mkdir()
    assert "holds no images" in _error(open_dataset, tmp_path / "classes")
    mixed = _class_folders(tmp_path / "mixed", {"a": 1, "b": 1})
    _png(mixed / "loose.png")
    assert "loose.png" in _error(open_dataset, mixed)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    root = _class_folders(tmp_path, {"a": 2, "b": 1})
    (root / "b" / "broken.png").write_bytes(b"this is not a png")
    d = open_dataset(root)
    msg = _error(d.load, CROP)
    assert "cannot read image" in msg and "broken.png" in msg


def test_image_too_small_for_the_crop_is_named(tmp_path: Path) -> None:
    root = tmp_path / "d"
    _png(root / "a" / "big.png", size=(8, 8))
    _png(root / "b" / "tiny.png", size=(2, 2))
    msg = _error(open_dataset(root).load, CROP)
    assert "tiny.png" in msg and "smaller than the centre crop" in msg
    msg = _error(open_dataset(root).load, Preprocessing())
    assert "tiny.png" in msg and "--crop" in msg  # sizes differ and nothing makes them equal


@pytest.mark.parametrize(("lines", "needle"), [
    (["a.png, 1, 2"], "labels.csv:1: expected 'FILE, LABEL', got 'a.png, 1, 2'"),
    (["a.png"], "labels.csv:1: expected 'FILE, LABEL'"),
    (["a.png, 1", "a.png, cat"], "labels.csv:2: label 'cat' of a.png is not a class index"),
    (["a.png, -1"], "labels.csv:1: label -1 of a.png is negative"),
    (["a.png, 1", "missing.png, 2"], "labels.csv:2: image missing.png not found"),
    (["a.png, 1", "a.png, 2"], "labels.csv:2: a.png is listed twice (first on line 1)"),
    ([], "lists no images"),
    (["file,label"], "lists no images"),
])
def test_malformed_csv_rows(tmp_path: Path, lines: list[str], needle: str) -> None:
    _png(tmp_path / "images" / "a.png")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    assert needle in _error(open_dataset, tmp_path)


def test_labels_outside_the_models_classes(tmp_path: Path) -> None:
    d = open_dataset(_csv_data(tmp_path / "csv", [("a.png", 2), ("b.png", 10)]))
    msg = _error(d.check_labels, 10)
    assert "label 10 of b.png" in msg and "10 classes (0..9)" in msg
    folders = open_dataset(_class_folders(tmp_path / "folders", {"a": 1, "b": 1, "c": 1}))
    msg = _error(folders.check_labels, 10)
    assert "3 class folders" in msg and "10 classes" in msg


def test_fewer_samples_than_asked_for(tmp_path: Path) -> None:
    d = open_dataset(_class_folders(tmp_path, {"a": 3, "b": 3}))
    msg = _error(d.split, 4, 3, 0)
    assert "holds 6 images" in msg and "4 calibration + 3 evaluation" in msg
    assert "-1" in _error(d.split, -1, 3, 0)
