"""The connection to a Ray cluster: Ray loaded on demand (an optional extra), the boards its nodes declare,
the coordinator actor that `fleet status` reads, and one board actor per board.

Loopback clusters (tests, bench/fleet.py, a rehearsal on one machine): Ray replaces 127.0.0.1 in an address
by the machine's outward IP unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, so for a loopback ADDRESS that is set
before Ray loads and nothing leaves 127.0.0.1. Ray's usage statistics are off (RAY_USAGE_STATS_ENABLED=0)
unless the user set them: edgetune sends nothing anywhere.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.fleet.identity import DEVICE_RESOURCE, KIND_PREFIX, kinds_of
from edgetune.fleet.state import COORDINATOR, NAMESPACE, FleetState

HEAD_RESOURCE = "node:__internal_head__"  # Ray's marker of the head node
CONNECT_TIMEOUT_S = 5.0
# Where `ray start --head` (and ray.cluster_utils) note the address of the cluster they started here.
RAY_CURRENT_CLUSTER = "/tmp/ray/ray_current_cluster"


def resolve_address(address: str | None) -> str:
    """ADDRESS as given, or for "auto"/None the cluster started on this machine (RAY_ADDRESS, else the
    address `ray start` wrote), so that a loopback cluster is recognised as one before Ray loads."""
    if address and address != "auto":
        return address
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    try:
        with open(RAY_CURRENT_CLUSTER, encoding="utf-8") as f:
            found = f.read().strip()
    except OSError:
        found = ""
    if not found:
        raise EdgetuneError("no Ray cluster was started on this machine (no RAY_ADDRESS, nothing in "
                            f"{RAY_CURRENT_CLUSTER}): give the head's HOST:PORT with --cluster")
    return found


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ray_module(loopback: bool = False) -> Any:
    """Ray, imported with edgetune's environment (no usage statistics; loopback kept on loopback)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if loopback:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray  # optional extra edgetune[fleet], loaded only by fleet commands and --cluster
    except ImportError:
        raise EdgetuneError("the device fleet needs Ray, which is not installed: pip install 'edgetune[fleet]'"
                            ) from None
    return ray


def check_address(address: str) -> None:
    """HOST:PORT that answers, or a one-line error (Ray itself would retry for a minute or more)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise EdgetuneError(f"--cluster {address!r}: expected HOST:PORT of the Ray head (e.g. 127.0.0.1:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise EdgetuneError(f"--cluster {address}: no Ray head answers there ({e.strerror or e})") from None


@dataclass(frozen=True)
class NodeInfo:
    """A Ray node as `ray.nodes()` lists it, with the board kinds it declares."""

    node: str
    address: str
    alive: bool
    kinds: tuple[str, ...]
    is_board: bool
    is_head: bool


class Fleet:
    """A driver's connection to the cluster at `address` (None or "auto": the one started on this machine)."""

    def __init__(self, address: str | None) -> None:
        address = resolve_address(address)
        check_address(address)
        self.address = address
        self.ray = ray_module(loopback=is_loopback(address))
        self._owns = not self.ray.is_initialized()
        if self._owns:
            try:
                self.ray.init(address=address, namespace=NAMESPACE, log_to_driver=False,
                              logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise EdgetuneError(f"--cluster {address}: cannot join the Ray cluster: "
                                    f"{' '.join(str(e).split())[:300]}") from None
        self._coordinator: Any = None

    @property
    def boards(self) -> dict[str, Any]:
        """This process's board actors, by node id: one per board per driver process, so that a second
        profile in the same process reuses them instead of waiting for the slots its first one holds."""
        return _BOARD_ACTORS

    # ---- what the cluster has
    def nodes(self) -> list[NodeInfo]:
        out = []
        for n in self.ray.nodes():
            res = n.get("Resources", {}) or {}
            out.append(NodeInfo(node=n["NodeID"], address=str(n.get("NodeManagerAddress", "")),
                                alive=bool(n.get("Alive")), kinds=tuple(kinds_of(res)),
                                is_board=DEVICE_RESOURCE in res or any(k.startswith(KIND_PREFIX) for k in res),
                                is_head=HEAD_RESOURCE in res))
        return out

    def boards_of(self, kind: str) -> list[NodeInfo]:
        """The live boards that declare `kind`."""
        return [n for n in self.nodes() if n.alive and kind in n.kinds]

    def kinds(self) -> dict[str, int]:
        """Each declared kind and how many live boards declare it."""
        out: dict[str, int] = {}
        for n in self.nodes():
            for k in n.kinds if n.alive else ():
                out[k] = out.get(k, 0) + 1
        return out

    def choose_kind(self, requested: str | None, here: str) -> str:
        """The kind to measure: `requested` (a kind id or a unique prefix of one), else this machine's kind
        when boards of it exist, else the only kind; a one-line error naming the kinds otherwise."""
        kinds = self.kinds()
        listed = ", ".join(f"{k} ({n} board{'s' * (n != 1)})" for k, n in sorted(kinds.items())) or "none"
        if not kinds:
            raise EdgetuneError(f"--cluster {self.address}: no board has joined (no node declares an "
                                f"{KIND_PREFIX}<kind> resource; run `edgetune fleet join` on each board)")
        if requested:
            found = [k for k in kinds if k == requested] or [k for k in kinds if k.startswith(requested)]
            if len(found) != 1:
                why = "matches several kinds" if found else "is no kind on the cluster"
                raise EdgetuneError(f"--device-kind {requested}: {why} (kinds: {listed})")
            return found[0]
        if here in kinds:
            return here
        if len(kinds) == 1:
            return next(iter(kinds))
        raise EdgetuneError(f"--cluster {self.address}: boards of several kinds, choose one with --device-kind "
                            f"(kinds: {listed})")

    # ---- the coordinator
    def coordinator(self, create: bool = True) -> Any:
        """The named state actor on the head (created on first use, kept after this driver exits), or None."""
        if self._coordinator is None:
            try:
                self._coordinator = self.ray.get_actor(COORDINATOR, namespace=NAMESPACE)
            except ValueError:
                if not create:
                    return None
                self._coordinator = self.ray.remote(FleetState).options(
                    name=COORDINATOR, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
                    resources={HEAD_RESOURCE: 0.001}, max_restarts=-1).remote()
        return self._coordinator

    def tell(self, method: str, *args: Any) -> None:
        """A fire-and-forget update of the coordinator (a lost update only makes `fleet status` stale)."""
        try:
            getattr(self.coordinator(), method).remote(*args)
        except Exception:  # noqa: BLE001 - status bookkeeping must never stop a profile
            self._coordinator = None

    def close(self) -> None:
        """If this object joined Ray: stop the process's board actors (freeing the boards' slots) and leave.
        A Fleet made while already connected leaves both to the one that connected."""
        if not self._owns:
            return
        for actor in self.boards.values():
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - an actor on a dead board is already gone
                pass
        self.boards.clear()
        if self.ray.is_initialized():
            self.ray.shutdown()


_BOARD_ACTORS: dict[str, Any] = {}
