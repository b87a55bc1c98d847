"""The digits fixture the accuracy-budget tests build on: a real labelled folder and a really trained CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgetune.data import evaluate, open_dataset
from tests import digits_data


def test_writes_a_folder_per_class_dataset(tmp_path: Path) -> None:
    d = open_dataset(digits_data.write_digits(tmp_path / "all"))
    assert len(d) == 1797 and d.kind == "class folders" and d.num_classes == 10
    assert d.class_names == tuple(str(i) for i in range(10))
    d.check_labels(10)
    images, labels = digits_data.digits_arrays()
    index = [int(p.stem) for p in d.paths]
    assert d.labels == tuple(labels[index].tolist())
    x = d.load(digits_data.PREPROCESSING, range(50))  # the PNGs give exactly the training inputs
    np.testing.assert_allclose(x, digits_data.model_inputs(images[index[:50]]), rtol=0, atol=1e-6)
    held = open_dataset(digits_data.write_digits(tmp_path / "held", "held_out"))
    train = open_dataset(digits_data.write_digits(tmp_path / "train", "train"))
    assert len(held) == 599 and len(train) == 1198
    assert not {p.name for p in held.paths} & {p.name for p in train.paths}


def test_trained_cnn_exports_and_classifies_held_out_digits(tmp_path: Path) -> None:
    path = digits_data.train_digits_cnn(tmp_path)
    model = onnx.load(str(path))
    assert model.opset_import[0].version == 17
    assert "BatchNormalization" in {n.op_type for n in model.graph.node}
    held = open_dataset(digits_data.write_digits(tmp_path / "held", "held_out"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = held.load(digits_data.PREPROCESSING)
    digits_data.PREPROCESSING.check_input(digits_data.INPUT_SHAPE)
    logits = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    result = evaluate(logits, held.label_array())
    assert result.samples == 599
    assert result.value > 90.0, result.describe()
    assert digits_data.train_digits_cnn(tmp_path / "again").read_bytes() == path.read_bytes()  # same net
