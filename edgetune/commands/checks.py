"""Validation of numeric flags and output paths at the edge, before anything is measured or written.

Why here and not deep down: a bad value (a negative time cap, zero threads) that reaches a library call
gives an internal error, and one that reaches the ProfileDB poisons every later run. Every subcommand
checks its flags with these helpers first, so the error names the flag and the value.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from edgetune.device.cpu import usable_cores
from edgetune.errors import EdgetuneError


def threads(n: int | None, flag: str = "--threads", console: Any = None) -> int:
    """A thread count in 1.. (None: all usable cores); above the usable cores warns, as oversubscribed
    threads run many times slower."""
    cores = usable_cores()
    if n is None:
        return cores
    if n < 1:
        raise EdgetuneError(f"{flag} must be >= 1, got {n} (omit it for all {cores} usable cores)")
    if n > cores:
        warn(console, f"{flag} {n} is more than the {cores} usable cores; oversubscribed threads run much slower")
    return n


def positive(x: float | None, flag: str) -> float | None:
    """A finite number > 0 (time caps, timeouts); None passes (the default applies)."""
    if x is not None and not (math.isfinite(x) and x > 0):
        raise EdgetuneError(f"{flag} must be a number of seconds > 0, got {x}")
    return x


def non_negative(x: int | float | None, flag: str) -> int | float | None:
    if x is not None and not (math.isfinite(x) and x >= 0):
        raise EdgetuneError(f"{flag} must be >= 0, got {x}")
    return x


def output_file(path: str | None, flag: str) -> Path | None:
    """An output file whose folder exists and is writable, checked before the work that produces it."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise EdgetuneError(f"{flag} {path}: is a directory, expected a file name")
    if not p.parent.is_dir():
        raise EdgetuneError(f"{flag} {path}: folder {p.parent} does not exist")
    _require_writable(flag, p, p.parent, "folder ")
    return p


def output_dir(path: str | Path, flag: str) -> Path:
    """An output folder that exists and is writable, or can be created under a writable ancestor."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise EdgetuneError(f"{flag} {p}: exists and is not a folder")
    ancestor = p
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise EdgetuneError(f"{flag} {p}: {ancestor} is not a folder")
    _require_writable(flag, p, ancestor)
    return p


def _require_writable(flag: str, path: Path, folder: Path, label: str = "") -> None:
    if not _writable_dir(folder):
        raise EdgetuneError(f"{flag} {path}: {label}{folder} is not writable")


def _writable_dir(p: Path) -> bool:
    """Writable by us and not marked read-only (so `chmod a-w` is honoured even for root)."""
    try:
        return os.access(p, os.W_OK | os.X_OK) and bool(p.stat().st_mode & 0o222)
    except OSError:
        return False


def warn(console: Any, message: str) -> None:
    """One warning line on the user's console (stderr under --json)."""
    if console is not None:
        console.print(f"edgetune: warning: {message}", markup=False, soft_wrap=True)
