"""Who a board is: its CPU fingerprint (the kind its results are keyed by) and library versions, and the
rule that decides whether its measurements may be merged.

Why the versions rule: the ProfileDB keys rows by (fingerprint id, versions id), and a plan is only valid
with the libraries that were timed. A board must run the head's library versions; only `blas_core` (the
kernel family numpy's BLAS picked for that CPU, e.g. "Haswell" or "ARMV8") and local version labels (torch's
"+cpu" on x86 wheels) may differ, since they follow the CPU. Boards of one kind must agree on everything, or
their rows would land under two versions ids.

Simulated boards (tests, bench/fleet.py, a rehearsal on one machine) report another fingerprint or library
versions through the environment of their Ray node: EDGETUNE_FLEET_FINGERPRINT (a JSON fingerprint used
instead of this CPU's) and EDGETUNE_FLEET_VERSIONS (JSON entries overriding `library_versions()`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

from edgetune.device import cpu as device
from edgetune.errors import EdgetuneError

FINGERPRINT_ENV = "EDGETUNE_FLEET_FINGERPRINT"
VERSIONS_ENV = "EDGETUNE_FLEET_VERSIONS"
DEVICE_RESOURCE = "edgetune-device"  # every board has 1: what `fleet status` counts as a board
KIND_PREFIX = "edgetune-device-"  # + kind id: the measurement slot tasks for that kind ask for
# Library-version entries that follow the CPU rather than the installation.
PER_CPU_VERSIONS = ("blas_core",)


def kind_id(fingerprint: dict[str, Any]) -> str:
    """The 12-hex-digit id of a fingerprint: equal to `device.cpu.fingerprint_id()` for this CPU's."""
    blob = json.dumps(fingerprint, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def versions_id(versions: dict[str, str]) -> str:
    """The id of a set of library versions: equal to `device.cpu.versions_id()` for this machine's."""
    return kind_id(versions)  # the same short hash of sorted JSON


def kind_resource(kind: str) -> str:
    """The Ray custom resource that is one board's measurement slot for `kind`."""
    return f"{KIND_PREFIX}{kind}"


def board_resources(kind: str) -> dict[str, float]:
    """What a board of `kind` declares when it joins (`ray start --resources=...`)."""
    return {DEVICE_RESOURCE: 1.0, kind_resource(kind): 1.0}


def kinds_of(resources: dict[str, float]) -> list[str]:
    """The kinds a Ray node's resources declare (one for a board, none for a plain node)."""
    return sorted(k[len(KIND_PREFIX):] for k in resources if k.startswith(KIND_PREFIX))


@dataclass(frozen=True)
class BoardIdentity:
    """A board as it describes itself, measured on the board."""

    host: str
    fingerprint: dict[str, Any]
    versions: dict[str, str]
    simulated: bool = False  # the fingerprint or versions came from EDGETUNE_FLEET_* (a simulated board)

    @property
    def kind(self) -> str:
        return kind_id(self.fingerprint)

    @property
    def versions_id(self) -> str:
        return versions_id(self.versions)

    def summary(self) -> str:
        """One line: "Intel(R) Xeon(R) ..., x86_64, 2 cores, avx2 fma ...", for status tables."""
        fp = self.fingerprint
        flags = " ".join(fp.get("flags", [])[:6])
        return f"{fp.get('cpu', '?')}, {fp.get('arch', '?')}, {fp.get('cores', '?')} cores" + (f", {flags}" if flags
                                                                                             else "")

    def describe(self) -> dict[str, Any]:
        """The board's CPU in the shape of `device.cpu.describe()` (what `summary_line` prints)."""
        return {**self.fingerprint, "id": self.kind, "identity": "", "board": self.host,
                "features": device.features(self.fingerprint), "smt_threads_per_core": 1, "caches": {}}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind, "versions_id": self.versions_id, "summary": self.summary()}


def _json_env(name: str) -> dict[str, Any] | None:
    text = os.environ.get(name)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise EdgetuneError(f"{name}: not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(value, dict):
        raise EdgetuneError(f"{name}: expected a JSON object, got {type(value).__name__}")
    return value


def local_identity() -> BoardIdentity:
    """This machine as a board: its fingerprint and library versions, or the simulated ones of the
    environment (EDGETUNE_FLEET_FINGERPRINT, EDGETUNE_FLEET_VERSIONS)."""
    fp, extra = _json_env(FINGERPRINT_ENV), _json_env(VERSIONS_ENV)
    versions = {**device.library_versions(), **{str(k): str(v) for k, v in (extra or {}).items()}}
    return BoardIdentity(host=socket.gethostname(), fingerprint=fp if fp is not None else device.fingerprint(),
                         versions=versions, simulated=fp is not None or extra is not None)


def _release(version: str) -> str:
    """A version without its local label: x86 wheels of torch say "2.13.0+cpu", aarch64 ones "2.13.0"."""
    return version.split("+", 1)[0]


def version_mismatch(board: dict[str, str], reference: dict[str, str]) -> str | None:
    """Why a board's library versions cannot be merged with the reference's ("numpy 2.3.0 (head 2.4.6),
    ..."), or None when they agree (per-CPU entries such as blas_core and local labels such as +cpu aside)."""
    keys = sorted((set(board) | set(reference)) - set(PER_CPU_VERSIONS))
    diffs = [f"{k} {board.get(k) or 'missing'} (head {reference.get(k) or 'missing'})" for k in keys
             if _release(board.get(k, "")) != _release(reference.get(k, ""))]
    return ", ".join(diffs) or None


def refusal(board: BoardIdentity, kind: str, head_versions: dict[str, str],
            kind_versions: dict[str, str] | None, where: str) -> str | None:
    """The one-line reason a board may not measure for `kind`, or None when it may: its fingerprint is of
    another kind, its library versions differ from the head's, or from the kind's first accepted board."""
    if board.kind != kind:
        return f"board {where} refused: it declares kind {kind} but its CPU is kind {board.kind} ({board.summary()})"
    if (why := version_mismatch(board.versions, head_versions)) is not None:
        return f"board {where} refused: library versions differ from the head's: {why}"
    if kind_versions is not None and board.versions != kind_versions:
        diffs = ", ".join(f"{k} {board.versions.get(k)} (other boards {kind_versions.get(k)})"
                          for k in sorted(set(board.versions) | set(kind_versions))
                          if board.versions.get(k) != kind_versions.get(k))
        return f"board {where} refused: library versions differ from the other {kind} boards': {diffs}"
    return None
