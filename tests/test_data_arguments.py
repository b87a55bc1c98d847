"""The data flags: defaults, overrides of a model's preprocessing, and one-line errors naming flag and value."""

from __future__ import annotations

import argparse

import pytest

from edgetune.data import Preprocessing, add_data_arguments, preprocessing_from_args
from edgetune.errors import EdgetuneError

IMAGENET = Preprocessing(size=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
GREY = Preprocessing(size=28, crop=28, mean=(0.1307,), std=(0.3081,), channels=1)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # as edgetune's CLI: one line, no usage dump
        raise EdgetuneError(f"{self.prog}: {message}")


def _parse(*argv: str) -> argparse.Namespace:
    p = _Parser(prog="edgetune tune")
    add_data_arguments(p)
    return p.parse_args(list(argv))


def _error(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(EdgetuneError) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_defaults() -> None:
    a = _parse()
    assert (a.data, a.max_accuracy_drop, a.calibration_samples, a.evaluation_samples) == (None, 0.5, 300, 1000)
    assert preprocessing_from_args(a, IMAGENET) == IMAGENET
    assert preprocessing_from_args(a) == Preprocessing()


def test_flags_override_the_models_steps() -> None:
    a = _parse("--data", "/d", "--max-accuracy-drop", "1.5", "--calibration-samples", "64",
               "--evaluation-samples", "0", "--crop", "200x180", "--mean", "127", "--std", "128,128,64",
               "--scale", "1", "--layout", "nhwc", "--bgr")
    assert (a.data, a.max_accuracy_drop, a.calibration_samples, a.evaluation_samples) == ("/d", 1.5, 64, 0)
    p = preprocessing_from_args(a, IMAGENET)
    assert p == Preprocessing(size=256, crop=(200, 180), scale=1, mean=(127,), std=(128, 128, 64), layout="NHWC",
                              bgr=True)
    q = preprocessing_from_args(_parse("--size", "32", "--crop", "28"), GREY)
    assert (q.size, q.crop, q.channels, q.mean) == (32, (28, 28), 1, (0.1307,))


@pytest.mark.parametrize(("argv", "needle"), [
    (["--max-accuracy-drop", "-0.1"], "argument --max-accuracy-drop: must be >= 0 accuracy points, got -0.1"),
    (["--max-accuracy-drop", "nan"], "--max-accuracy-drop"),
    (["--max-accuracy-drop", "lots"], "'lots'"),
    (["--calibration-samples", "-3"], "argument --calibration-samples: must be >= 0 samples, got -3"),
    (["--evaluation-samples", "1e3"], "'1e3'"),
    (["--size", "0"], "argument --size"),
    (["--crop", "224x"], "argument --crop: '224x'"),
    (["--scale", "0"], "argument --scale: '0'"),
    (["--mean", "a,b,c"], "argument --mean: 'a,b,c' is not a list of numbers"),
    (["--std", "1,,2"], "argument --std: '1,,2'"),
    (["--layout", "NCWH"], "argument --layout: 'NCWH'"),
])
def test_unparsable_values(argv: list[str], needle: str) -> None:
    assert needle in _error(_parse, *argv)


def test_values_that_do_not_fit_the_model() -> None:
    assert _error(preprocessing_from_args, _parse("--mean", "1,2"), IMAGENET) == \
        "--mean 1,2: expected R,G,B (or one value for all)"
    assert "--std 0.5,0.5,0.5: expected one value" in _error(preprocessing_from_args,
                                                           _parse("--std", "0.5,0.5,0.5"), GREY)
    assert "--std 1,0,1" in _error(preprocessing_from_args, _parse("--std", "1,0,1"), IMAGENET)
    assert "--bgr" in _error(preprocessing_from_args, _parse("--bgr"), GREY)
