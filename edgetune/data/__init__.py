"""Labelled images and accuracy: preprocessing, data-set folders, disjoint calibration/evaluation splits,
top-1/top-5 accuracy or fidelity to the fp32 model, and the CLI flags for an accuracy budget.

A leaf (numpy, Pillow, stdlib): the zoo describes its models' preprocessing with it, and the commands
turn `--data DIR` into batches and scores with it.
"""

from .accuracy import (
    AGREEMENT,
    TOP1,
    TOP5,
    Evaluation,
    accuracy_drop,
    agreement,
    evaluate,
    evaluate_fidelity,
    evaluate_labels,
    sqnr_db,
    top_k_accuracy,
)
from .arguments import add_data_arguments, preprocessing_from_args
from .datasets import LabelledData, Split, open_dataset
from .preprocess import Preprocessing

__all__ = ["AGREEMENT", "TOP1", "TOP5", "Evaluation", "LabelledData", "Preprocessing", "Split", "accuracy_drop",
           "add_data_arguments", "agreement", "evaluate", "evaluate_fidelity", "evaluate_labels", "open_dataset",
           "preprocessing_from_args", "sqnr_db", "top_k_accuracy"]
