"""ProfileDB: every measurement edgetune takes, in one SQLite file, keyed by device and library versions.

Why SQLite with one autocommitted statement per write: profiling a model takes minutes and may be
interrupted; each measurement is durable the moment it is taken, so a killed run loses at most the one
in flight and a rerun continues where it stopped. Rows are keyed by `node_signature` (op, shapes,
attributes; never node names or weight values) so identical layers share measurements across models.

The file is checked before anything is written to it: a file that is not SQLite, is corrupt, belongs to
another application or has a newer schema raises EdgetuneError and is left byte-for-byte untouched. A file
of an older schema of ours is migrated in place, keeping every row (schema 1 -> 2: ALTER TABLE ADD COLUMN
of the nodes' measured `resident_bytes`/`transient_bytes`, NULL for rows measured before).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from edgetune.device import cpu as device
from edgetune.errors import EdgetuneError
from edgetune.graph.ir import Graph, Node
from edgetune.measure.timing import Timing

APP = "edgetune"
SCHEMA_VERSION = 2  # 2: nodes.resident_bytes, nodes.transient_bytes (measured memory; NULL when not measured)
APPLICATION_ID = 0x45544E45  # "ETNE", also visible to `file(1)`-style tools
_SQLITE_MAGIC = b"SQLite format 3\x00"

_TIMING_COLS = (
    "median_ms REAL, p10_ms REAL, p90_ms REAL, min_ms REAL, spread REAL, runs INTEGER, "
    "disturbed INTEGER, foreign_cores REAL, measured_at REAL"
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    device TEXT, versions TEXT, sig TEXT, primitive TEXT, threads INTEGER, {_TIMING_COLS},
    weight_bytes INTEGER, workspace_bytes INTEGER, resident_bytes INTEGER, transient_bytes INTEGER,
    PRIMARY KEY (device, versions, sig, primitive, threads));
CREATE TABLE IF NOT EXISTS converters (
    device TEXT, versions TEXT, converter TEXT, shape TEXT, threads INTEGER, {_TIMING_COLS},
    PRIMARY KEY (device, versions, converter, shape, threads));
CREATE TABLE IF NOT EXISTS verifications (
    device TEXT, versions TEXT, sig TEXT, primitive TEXT, ok INTEGER, rel_error REAL, reason TEXT,
    checked_at REAL,
    PRIMARY KEY (device, versions, sig, primitive));
CREATE TABLE IF NOT EXISTS plans (
    device TEXT, versions TEXT, model_sig TEXT, plan_hash TEXT, {_TIMING_COLS}, extra TEXT,
    PRIMARY KEY (device, versions, model_sig, plan_hash));
CREATE TABLE IF NOT EXISTS peer_memory (
    device TEXT, versions TEXT, model_sig TEXT, peer TEXT, threads INTEGER, measured TEXT, measured_at REAL,
    PRIMARY KEY (device, versions, model_sig, peer, threads));
"""
_TABLES = ("nodes", "converters", "verifications", "plans", "peer_memory")
# columns added after schema 1, added to an older file by ALTER TABLE (existing rows get NULL)
_ADDED_COLUMNS = {"nodes": (("resident_bytes", "INTEGER"), ("transient_bytes", "INTEGER"))}


