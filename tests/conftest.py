"""Shared test set-up: thread-pool hygiene before numpy loads, and the optional data folder.

Data (trained weights, labelled images) is found through EDGETUNE_DATA; on these machines it sits in
../shared beside the project, so tests point the setting there when it exists. Without it, tests that
need data check the clear "no data" behaviour instead.
"""

import os
from pathlib import Path

import edgetune  # noqa: F401 - must load before numpy/torch

_shared = Path(__file__).resolve().parents[2] / "shared"
if "EDGETUNE_DATA" not in os.environ and _shared.is_dir():
    os.environ["EDGETUNE_DATA"] = str(_shared)
