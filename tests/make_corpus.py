"""The bad-input corpus: broken models, plans, databases, data and flag combinations, as a new user makes them.

`build_corpus(folder)` writes the files into `folder` and returns one `Case` per CLI invocation; each case
must end in a one-line error naming the thing at fault (`expect="error"`) or, where the behaviour may
legitimately change (old opsets being upgraded, unknown ops moving to ONNX Runtime), either succeed or fail
in one line (`expect="any"`); never a traceback or an internal error. tests/test_corpus.py runs them all.

Run `python tests/make_corpus.py OUT_DIR` to write the files and print the cases.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: str = "error"  # "error": non-zero exit, one line naming `needles`; "any": one line or success
    needles: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _vi(name: str, shape: list | None, dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _model(nodes: list, inputs: list, outputs: list, inits: dict | None = None, opset: int = 17) -> onnx.ModelProto:
    tensors = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = helper.make_graph(nodes, "corpus", inputs, outputs, initializer=tensors)
    op = helper.make_opsetid("", opset)
    m = helper.make_model(g, opset_imports=[op])
    m.ir_version = min(helper.find_min_ir_version_for([op]) if opset <= 21 else onnx.IR_VERSION, onnx.IR_VERSION)
    return m


def _conv_model(shape: list | None = None, weight: np.ndarray | None = None, opset: int = 17) -> onnx.ModelProto:
    """Conv(3->4, 3x3) + Relu on a 1x3x8x8 input: the smallest realistic model."""
    w = weight if weight is not None else np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu0")]
    return _model(nodes, [_vi("x", shape or [1, 3, 8, 8])], [_vi("y", None)], {"w": w}, opset=opset)


def _save(m: onnx.ModelProto, path: Path) -> str:
    path.write_bytes(m.SerializeToString())
    return str(path)


def _single_op(op: str, inputs: list, outputs: list, ins: list, outs: list, inits: dict | None = None,
               **attrs) -> onnx.ModelProto:
    return _model([helper.make_node(op, inputs, outputs, name=f"{op.lower()}_0", **attrs)], ins, outs, inits)


def _models(d: Path) -> list[Case]:
    good = _save(_conv_model(), d / "good.onnx")
    data = Path(good).read_bytes()
    (d / "empty.onnx").write_bytes(b"")
    (d / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (d / "not_onnx.onnx").write_text("name,value\nthis is a csv file,1\n")
    (d / "wrong_magic.onnx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (d / "folder.onnx").mkdir(exist_ok=True)
    cases = [
        Case("empty file", ["inspect", str(d / "empty.onnx")], needles=["empty.onnx"]),
        Case("truncated file", ["inspect", str(d / "truncated.onnx")], needles=["truncated.onnx"]),
        Case("not ONNX (csv text)", ["inspect", str(d / "not_onnx.onnx")], needles=["not_onnx.onnx"]),
        Case("wrong magic (PNG bytes)", ["run", str(d / "wrong_magic.onnx")], needles=["wrong_magic.onnx"]),
        Case("a directory as the model", ["inspect", str(d / "folder.onnx")], needles=["folder.onnx", "directory"]),
        Case("missing model file", ["profile", str(d / "nowhere.onnx"), "--db", str(d / "m.sqlite")],
             needles=["nowhere.onnx", "not found"]),
        # opset 7 may legitimately start to work (another change upgrades old opsets)
        Case("opset below the supported range", ["inspect", _save(_conv_model(opset=7), d / "opset7.onnx")],
             expect="any", needles=["opset7.onnx"]),
        Case("opset above the supported range", ["inspect", _save(_conv_model(opset=99), d / "opset99.onnx")],
             needles=["opset99.onnx", "99"]),
        Case("symbolic spatial dim", ["inspect", _save(_conv_model(["N", 3, "H", 8]), d / "symbolic.onnx")],
             needles=["symbolic.onnx", "'H'"]),
        Case("dynamic (unnamed) spatial dim", ["inspect", _save(_conv_model([1, 3, None, None]), d / "dyn.onnx")],
             needles=["dyn.onnx", "'x'"]),
        Case("huge declared shape", ["inspect", _save(_conv_model([1, 3, 200000, 200000]), d / "huge.onnx")],
             needles=["huge.onnx", "GB"]),
    ]
    w_nan = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    w_nan[0, 0, 0, 0] = np.nan
    w_inf = np.ones((4, 3, 3, 3), np.float32)
    w_inf[1, 1, 1, 1] = np.inf
    cases += [
        Case("NaN weights", ["run", _save(_conv_model(weight=w_nan), d / "nan_w.onnx"), "--time-cap", "0.1"],
             needles=["nan_w.onnx", "'w'", "NaN"]),
        Case("Inf weights", ["inspect", _save(_conv_model(weight=w_inf), d / "inf_w.onnx")],
             needles=["inf_w.onnx", "'w'", "Inf"]),
    ]
    w = np.ones((4, 3, 3, 3), np.float32)
    cyc = _model([helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2"),
                  helper.make_node("Add", ["x", "b"], ["y"], name="add")], [_vi("x", [1, 4])], [_vi("y", None)])
    dangling = _model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv0"),
                       helper.make_node("Add", ["c", "ghost"], ["y"], name="add0")],
                      [_vi("x", [1, 3, 8, 8])], [_vi("y", None)], {"w": w})
    dup = _model([helper.make_node("Relu", ["x"], ["a"], name="r1"),
                  helper.make_node("Sigmoid", ["x"], ["a"], name="r2"),
                  helper.make_node("Relu", ["a"], ["y"], name="r3")], [_vi("x", [1, 4])], [_vi("y", None)])
    bad_w = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv_bad")], [_vi("x", [1, 3, 8, 8])],
                   [_vi("y", None)], {"w": np.ones((4, 5, 3, 3), np.float32)})
    no_out = _model([helper.make_node("Relu", ["x"], ["a"], name="r1")], [_vi("x", [1, 4])], [_vi("nothing", None)])
    stride0 = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv_s0", strides=[0, 0])],
                     [_vi("x", [1, 3, 8, 8])], [_vi("y", None)], {"w": w})
    untyped = _conv_model()
    untyped.graph.input[0].type.tensor_type.elem_type = 0
    unsq = _model([helper.make_node("Unsqueeze", ["x", "ax"], ["y"], name="unsq_dup")], [_vi("x", [1, 4])],
                  [_vi("y", None)], {"ax": np.array([1, 1], np.int64)})
    cases += [  # found by bench/fuzz_import.py
        Case("fuzz: a stride of 0", ["inspect", _save(stride0, d / "stride0.onnx")], needles=["stride0", "conv_s0"]),
        Case("fuzz: element type 0", ["inspect", _save(untyped, d / "untyped.onnx")], needles=["untyped", "type 0"]),
        Case("fuzz: an axis given twice", ["inspect", _save(unsq, d / "unsq.onnx")], needles=["unsq", "unsq_dup"]),
    ]
    cases += [
        Case("a cycle", ["inspect", _save(cyc, d / "cycle.onnx")], needles=["cycle.onnx", "cycle"]),
        Case("a dangling input", ["inspect", _save(dangling, d / "dangling.onnx")], needles=["dangling.onnx", "ghost"]),
        Case("duplicate value names", ["inspect", _save(dup, d / "dup.onnx")], needles=["dup.onnx", "'a'"]),
        Case("weight shape that does not fit", ["inspect", _save(bad_w, d / "badw.onnx")],
             needles=["badw.onnx", "conv_bad"]),
        Case("graph output nobody produces", ["inspect", _save(no_out, d / "noout.onnx")],
             needles=["noout.onnx", "nothing"]),
    ]
    # ops edgetune does not run natively: may legitimately start running on ONNX Runtime (another change)
    lstm = _single_op("LSTM", ["x", "W", "R"], ["y"], [_vi("x", [2, 1, 4])], [_vi("y", None)],
                      {"W": np.ones((1, 12, 4), np.float32), "R": np.ones((1, 12, 3), np.float32)}, hidden_size=3)
    nms = _single_op("NonMaxSuppression", ["b", "s"], ["y"], [_vi("b", [1, 4, 4]), _vi("s", [1, 1, 4])],
                     [_vi("y", None, TensorProto.INT64)])
    einsum = _single_op("Einsum", ["a", "b"], ["y"], [_vi("a", [2, 3]), _vi("b", [3, 4])], [_vi("y", None)],
                        equation="ij,jk->ik")
    for name, m in (("LSTM", lstm), ("NonMaxSuppression", nms), ("Einsum", einsum)):
        cases.append(Case(f"unsupported op {name}", ["inspect", _save(m, d / f"op_{name}.onnx")], expect="any"))
    cases += _external_data(d, w)
    cases += _input_shapes(d)
    return cases


def _external_data(d: Path, w: np.ndarray) -> list[Case]:
    m = _conv_model(weight=np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32))
    onnx.save_model(m, str(d / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.weights", size_threshold=0)
    (d / "ext.weights").unlink()
    return [Case("external data file missing", ["inspect", str(d / "ext.onnx")], needles=["ext.onnx"])]


def _input_shapes(d: Path) -> list[Case]:
    two = _model([helper.make_node("Add", ["a", "b"], ["y"], name="add0")], [_vi("a", [1, 4]), _vi("b", [1, 4])],
                 [_vi("y", None)])
    one_d = _single_op("Relu", ["x"], ["y"], [_vi("x", [16])], [_vi("y", None)])
    three_d = _single_op("MatMul", ["x", "m"], ["y"], [_vi("x", [1, 5, 8])], [_vi("y", None)],
                         {"m": np.ones((8, 3), np.float32)})
    two_p = _save(two, d / "two_inputs.onnx")
    np.save(d / "x14.npy", np.ones((1, 4), np.float32))
    return [
        Case("two inputs, one --input", ["run", two_p, "--input", str(d / "x14.npy"), "--time-cap", "0.1"],
             needles=["two_inputs", "2 inputs"]),
        Case("1-D input", ["run", _save(one_d, d / "one_d.onnx"), "--time-cap", "0.05"], expect="any"),
        Case("3-D input", ["run", _save(three_d, d / "three_d.onnx"), "--time-cap", "0.05"], expect="any"),
    ]


def _plans(d: Path) -> list[Case]:
    from edgetune.graph import load_graph
    from edgetune.runtime.plan import Plan

    good = str(d / "good.onnx")
    other = load_graph(_single_op("Relu", ["x"], ["y"], [_vi("x", [1, 4])], [_vi("y", None)]), name="other")
    Plan.builtin("blas", other, 1).save(d / "plan_other_model.json")
    mine = load_graph(onnx.load(good), name="good")
    plan = Plan.builtin("blas", mine, 1).to_dict()
    plan["nodes"]["conv0"]["primitive"] = "conv.quantum.teleport"
    (d / "plan_unknown_prim.json").write_text(json.dumps(plan))
    (d / "plan_wrong_schema.json").write_text(json.dumps({"edgetune_plan": 1, "nodes": ["conv0", "relu0"]}))
    (d / "plan_not_json.json").write_text("{ this is not json")
    threads = Plan.builtin("blas", mine, 1).to_dict()
    threads["nodes"]["conv0"]["threads"] = -3
    (d / "plan_bad_threads.json").write_text(json.dumps(threads))
    future = Plan.builtin("blas", mine, 1).to_dict()
    future["edgetune_plan"] = 99
    (d / "plan_future_format.json").write_text(json.dumps(future))
    bad_segment = Plan.builtin("blas", mine, 1).to_dict()
    bad_segment["segments"] = [{"library": "onnxruntime", "threads": 1, "nodes": ["conv0"]}]
    (d / "plan_bad_segment.json").write_text(json.dumps(bad_segment))
    run = ["run", good, "--time-cap", "0.1", "--plan"]
    return [
        Case("plan for another model", [*run, str(d / "plan_other_model.json")], needles=["plan_other_model", "other"]),
        Case("plan naming an unknown primitive", [*run, str(d / "plan_unknown_prim.json")],
             needles=["conv.quantum.teleport", "conv0"]),
        Case("plan of a wrong schema", [*run, str(d / "plan_wrong_schema.json")],
             needles=["plan_wrong_schema", "nodes"]),
        Case("plan that is not JSON", [*run, str(d / "plan_not_json.json")], needles=["plan_not_json"]),
        Case("plan with negative threads", [*run, str(d / "plan_bad_threads.json")], needles=["conv0", "-3"]),
        Case("plan of a future format", [*run, str(d / "plan_future_format.json")],
             needles=["plan_future_format", "99"]),
        Case("plan whose segment is not on its library", [*run, str(d / "plan_bad_segment.json")],
             needles=["segment 0", "onnxruntime", "conv0"]),
        Case("a directory as the plan", [*run, str(d)], needles=[str(d), "directory"]),
    ]


def _databases(d: Path) -> list[Case]:
    good = str(d / "good.onnx")
    corrupt = d / "corrupt.sqlite"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\x13\x37" * 2000)
    ro = d / "readonly.sqlite"
    con = sqlite3.connect(ro)
    con.execute("CREATE TABLE t (x)")
    con.close()
    os.chmod(ro, 0o444)
    other_app = d / "other_app.sqlite"
    con = sqlite3.connect(other_app)
    con.execute("CREATE TABLE customers (name TEXT)")
    con.close()
    (d / "db_folder").mkdir(exist_ok=True)
    prof = ["profile", good, "--threads", "1", "--db"]
    return [
        Case("corrupt database", [*prof, str(corrupt)], needles=["corrupt.sqlite"]),
        Case("read-only database", [*prof, str(ro)], needles=["readonly.sqlite", "read-only"]),
        Case("another application's SQLite file", [*prof, str(other_app)], needles=["other_app.sqlite"]),
        Case("a directory as the database", [*prof, str(d / "db_folder")], needles=["db_folder", "directory"]),
    ]


def _data(d: Path) -> list[Case]:
    good = str(d / "good.onnx")
    (d / "text.npy").write_text("1 2 3\n4 5 6\n")
    np.save(d / "nan.npy", np.full((1, 3, 8, 8), np.nan, np.float32))
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    data = d / "data"
    (data / "models").mkdir(parents=True, exist_ok=True)
    (data / "models" / "resnet20-cifar10.th").write_bytes(b"\xff\xd8\xff\xe0 not a torch checkpoint, a broken jpeg")
    run = ["run", good, "--time-cap", "0.1"]
    return [
        Case("text file as --input", [*run, "--input", str(d / "text.npy")], needles=["text.npy", ".npy"]),
        Case("all-NaN --input", [*run, "--input", str(d / "nan.npy")], needles=["nan.npy", "NaN"]),
        Case("pickled objects as --input", [*run, "--input", str(d / "objects.npy")], needles=["objects.npy"]),
        Case("a folder as --input", [*run, "--input", str(data)], needles=[str(data), "directory"]),
        Case("data folder with an unreadable weights file", ["inspect", "resnet20_cifar"],
             needles=["resnet20-cifar10.th"], env={"EDGETUNE_DATA": str(data)}),
    ]


def _flags(d: Path) -> list[Case]:
    good = str(d / "good.onnx")
    db = str(d / "flags.sqlite")
    ro_dir = d / "readonly_dir"
    ro_dir.mkdir(exist_ok=True)
    os.chmod(ro_dir, 0o555)
    run, prof, tune = ["run", good, "--time-cap", "0.1"], ["profile", good, "--db", db], ["tune", good, "--db", db]
    return [
        Case("run --threads -1", [*run, "--threads", "-1"], needles=["--threads", "-1"]),
        Case("primitives --threads -1", ["primitives", good, "--threads", "-1"], needles=["--threads", "-1"]),
        Case("run --threads 0", [*run, "--threads", "0"], needles=["--threads", "0"]),
        Case("bench --threads -2", ["bench", good, "--threads", "-2"], needles=["--threads", "-2"]),
        Case("run --time-cap -1", ["run", good, "--time-cap", "-1"], needles=["--time-cap", "-1"]),
        Case("run --time-cap nan", ["run", good, "--time-cap", "nan"], needles=["--time-cap", "nan"]),
        Case("run --output into a missing folder", [*run, "--output", str(d / "no" / "such" / "y.npy")],
             needles=["no/such", "does not exist"]),
        Case("profile --time-cap -1", [*prof, "--time-cap", "-1"], needles=["--time-cap", "-1"]),
        Case("profile --time-cap 0", [*prof, "--time-cap", "0"], needles=["--time-cap", "0"]),
        Case("profile --threads 0", [*prof, "--threads", "0"], needles=["--threads", "0"]),
        Case("profile --threads 1,x", [*prof, "--threads", "1,x"], needles=["--threads", "1,x"]),
        Case("profile --kernel-timeout 0", [*prof, "--kernel-timeout", "0"], needles=["--kernel-timeout"]),
        Case("tune --time-cap -1", [*tune, "--time-cap", "-1"], needles=["--time-cap", "-1"]),
        Case("tune --out into a read-only folder", [*tune, "--out", str(ro_dir / "run")],
             needles=["readonly_dir", "not writable"]),
        Case("tune --budget -1", [*tune, "--budget", "-1"], needles=["--budget", "-1"]),
        Case("tune --compare-time 0", [*tune, "--compare-time", "0"], needles=["--compare-time", "0"]),
        Case("tune --max-memory -5", [*tune, "--max-memory", "-5"], needles=["--max-memory", "-5"]),
        Case("tune --seed -1", [*tune, "--seed", "-1"], needles=["--seed", "-1"]),
        Case("tune --strategy magic", [*tune, "--strategy", "magic"], needles=["magic"]),
        Case("tune --precisions int4", [*tune, "--precisions", "int4"], needles=["int4"]),
    ]


def build_corpus(folder: str | Path) -> list[Case]:
    """Write every corpus file into `folder` and return the cases that use them."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    return _models(d) + _plans(d) + _databases(d) + _data(d) + _flags(d)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    for c in build_corpus(out):
        print(f"{c.name:45s} edgetune {' '.join(c.argv)}")