# ---- records ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Measured:
    """The timing part every measured row shares (times in ms, as in `Timing`). Keyword-only, with the
    fields `Timing` shares in its order: the two once differed (disturbed / foreign_cores swapped), so a
    positional construction from one to the other would have swapped them silently."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    spread: float
    runs: int
    foreign_cores: float | None
    disturbed: bool
    measured_at: float


@dataclass(frozen=True, kw_only=True)
class NodeRecord(Measured):
    sig: str = ""
    primitive: str = ""
    threads: int = 1
    weight_bytes: int = 0
    workspace_bytes: int = 0
    resident_bytes: int | None = None  # measured (edgetune.runtime.kernel_memory); None: not measured
    transient_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class ConverterRecord(Measured):
    converter: str = ""
    shape: tuple[int, ...] = ()
    threads: int = 1


@dataclass(frozen=True, kw_only=True)
class PlanRecord(Measured):
    model_sig: str = ""
    plan_hash: str = ""
    extra: str = ""  # free-form JSON the caller stores with the plan (e.g. memory, accuracy)


@dataclass(frozen=True)
class VerifyRecord:
    sig: str
    primitive: str
    ok: bool
    rel_error: float | None
    reason: str
    checked_at: float


class UnusableMeasurement(ValueError):
    """A row no later run could use (NaN or negative time, no runs, threads < 1): refused at write time,
    since a stored bad row would make every later tune of the model fail."""


def _check_timing(t: Timing, what: str) -> None:
    times = (t.median_ms, t.p10_ms, t.p90_ms, t.min_ms)
    if not all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in times):
        raise UnusableMeasurement(f"{what}: times must be finite and >= 0, got {times}")
    if not math.isfinite(t.spread) or t.spread < 0 or int(t.runs) < 1:
        raise UnusableMeasurement(f"{what}: need spread >= 0 and runs >= 1, got {t.spread}, {t.runs}")
    if t.foreign_cores is not None and not math.isfinite(t.foreign_cores):
        raise UnusableMeasurement(f"{what}: foreign_cores must be finite or None, got {t.foreign_cores}")


def _check_threads(threads: int, what: str, minimum: int = 1) -> None:
    if int(threads) < minimum:
        raise UnusableMeasurement(f"{what}: threads must be >= {minimum}, got {threads}")


_TIMING_NAMES = [f.name for f in fields(Measured)]


def _timing_values(t: Timing) -> tuple[Any, ...]:
    """The timing columns' values in `_TIMING_NAMES` order, matched by name (never by position)."""
    by_name = {n: getattr(t, n) for n in _TIMING_NAMES if n != "measured_at"}
    by_name["disturbed"] = int(t.disturbed)
    by_name["measured_at"] = time.time()
    return tuple(by_name[n] for n in _TIMING_NAMES)


def _shape_key(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape) if len(shape) else "scalar"


def _shape_from_key(key: str) -> tuple[int, ...]:
    return () if key == "scalar" else tuple(int(d) for d in key.split("x"))


# ---- opening and validating the file ----------------------------------------------------------

def default_db_path() -> Path:
    """The per-user cache location: <user cache dir>/edgetune/profile.sqlite."""
    import platformdirs  # loaded on demand: only the default path needs it

    return Path(platformdirs.user_cache_dir("edgetune")) / "profile.sqlite"


def _writable(p: Path) -> bool:
    """Writable by us *and* not marked read-only (no write bit), so `chmod a-w` is honoured even by
    root, for whom access(2) always says yes."""
    try:
        return os.access(p, os.W_OK) and bool(p.stat().st_mode & 0o222)
    except OSError:
        return False


def _validate_existing(path: Path) -> None:
    """Raise EdgetuneError unless `path` is empty or an edgetune profile DB we can use; reads only."""
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if not head:
        return  # an empty file: SQLite treats it as a new database
    if head != _SQLITE_MAGIC:
        raise EdgetuneError(f"{path}: not an SQLite database, so not an edgetune profile DB (left untouched)")
    # without a -wal file beside it, everything is in the main file: read it as immutable, which creates
    # no -shm/-wal files; with one (a live or killed writer), a read-only open may add a -shm file
    wal = path.with_name(path.name + "-wal").exists()
    try:
        con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro{'' if wal else '&immutable=1'}", uri=True)
    except sqlite3.Error as e:
        raise EdgetuneError(f"{path}: cannot open the profile DB: {e}") from None
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not names:
            return  # a blank SQLite file (e.g. interrupted creation): ours to initialise
        meta = dict(con.execute("SELECT key, value FROM meta")) if "meta" in names else {}
    except sqlite3.DatabaseError as e:
        raise EdgetuneError(f"{path}: corrupt or unreadable SQLite file ({e}); left untouched") from None
    finally:
        con.close()
    if meta.get("app") != APP:
        raise EdgetuneError(f"{path}: an SQLite file of another application, not an edgetune profile DB")
    try:
        schema = int(meta.get("schema", "0"))
    except ValueError:
        schema = 10**9
    if schema > SCHEMA_VERSION:
        raise EdgetuneError(
            f"{path}: written by a newer edgetune (schema {meta.get('schema')} > {SCHEMA_VERSION}); "
            "upgrade edgetune or use another --db"
        )


