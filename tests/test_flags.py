"""Flags validated at the edge and the fixes of issue 13's list: batch labels, thread warnings, the DB
refusing rows a later run could not use."""

import json

import numpy as np
import pytest

from edgetune.cli import main
from edgetune.device.cpu import usable_cores
from edgetune.measure.db import ProfileDB, UnusableMeasurement
from edgetune.measure.timing import Timing
from tests.make_corpus import _conv_model, _save


@pytest.fixture
def batch4(tmp_path):
    return _save(_conv_model([4, 3, 8, 8]), tmp_path / "b4.onnx")


def test_batch_4_model_is_labelled_batch_4(capsys, batch4):
    assert main(["inspect", batch4, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["batch"] == 4 and res["inputs"] == {"x": [4, 3, 8, 8]}
    assert main(["inspect", batch4]) == 0
    assert "batch 4" in capsys.readouterr().out
    assert main(["run", batch4, "--time-cap", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "batch 4" in out and "batch 1" not in out


def test_threads_above_the_usable_cores_warn_but_run(capsys, tmp_path):
    model = _save(_conv_model(), tmp_path / "m.onnx")
    n = usable_cores() + 1
    assert main(["run", model, "--threads", str(n), "--time-cap", "0.05", "--json"]) == 0
    err = capsys.readouterr().err
    assert f"--threads {n} is more than the {usable_cores()} usable cores" in err


@pytest.mark.parametrize("argv", [["run", "--threads", "0"], ["bench", "--threads", "0"],
                                  ["profile", "--threads", "0"]])
def test_zero_threads_is_refused_by_every_command(capsys, tmp_path, argv):
    model = _save(_conv_model(), tmp_path / "m.onnx")
    rc = main([argv[0], model, *argv[1:], *(["--db", str(tmp_path / "d.sqlite")] if argv[0] == "profile" else [])])
    err = capsys.readouterr().err
    assert rc == 2 and "--threads" in err and ">= 1" in err
    assert not (tmp_path / "d.sqlite").exists()


def _timing(median: float = 1.0, runs: int = 5) -> Timing:
    return Timing(median_ms=median, p10_ms=median, p90_ms=median, min_ms=median, spread=0.0, runs=runs,
                  foreign_cores=None, disturbed=False, ci_rel=0.0)


@pytest.mark.parametrize("bad", [_timing(float("nan")), _timing(-1.0), _timing(1.0, runs=0)])
def test_db_refuses_rows_a_later_run_cannot_use(tmp_path, bad):
    with ProfileDB(tmp_path / "p.sqlite", device_id="d", versions_id="v") as db:
        with pytest.raises(UnusableMeasurement):
            db.put_node("sig", "prim", 1, bad)
        with pytest.raises(UnusableMeasurement):
            db.put_converter("conv", (1, 2), 1, bad)
        with pytest.raises(UnusableMeasurement):
            db.put_node("sig", "prim", 0, _timing())
        with pytest.raises(UnusableMeasurement):
            db.put_verification("sig", "prim", False, None, "")
        db.put_node("sig", "prim", 1, _timing())
        assert db.count()["nodes"] == 1 and db.count()["converters"] == 0


def test_profile_time_cap_zero_leaves_the_database_untouched(capsys, tmp_path):
    model = _save(_conv_model(), tmp_path / "m.onnx")
    db = tmp_path / "p.sqlite"
    for cap in ("0", "-1", "inf"):
        assert main(["profile", model, "--db", str(db), "--time-cap", cap]) == 2
        assert "--time-cap" in capsys.readouterr().err
    assert not db.exists()


def test_run_output_folder_is_checked_before_timing(capsys, tmp_path):
    model = _save(_conv_model(), tmp_path / "m.onnx")
    assert main(["run", model, "--output", str(tmp_path / "missing" / "y.npy"), "--time-cap", "30"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", model, "--output", str(tmp_path / "y.npy"), "--time-cap", "0.05"]) == 0
    assert np.load(tmp_path / "y.npy").shape == (1, 4, 8, 8)
