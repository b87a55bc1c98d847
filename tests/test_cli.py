"""The command line: JSON outputs, the main commands on small models, and one-line errors on bad input."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgetune.cli import main


def run_cli(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def run_json(capsys, *args):
    rc, out, err = run_cli(capsys, *args, "--json")
    assert rc == 0, err
    return json.loads(out)


def test_zoo_list_and_export(capsys, tmp_path):
    models = run_json(capsys, "zoo", "list")["models"]
    names = {m["name"] for m in models}
    assert {"mobilenet_v2", "resnet18", "efficientnet_lite0", "resnet20_cifar", "mnist_cnn", "vgg16"} <= names
    out = tmp_path / "m.onnx"
    res = run_json(capsys, "zoo", "export", "mnist_cnn", str(out))
    assert res["bytes"] == out.stat().st_size > 0
    onnx.checker.check_model(onnx.load(str(out)))


def test_inspect_totals(capsys):
    res = run_json(capsys, "inspect", "mnist_cnn")
    assert res["totals"]["macs"] == sum(r["macs"] for r in res["layers"]) > 0
    assert res["totals"]["params"] > 0 and res["inputs"] == {"input": [1, 1, 28, 28]}


@pytest.mark.parametrize("plan", ["blas", "reference"])
def test_run_builtin_plans(capsys, plan):
    res = run_json(capsys, "run", "mnist_cnn", "--plan", plan, "--time-cap", "0.3")
    lat = res["latency_ms"]
    assert 0 < lat["p10"] <= lat["median"] <= lat["p90"] and lat["runs"] >= 5
    mem = res["memory_bytes"]
    assert mem["total_bytes"] == mem["resident_bytes"] + mem["peak_activation_bytes"] + mem["peak_transient_bytes"]
    assert mem["measured"] and mem["resident_bytes"] >= mem["weight_bytes"] > 0
    assert res["outputs"] == {"logits": [1, 10]}


def test_run_with_input_file_and_output(capsys, tmp_path):
    x = np.random.default_rng(1).standard_normal((1, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    res = run_json(capsys, "run", "mnist_cnn", "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                   "--time-cap", "0.2")
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (1, 10) and res["top5"][0] == int(np.argmax(y))


def unsupported_model(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    k = helper.make_tensor("k", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk_3", axis=1),
        helper.make_node("FancyOp", ["v"], ["v2"], name="fancy_5"),
        helper.make_node("FancyOp", ["v2"], ["y"], name="fancy_7"),
    ]
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    g = helper.make_graph(nodes, "g", [x], [y], initializer=[k])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def check_one_line_error(rc, err, *needles):
    assert rc != 0
    text = err.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    for n in needles:
        assert n in text, text


def test_bad_inputs_give_one_line_errors(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "run", str(tmp_path / "missing.onnx"))
    check_one_line_error(rc, err, "missing.onnx", "not found")

    (tmp_path / "text.onnx").write_bytes(b"this is not a protobuf at all \xff\xfe")
    rc, _, err = run_cli(capsys, "inspect", str(tmp_path / "text.onnx"))
    check_one_line_error(rc, err, "text.onnx")

    rc, _, _ = run_cli(capsys, "zoo", "export", "mnist_cnn", str(tmp_path / "good.onnx"))
    data = (tmp_path / "good.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    rc, _, err = run_cli(capsys, "run", str(tmp_path / "cut.onnx"))
    check_one_line_error(rc, err, "cut.onnx")

    unsupported_model(tmp_path / "ops.onnx")
    rc, _, err = run_cli(capsys, "inspect", str(tmp_path / "ops.onnx"))
    check_one_line_error(rc, err, "unsupported ops", "FancyOp", "fancy_5", "fancy_7")

    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 28, 28), np.float32))
    rc, _, err = run_cli(capsys, "run", "mnist_cnn", "--input", str(tmp_path / "wrong.npy"))
    check_one_line_error(rc, err, "wrong.npy", "(1, 3, 28, 28)", "(1, 1, 28, 28)")

    rc, _, err = run_cli(capsys, "run", "mnist_cnn", "--plan", str(tmp_path / "noplan.json"))
    check_one_line_error(rc, err, "noplan.json")

    rc, _, err = run_cli(capsys, "run", "mnist_cnn", "--frobnicate")
    check_one_line_error(rc, err, "--frobnicate")

    rc, _, err = run_cli(capsys, "inspect", "no_such_model")
    check_one_line_error(rc, err, "no_such_model", "mobilenet_v2")


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "edgetune", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("edgetune ")


def test_json_stdout_holds_only_the_object_whatever_a_library_prints(capsys, monkeypatch):
    """A library that prints to stdout while a command runs (Ray forwards cluster messages from its own
    threads) must not break `--json`: what it prints goes to stderr."""
    import threading

    from edgetune.commands import device as device_cmd

    real = device_cmd.execute

    def noisy(args):
        print("(raylet) a message from a library")
        t = threading.Thread(target=print, args=("(raylet) and one from its thread",))
        t.start()
        t.join()
        return real(args)

    monkeypatch.setattr(device_cmd, "execute", noisy)
    assert main(["device", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["device"]["cpu"] and "(raylet) a message" in out.err and "from its thread" in out.err


def test_the_cli_starts_without_torch():
    """torch is optional (it cannot run on ARMv8.0 boards): with it unimportable, every command module still
    loads and `device` runs; a zoo model then is a one-line error, not a crash."""
    blocker = (
        "import sys, importlib.abc\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'torch'\")\n"
        "sys.meta_path.insert(0, B())\n"
        "from edgetune.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    ok = subprocess.run([sys.executable, "-c", blocker, "device", "--json"], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0 and json.loads(ok.stdout)["device"], ok.stderr
    zoo = subprocess.run([sys.executable, "-c", blocker, "inspect", "mnist_cnn"], capture_output=True, text=True,
                         timeout=120)
    assert zoo.returncode == 2 and "needs torch" in zoo.stderr and len(zoo.stderr.strip().splitlines()) == 1