def _migrate(con: sqlite3.Connection) -> None:
    """Bring an older (schema 1) file up to this schema in one transaction, keeping every row: ALTER
    TABLE ADD COLUMN for the columns added since (existing rows read NULL: not measured)."""
    con.execute("BEGIN IMMEDIATE")  # checked inside the write lock: two processes cannot both migrate
    try:
        for table, cols in _ADDED_COLUMNS.items():
            have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
            for c, t in cols:
                if c not in have:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {c} {t}")
        con.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))
        con.execute("COMMIT")
    except sqlite3.Error:
        con.execute("ROLLBACK")
        raise


def _open(path: Path) -> sqlite3.Connection:
    if path.is_dir():
        raise EdgetuneError(f"{path}: is a directory, expected a profile DB file")
    if path.exists():
        if not _writable(path):
            raise EdgetuneError(f"{path}: profile DB is read-only")
        try:
            _validate_existing(path)
        except OSError as e:
            raise EdgetuneError(f"{path}: cannot read the profile DB: {e.strerror or e}") from None
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgetuneError(f"{path.parent}: cannot create the profile DB folder: {e.strerror or e}") from None
    if not _writable(path.parent):
        raise EdgetuneError(f"{path.parent}: folder is not writable, cannot keep the profile DB {path.name} there")
    try:
        con = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    except sqlite3.Error as e:
        raise EdgetuneError(f"{path}: cannot open the profile DB: {e}") from None
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # a killed process loses nothing committed
        # tables and the edgetune marker in one transaction: a crash leaves all of it or none
        con.executescript(
            f"BEGIN IMMEDIATE;{_SCHEMA}"
            f"INSERT OR IGNORE INTO meta VALUES ('app', '{APP}');"
            f"INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}');"
            f"PRAGMA user_version={SCHEMA_VERSION}; PRAGMA application_id={APPLICATION_ID}; COMMIT;"
        )
        _migrate(con)
    except sqlite3.Error as e:
        con.close()
        raise EdgetuneError(f"{path}: cannot initialise the profile DB: {e}") from None
    return con


# ---- the DB ----------------------------------------------------------------------------------------

