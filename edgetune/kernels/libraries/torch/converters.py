"""Converters to and from oneDNN's BLOCKED layout (a torch mkldnn tensor); none without oneDNN."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgetune.kernels.base import FP32, FP32_BLOCKED, FP32_NHWC, Converter
from edgetune.kernels.libraries.numpy.converters import FunctionConverter


def _nchw_to_blocked(x: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to_mkldnn()


def _blocked_to_nchw(x: Any) -> np.ndarray:
    return x.to_dense().numpy()


def _nhwc_to_blocked(x: np.ndarray) -> Any:
    """oneDNN reorders straight from the channels-last strides: no intermediate NCHW copy."""
    return torch.from_numpy(x).permute(0, 3, 1, 2).to_mkldnn()


def _blocked_to_nhwc(x: Any) -> np.ndarray:
    d = x.to_dense().contiguous(memory_format=torch.channels_last)
    return d.permute(0, 2, 3, 1).numpy()


CONVERTERS: list[Converter] = [] if not torch.backends.mkldnn.is_available() else [
    FunctionConverter("nchw_to_blocked.torch", "torch", FP32, FP32_BLOCKED, _nchw_to_blocked),
    FunctionConverter("blocked_to_nchw.torch", "torch", FP32_BLOCKED, FP32, _blocked_to_nchw),
    FunctionConverter("nhwc_to_blocked.torch", "torch", FP32_NHWC, FP32_BLOCKED, _nhwc_to_blocked),
    FunctionConverter("blocked_to_nhwc.torch", "torch", FP32_BLOCKED, FP32_NHWC, _blocked_to_nhwc),
]
