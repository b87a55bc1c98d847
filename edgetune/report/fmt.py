"""Tolerant readers and number formats shared by the plots and the HTML report.

The report's input comes from a tuner run that may have been cut short, so every value may be missing,
None, NaN or of the wrong type; these helpers turn such values into "no value" instead of an exception.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "–"


def num(x: Any) -> float | None:
    """A finite float, or None for anything that is not a usable number (bools included)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def pos(x: Any) -> float | None:
    """A finite positive float (plottable on a log axis), or None."""
    v = num(x)
    return v if v is not None and v > 0 else None


def as_dict(x: Any) -> dict:
    """`x` when it is a dict, else an empty one, so lookups never fail."""
    return x if isinstance(x, dict) else {}


def as_list(x: Any) -> list:
    """`x` when it is a list or tuple, else an empty list."""
    return list(x) if isinstance(x, list | tuple) else []


def dicts(x: Any) -> list[dict]:
    """The dict entries of a list; other entries are dropped."""
    return [d for d in as_list(x) if isinstance(d, dict)]


def text(x: Any) -> str:
    """A display string; None and empty become a dash."""
    if x is None or x == "":
        return DASH
    return str(x)


def ms(x: Any) -> str:
    """Milliseconds (or seconds): "9.30", "0.410", "0.041", "0.0012" — two decimals or better, never "0.00"."""
    v = num(x)
    if v is None:
        return DASH
    a = abs(v)
    return f"{v:.2f}" if a >= 1 or a == 0 else f"{v:.3f}" if a >= 0.01 else f"{v:.2g}"


def sentence(s: str) -> str:
    """Text ending in a full stop, so run-supplied method strings join cleanly into captions."""
    s = s.strip()
    return s if not s or s[-1] in ".!?" else s + "."


def mb(x: Any) -> str:
    """Bytes as megabytes (10^6 bytes), one decimal."""
    v = num(x)
    return DASH if v is None else f"{v / 1e6:.1f}"


def ratio(x: Any) -> str:
    """A speed-up or ratio with a multiplication sign ("4.20×")."""
    v = num(x)
    return DASH if v is None else f"{v:.2f}×"


def count(x: Any) -> str:
    """An integer count with thousands separators."""
    v = num(x)
    return DASH if v is None else f"{round(v):,}"


def plain(x: Any) -> str:
    """A hyper-parameter or other loose value, compact but exact enough to reproduce a run."""
    if isinstance(x, float):
        return f"{x:.4g}"
    return text(x)


def library_of(key: str) -> str:
    """The library part of an option key "<family>.<algorithm>.<library>[.<variant>]@<threads>"."""
    parts = key.split("@", 1)[0].split(".")
    return parts[2] if len(parts) >= 3 else (parts[-1] if parts and parts[-1] else "?")