class ProfileDB:
    """Measurements for one device and one set of library versions (ids default to this machine's).

    Every `put_*` is its own committed transaction; `get_*` returns a record or None. Use as a context
    manager or call `close()`.
    """

    def __init__(self, path: str | Path | None = None, device_id: str | None = None,
                 versions_id: str | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.device_id = device_id or device.fingerprint_id()
        self.versions_id = versions_id or device.versions_id()
        self._con: sqlite3.Connection | None = _open(self.path)

    # ---- plumbing
    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            raise EdgetuneError(f"{self.path}: profile DB is closed")
        return self._con

    def _write(self, sql: str, params: Iterable[Any]) -> None:
        try:
            self.con.execute(sql, tuple(params))  # autocommit: one statement, one transaction
        except sqlite3.Error as e:
            raise EdgetuneError(f"{self.path}: cannot write to the profile DB: {e}") from None

    def _rows(self, sql: str, params: Iterable[Any]) -> list[dict[str, Any]]:
        try:
            cur = self.con.execute(sql, (self.device_id, self.versions_id, *params))
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.Error as e:
            raise EdgetuneError(f"{self.path}: cannot read the profile DB: {e}") from None

    @staticmethod
    def _measured(row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in _TIMING_NAMES}
        out["disturbed"] = bool(out["disturbed"])
        return out

    # ---- nodes
    def put_node(self, sig: str, primitive: str, threads: int, timing: Timing, weight_bytes: int = 0,
                 workspace_bytes: int = 0, resident_bytes: int | None = None,
                 transient_bytes: int | None = None) -> None:
        """One node timing; `resident_bytes`/`transient_bytes` are the measured memory of the kernel
        (edgetune.runtime.kernel_memory), None when not measured."""
        what = f"node {sig} / {primitive} @{threads}"
        _check_timing(timing, what)
        _check_threads(threads, what)
        if min(int(weight_bytes), int(workspace_bytes), *(int(b) for b in (resident_bytes, transient_bytes)
                                                         if b is not None)) < 0:
            raise UnusableMeasurement(f"{what}: byte counts must be >= 0")
        opt = [None if b is None else int(b) for b in (resident_bytes, transient_bytes)]
        self._write(
            "INSERT OR REPLACE INTO nodes (device, versions, sig, primitive, threads, "
            f"{', '.join(_TIMING_NAMES)}, weight_bytes, workspace_bytes, resident_bytes, transient_bytes) "
            f"VALUES ({', '.join('?' * 18)})",
            (self.device_id, self.versions_id, sig, primitive, int(threads), *_timing_values(timing),
             int(weight_bytes), int(workspace_bytes), *opt),
        )

    def _node(self, row: dict[str, Any]) -> NodeRecord:
        return NodeRecord(**self._measured(row), sig=row["sig"], primitive=row["primitive"],
                          threads=row["threads"], weight_bytes=row["weight_bytes"],
                          workspace_bytes=row["workspace_bytes"], resident_bytes=row.get("resident_bytes"),
                          transient_bytes=row.get("transient_bytes"))

    def get_node(self, sig: str, primitive: str, threads: int) -> NodeRecord | None:
        rows = self._rows("SELECT * FROM nodes WHERE device=? AND versions=? AND sig=? AND primitive=? "
                          "AND threads=?", (sig, primitive, int(threads)))
        return self._node(rows[0]) if rows else None

    def nodes(self, sig: str | None = None) -> list[NodeRecord]:
        """All node measurements for this device and versions (of one signature when given)."""
        where, params = ("AND sig=?", (sig,)) if sig is not None else ("", ())
        rows = self._rows(f"SELECT * FROM nodes WHERE device=? AND versions=? {where} "
                          "ORDER BY sig, primitive, threads", params)
        return [self._node(r) for r in rows]

    # ---- converters
    def put_converter(self, converter: str, shape: Sequence[int], threads: int, timing: Timing) -> None:
        """A converter, fusion pair, switch (threads 0: a pair of pool states) or dispatch timing."""
        what = f"converter {converter} {tuple(shape)} @{threads}"
        _check_timing(timing, what)
        _check_threads(threads, what, minimum=0)
        self._write(
            f"INSERT OR REPLACE INTO converters (device, versions, converter, shape, threads, "
            f"{', '.join(_TIMING_NAMES)}) VALUES ({', '.join('?' * 14)})",
            (self.device_id, self.versions_id, converter, _shape_key(shape), int(threads),
             *_timing_values(timing)),
        )

    def get_converter(self, converter: str, shape: Sequence[int], threads: int) -> ConverterRecord | None:
        rows = self._rows("SELECT * FROM converters WHERE device=? AND versions=? AND converter=? AND shape=? "
                          "AND threads=?", (converter, _shape_key(shape), int(threads)))
        if not rows:
            return None
        r = rows[0]
        return ConverterRecord(**self._measured(r), converter=r["converter"],
                               shape=_shape_from_key(r["shape"]), threads=r["threads"])

    def converters_like(self, prefix: str) -> dict[str, float]:
        """Every converter-table record whose key starts with `prefix` (e.g. the loop's fitted boundary
        costs, "observed:"), key -> median ms."""
        rows = self._rows("SELECT converter, median_ms FROM converters WHERE device=? AND versions=? AND "
                          "converter LIKE ? ESCAPE '\\'", (prefix.replace("%", "\\%").replace("_", "\\_") + "%",))
        return {r["converter"]: r["median_ms"] for r in rows}

    # ---- verifications
    def put_verification(self, sig: str, primitive: str, ok: bool, rel_error: float | None,
                         reason: str = "") -> None:
        if rel_error is not None and not math.isfinite(float(rel_error)):
            raise UnusableMeasurement(f"verification {sig} / {primitive}: rel_error must be finite or None")
        if not ok and not reason:
            raise UnusableMeasurement(f"verification {sig} / {primitive}: an exclusion needs its reason")
        self._write(
            "INSERT OR REPLACE INTO verifications VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.device_id, self.versions_id, sig, primitive, int(bool(ok)),
             None if rel_error is None else float(rel_error), reason, time.time()),
        )

    def get_verification(self, sig: str, primitive: str) -> VerifyRecord | None:
        rows = self._rows("SELECT * FROM verifications WHERE device=? AND versions=? AND sig=? AND primitive=?",
                          (sig, primitive))
        if not rows:
            return None
        r = rows[0]
        return VerifyRecord(sig=r["sig"], primitive=r["primitive"], ok=bool(r["ok"]), rel_error=r["rel_error"],
                            reason=r["reason"] or "", checked_at=r["checked_at"])

    def verifications_of(self, sig: str) -> list[VerifyRecord]:
        """Every verifications row of `sig` (e.g. the segments a search proposed for one graph), oldest first."""
        rows = self._rows("SELECT * FROM verifications WHERE device=? AND versions=? AND sig=? ORDER BY checked_at",
                          (sig,))
        return [VerifyRecord(sig=r["sig"], primitive=r["primitive"], ok=bool(r["ok"]), rel_error=r["rel_error"],
                             reason=r["reason"] or "", checked_at=r["checked_at"]) for r in rows]

    # ---- plans
    def put_plan(self, model_sig: str, plan_hash: str, timing: Timing, extra: str = "") -> None:
        _check_timing(timing, f"plan {plan_hash} of {model_sig}")
        self._write(
            f"INSERT OR REPLACE INTO plans (device, versions, model_sig, plan_hash, "
            f"{', '.join(_TIMING_NAMES)}, extra) VALUES ({', '.join('?' * 14)})",
            (self.device_id, self.versions_id, model_sig, plan_hash, *_timing_values(timing), extra),
        )

    def get_plan(self, model_sig: str, plan_hash: str) -> PlanRecord | None:
        rows = self._rows("SELECT * FROM plans WHERE device=? AND versions=? AND model_sig=? AND plan_hash=?",
                          (model_sig, plan_hash))
        if not rows:
            return None
        r = rows[0]
        return PlanRecord(**self._measured(r), model_sig=r["model_sig"], plan_hash=r["plan_hash"],
                          extra=r["extra"] or "")

    # ---- peers' resident memory (measured in a fresh process; a warm tune need not measure it again)
    def put_peer_memory(self, model_sig: str, peer: str, threads: int, measured: dict[str, int]) -> None:
        _check_threads(threads, f"peer {peer} of {model_sig}")
        self._write("INSERT OR REPLACE INTO peer_memory VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.device_id, self.versions_id, model_sig, peer, threads,
                     json.dumps({k: int(v) for k, v in measured.items()}), time.time()))

    def get_peer_memory(self, model_sig: str, peer: str, threads: int) -> dict[str, int] | None:
        rows = self._rows("SELECT measured FROM peer_memory WHERE device=? AND versions=? AND model_sig=? "
                          "AND peer=? AND threads=?", (model_sig, peer, threads))
        return json.loads(rows[0]["measured"]) if rows else None

    # ---- housekeeping
    def count(self) -> dict[str, int]:
        """Rows per table for this device and versions."""
        return {t: int(self._rows(f"SELECT COUNT(*) AS n FROM {t} WHERE device=? AND versions=?", ())[0]["n"])
                for t in _TABLES}

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> ProfileDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProfileDB({str(self.path)!r}, device={self.device_id}, versions={self.versions_id})"


