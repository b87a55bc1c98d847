"""Resume after a kill: `edgetune profile` SIGKILLed at random points leaves a sound ProfileDB, and the
resumed run measures exactly what is missing, ending with the same keys as an uninterrupted run."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import onnx
import pytest
from onnx import helper

from tests.graph_cases import mk, vi

KEYS = {"nodes": "sig, primitive, threads", "converters": "converter, shape, threads",
        "verifications": "sig, primitive, ok"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "relu_sigmoid.onnx"
    onnx.save(mk([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                  helper.make_node("Sigmoid", ["r"], ["y"], name="sig")], [vi("x", [1, 64])], [vi("y", None)]), path)
    return str(path)


def _profile(model, db):
    argv = [sys.executable, "-m", "edgetune", "profile", model, "--db", str(db), "--threads", "1", "--time-cap", "0.02",
            "--json"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "EDGETUNE_DEBUG"})


def _keys(db):
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {t: set(con.execute(f"SELECT {cols} FROM {t}")) for t, cols in KEYS.items()}
    finally:
        con.close()


def _rows(keys):
    return sum(len(v) for v in keys.values())


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_keys(model, tmp_path):
    ref_db = tmp_path / "ref.sqlite"
    ref = _profile(model, ref_db)
    out, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err
    ref_keys = _keys(ref_db)
    assert json.loads(out)["new_measurements"] == _rows(ref_keys) >= 8

    db = tmp_path / "killed.sqlite"
    rng = random.Random(13)
    seen = {t: set() for t in KEYS}
    kills = []
    for _ in range(2):
        proc = _profile(model, db)
        kills.append(rng.uniform(2.0, 9.0))
        time.sleep(kills[-1])
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if not db.exists():
            continue
        now = _keys(db)  # opens and checks integrity after every kill
        assert all(seen[t] <= now[t] for t in KEYS), "a kill lost rows already written"
        seen = now
        kills[-1] = f"{kills[-1]:.1f} s: {_rows(now)} rows"
    before = _rows(seen)
    resumed = _profile(model, db)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert _keys(db) == ref_keys
    # nothing measured twice: the resumed run took exactly the measurements that were missing
    assert json.loads(out)["new_measurements"] == _rows(ref_keys) - before
    print(f"kill/resume: killed at {kills}; resumed with {before} of {_rows(ref_keys)} rows, measured the "
          f"{_rows(ref_keys) - before} missing; final keys equal the uninterrupted run's, integrity ok")
