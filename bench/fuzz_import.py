"""Fuzz the ONNX importer: mutate valid zoo models and feed them to `load_graph`.

Any exception other than `EdgetuneError` is a finding (a user would see "internal error" instead of a
one-line message naming the fault). Mutations are structural (decode the proto, change a dim, an
attribute, an op type, an opset, an initializer, the wiring; re-encode) with some plain byte mutations,
since random bytes mostly only exercise the protobuf decoder.

    python bench/fuzz_import.py --seconds 600 --out runs/fuzz

Uses atheris (coverage-guided, libFuzzer) when installed, else a seeded random loop with the same
mutator. Findings (one input per distinct exception type and place) go to OUT/findings/, the running
counts to OUT/summary.json (rewritten as it goes: libFuzzer exits without running Python's atexit).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import edgetune  # noqa: F401 - thread-pool environment before numpy/torch
from edgetune.errors import EdgetuneError

SEED_MODELS = ("mnist_cnn", "resnet20_cifar", "squeezenet1_1")
OPS = ("Conv", "Relu", "Add", "Mul", "Gemm", "MatMul", "Reshape", "Flatten", "Concat", "MaxPool", "AveragePool",
       "GlobalAveragePool", "Transpose", "Softmax", "Pad", "Slice", "Squeeze", "Unsqueeze", "Clip", "Sigmoid",
       "BatchNormalization", "Shape", "Gather", "Constant", "Identity", "Dropout", "LSTM", "Einsum", "Resize")


class Fuzzer:
    def __init__(self, out: Path, load_graph) -> None:
        self.out, self.load_graph = out, load_graph
        (out / "findings").mkdir(parents=True, exist_ok=True)
        self.executions = 0
        self.findings: dict[str, str] = {}  # "Type at file:line" -> message
        self.one_line_errors = 0
        self.accepted = 0
        self.t0 = time.time()
        self._tmp = Path(tempfile.mkdtemp(prefix="edgetune-fuzz-", dir="/dev/shm" if Path("/dev/shm").is_dir()
                                          else None)) / "m.onnx"

    def run_one(self, data: bytes) -> None:
        """One execution: the bytes as a model file through the importer."""
        self.executions += 1
        self._tmp.write_bytes(data)
        try:
            self.load_graph(self._tmp)
            self.accepted += 1
        except EdgetuneError:
            self.one_line_errors += 1
        except Exception as e:  # noqa: BLE001 - exactly what we are looking for
            self._finding(e, data)
        if self.executions % 50 == 0:
            self.write_summary()

    def _finding(self, e: Exception, data: bytes) -> None:
        tb = traceback.extract_tb(e.__traceback__)
        frame = next((f for f in reversed(tb) if "/edgetune/" in f.filename), tb[-1] if tb else None)
        where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
        key = f"{type(e).__name__} at {where}"
        if key not in self.findings:
            self.findings[key] = str(e).splitlines()[0][:200] if str(e) else ""
            (self.out / "findings" / f"{len(self.findings):03d}.onnx").write_bytes(data)
            print(f"finding {len(self.findings)}: {key}: {self.findings[key]}", file=sys.stderr, flush=True)
        self.write_summary()

    def write_summary(self) -> None:
        summary = {"executions": self.executions, "seconds": round(time.time() - self.t0, 1),
                   "one_line_errors": self.one_line_errors, "accepted": self.accepted,
                   "findings": len(self.findings), "distinct": self.findings}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))


# ---- the mutator ----------------------------------------------------------------------------------

def _mutate_model(m: onnx.ModelProto, rng: random.Random) -> None:
    """One structural change, chosen at random, in place."""
    g = m.graph
    choice = rng.randrange(10)
    if choice == 0 and g.input:  # an input dim: zero, negative, huge, symbolic, removed
        dims = g.input[0].type.tensor_type.shape.dim
        if dims:
            d = dims[rng.randrange(len(dims))]
            pick = rng.randrange(4)
            if pick == 0:
                d.dim_value = rng.choice([0, 1, 2, 3, 7, 10**6])
            elif pick == 1:
                d.dim_param = rng.choice(["N", "H", "?"])
            elif pick == 2:
                del dims[rng.randrange(len(dims))]
            else:
                dims.add().dim_value = rng.choice([1, 3])
    elif choice == 1 and g.node:  # an attribute int/ints
        n = g.node[rng.randrange(len(g.node))]
        if n.attribute:
            a = n.attribute[rng.randrange(len(n.attribute))]
            if a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice([-1, 0, 1, 2, 5, 1000])
                if rng.random() < 0.3:
                    del a.ints[-1]
            else:
                a.i = rng.choice([-1, 0, 1, 2, 3, 64])
    elif choice == 2 and g.node:  # an op type
        g.node[rng.randrange(len(g.node))].op_type = rng.choice(OPS)
    elif choice == 3 and g.node:  # drop a node
        del g.node[rng.randrange(len(g.node))]
    elif choice == 4 and g.node:  # rewire one input
        n = g.node[rng.randrange(len(g.node))]
        if n.input:
            names = [o for x in g.node for o in x.output] + [t.name for t in g.initializer] + ["", "ghost"]
            n.input[rng.randrange(len(n.input))] = rng.choice(names)
    elif choice == 5 and g.initializer:  # an initializer's dims or data
        t = g.initializer[rng.randrange(len(g.initializer))]
        if t.dims and rng.random() < 0.5:
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 2, 3, 17])
        else:
            arr = numpy_helper.to_array(t).copy()
            if arr.dtype.kind == "f" and arr.size:
                arr.flat[rng.randrange(arr.size)] = rng.choice([np.nan, np.inf, 1e30])
            elif arr.size:
                arr.flat[rng.randrange(arr.size)] = rng.choice([-1, 0, 2**31 - 1, -(2**40)])
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    elif choice == 6:  # the opset
        for o in m.opset_import:
            o.version = rng.choice([1, 7, 10, 11, 13, 17, 21, 22, 99])
    elif choice == 7 and g.node:  # node inputs or outputs added/removed
        n = g.node[rng.randrange(len(g.node))]
        target = n.input if rng.random() < 0.5 else n.output
        if target and rng.random() < 0.5:
            del target[-1]
        else:
            target.append(rng.choice(["", "extra", n.name or "x"]))
    elif choice == 8 and g.output:  # an output's element type or name
        if rng.random() < 0.5:
            g.output[0].type.tensor_type.elem_type = rng.choice([0, 1, 2, 7, 10, 11, 16])
        else:
            g.output[0].name = rng.choice(["nothing", g.input[0].name if g.input else "x"])
    elif g.input:  # an input's element type
        g.input[0].type.tensor_type.elem_type = rng.choice([0, 1, 2, 6, 7, 9, 10, 11])


def mutate(data: bytes, max_size: int, seed: int, byte_mutate=None) -> bytes:
    rng = random.Random(seed)
    try:
        m = onnx.ModelProto.FromString(data)
        if not m.graph.node:
            raise ValueError("no nodes")
    except Exception:  # noqa: BLE001 - not a model any more: mutate bytes
        m = None
    if m is None or rng.random() < 0.1:
        if byte_mutate is not None:
            return byte_mutate(data, max_size)
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b[: rng.randint(1, len(b))] if rng.random() < 0.2 and b else b)
    try:
        for _ in range(rng.randint(1, 3)):
            _mutate_model(m, rng)
        out = m.SerializeToString()
    except Exception:  # noqa: BLE001 - an earlier mutation made this one impossible (e.g. dims vs data)
        return data
    return out if len(out) <= max_size else data


def seeds() -> list[bytes]:
    from edgetune import zoo

    return [zoo.build_onnx(name).SerializeToString() for name in SEED_MODELS]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--out", default="runs/fuzz")
    ap.add_argument("--no-atheris", action="store_true", help="use the random loop even if atheris is installed")
    args, rest = ap.parse_known_args()
    out = Path(args.out)
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is not None and not args.no_atheris:
        with atheris.instrument_imports(include=["edgetune.graph", "edgetune.user_model"]):
            from edgetune.graph import load_graph
    else:
        from edgetune.graph import load_graph
    fuzzer = Fuzzer(out, load_graph)
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    seed_data = seeds()
    for i, d in enumerate(seed_data):
        (corpus / f"seed{i}.onnx").write_bytes(d)
    max_len = max(len(d) for d in seed_data) + 4096
    if atheris is not None and not args.no_atheris:
        def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
            return mutate(data, max_size, seed, byte_mutate=atheris.Mutate)

        flags = [f"-max_total_time={int(args.seconds)}", f"-max_len={max_len}", "-len_control=0", "-rss_limit_mb=4096",
                 "-timeout=60"]
        atheris.Setup([sys.argv[0], str(corpus), *flags, *rest], fuzzer.run_one, custom_mutator=custom_mutator)
        atheris.Fuzz()
        return 0
    rng = random.Random(0)
    end = time.time() + args.seconds
    while time.time() < end:
        fuzzer.run_one(mutate(rng.choice(seed_data), max_len, rng.randrange(2**32)))
    fuzzer.write_summary()
    print(json.dumps({k: v for k, v in json.loads((out / "summary.json").read_text()).items() if k != "distinct"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