# ---- node signatures ---------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    """A canonical, readable rendering of an attribute value (floats via repr, so 6 and 6.0 agree)."""
    if isinstance(v, bool | np.bool_):
        return str(int(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray):
        if v.size <= 16:
            return "[" + ",".join(_fmt(x) for x in v.ravel().tolist()) + "]"
        return f"tensor<{_shape_key(v.shape)}:{v.dtype}>"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_fmt(v[k])}" for k in sorted(v)) + "}"
    return repr(v)


def _value_key(graph: Graph, name: str) -> str:
    if not name:
        return "-"
    try:
        shape = _shape_key(graph.shape(name))
    except KeyError:
        shape = "?"
    try:
        dtype = graph.dtype(name)
    except KeyError:
        dtype = "?"
    return f"{'c' if graph.is_constant(name) else ''}{shape}:{dtype}"


def node_signature(node: Node, graph: Graph) -> str:
    """A readable key for what determines a node's cost: op, input and output shapes and dtypes (constant
    inputs marked `c`), sorted attributes and the fused activation. Node names and weight values are
    left out on purpose, so identical layers share measurements across models.

    Example: "Conv|in=1x3x8x8:float32,c4x3x3x3:float32|out=1x4x8x8:float32|group=1;pads=[1,1,1,1];...|act=Relu"
    """
    ins = ",".join(_value_key(graph, i) for i in node.inputs)
    outs = ",".join(_value_key(graph, o) for o in node.outputs)
    attrs = ";".join(f"{k}={_fmt(node.attrs[k])}" for k in sorted(node.attrs))
    act = "-"
    if node.activation is not None:
        p = node.activation.params
        act = node.activation.op + (f"({','.join(f'{k}={_fmt(p[k])}' for k in sorted(p))})" if p else "")
    return f"{node.op}|in={ins}|out={outs}|{attrs}|act={act}"
