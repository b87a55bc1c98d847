"""`tune --data DIR`: the labelled data set opened, checked against the model, split and preprocessed into
the feeds the precision search runs on (planning/precision.py).

Why in commands: it joins what the user typed (the folder, the split sizes, the preprocessing flags) with
the model (its input shape, its class count, a zoo model's own preprocessing); the pieces live in
edgetune.data.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from edgetune.data import open_dataset
from edgetune.data.arguments import preprocessing_from_args
from edgetune.data.preprocess import Preprocessing
from edgetune.errors import EdgetuneError
from edgetune.planning.precision import PrecisionData
from edgetune.user_model import ModelSource


def model_preprocessing(src: ModelSource, args: argparse.Namespace) -> Preprocessing:
    """A zoo model's own preprocessing, else a default for the input's shape; flags override either."""
    graph = src.graph
    shape = tuple(int(d) for d in graph.shape(graph.inputs[0]))
    if src.zoo_name:
        from edgetune import zoo  # torch for the zoo, loaded only for a zoo model (edgetune runs without torch)

        base = zoo.preprocessing(src.zoo_name)
    else:
        base = Preprocessing.for_input(shape)
    p = preprocessing_from_args(args, base)
    p.check_input(shape)
    return p


def precision_data(args: argparse.Namespace, src: ModelSource, console: Any) -> PrecisionData | None:
    """The data of `--data`, None without it. Labels outside the model's classes, too few images, unreadable
    files: one-line errors naming what is at fault (edgetune.data)."""
    if not getattr(args, "data", None):
        return None
    graph = src.graph
    if len(graph.inputs) != 1:
        raise EdgetuneError(f"--data feeds one image input; {graph.name} has {len(graph.inputs)} inputs")
    pre = model_preprocessing(src, args)
    data = open_dataset(args.data)
    classes = int(graph.shape(graph.outputs[0])[-1])
    if data.labelled:
        data.check_labels(classes)
    split = data.split(args.calibration_samples, args.evaluation_samples, getattr(args, "seed", 0) or 0)
    console.print(f"data: {data.describe()}; {split.describe()}; preprocessing: {pre.describe()}; decoding...")
    name, dtype = graph.inputs[0], np.dtype(graph.dtype(graph.inputs[0]))
    feeds = lambda part: [{name: x[None].astype(dtype)} for x in part.load(pre)]  # noqa: E731
    labels = split.evaluation.label_array() if split.evaluation.labelled else None
    how = "labelled: top-1 against the labels" if labels is not None else "unlabelled: top-1 agreement with fp32"
    return PrecisionData(calibration=feeds(split.calibration), evaluation=feeds(split.evaluation), labels=labels,
                         budget=float(args.max_accuracy_drop), description=f"{split.describe()} ({how})")
