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


def _wait_for_rows(db, n, proc, timeout_s=300.0):
    """Until the DB (read-only, beside the writer) holds at least n rows."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, "the profile finished before it could be killed"
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                if sum(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in KEYS) >= n:
                    return
            finally:
                con.close()
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"{db} never reached {n} rows")


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
    seed = random.SystemRandom().randrange(2**32)  # new points every run; printed to reproduce one
    rng = random.Random(seed)
    total = _rows(ref_keys)
    seen = {t: set() for t in KEYS}
    kills = []
    # kill once the DB holds a random number of rows (plus a random fraction of a measurement): mid-profile
    # on any machine, however slow its start-up
    for target in sorted(rng.sample(range(1, total), 2)):
        proc = _profile(model, db)
        _wait_for_rows(db, target, proc)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        now = _keys(db)  # opens and checks integrity after every kill
        assert all(seen[t] <= now[t] for t in KEYS), f"a kill lost rows already written (seed {seed})"
        seen = now
        kills.append(f"after {target}+ rows: {_rows(now)} rows")
    before = _rows(seen)
    resumed = _profile(model, db)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert _keys(db) == ref_keys, f"seed {seed}"
    # nothing measured twice: the resumed run took exactly the measurements that were missing
    assert json.loads(out)["new_measurements"] == _rows(ref_keys) - before
    print(f"kill/resume (seed {seed}): SIGKILL {kills}; resumed with {before} of {_rows(ref_keys)} rows, measured the "
          f"{_rows(ref_keys) - before} missing; final keys equal the uninterrupted run's, integrity ok")
