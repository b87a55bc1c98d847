"""Simulated boards: a Ray cluster of several nodes on this machine, bound to 127.0.0.1 only, each node a
board (tests, bench/fleet.py, a rehearsal before the real boards are wired).

A node may simulate a board of another kind (`SimulatedBoard.fingerprint`) or with other library versions
(`versions`): its Ray node's environment carries EDGETUNE_FLEET_FINGERPRINT / EDGETUNE_FLEET_VERSIONS, which
the board actor reports instead of this machine's (fleet/identity.py). `kill_board` takes a board down the
way a pulled plug does: its node and every process on it, mid-measurement.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from typing import Any

import psutil

from edgetune.device.cpu import fingerprint
from edgetune.fleet.cluster import ray_module
from edgetune.fleet.identity import FINGERPRINT_ENV, VERSIONS_ENV, board_resources, kind_id

LOOPBACK = "127.0.0.1"
OBJECT_STORE_BYTES = 80 * 2**20  # per node: a model's graph and samples, a few times over
# Faster death detection than Ray's default (tens of seconds), so a test's dead board is noticed in seconds.
SYSTEM_CONFIG = {"health_check_initial_delay_ms": 1000, "health_check_period_ms": 1000,
                 "health_check_failure_threshold": 3}


@dataclass(frozen=True)
class SimulatedBoard:
    """One node of the local cluster: this machine's kind unless `fingerprint` says another CPU's."""

    fingerprint: dict[str, Any] | None = None
    versions: dict[str, str] | None = None
    num_cpus: int = 1

    @property
    def kind(self) -> str:
        return kind_id(self.fingerprint if self.fingerprint is not None else fingerprint())

    def node_args(self) -> dict[str, Any]:
        env = {}
        if self.fingerprint is not None:
            env[FINGERPRINT_ENV] = json.dumps(self.fingerprint)
        if self.versions is not None:
            env[VERSIONS_ENV] = json.dumps(self.versions)
        return {"num_cpus": self.num_cpus, "resources": board_resources(self.kind), "node_ip_address": LOOPBACK,
                "object_store_memory": OBJECT_STORE_BYTES, "env_vars": env or None}


class LocalCluster:
    """A head and boards as Ray nodes of one local cluster (`ray.cluster_utils.Cluster`). The head is the
    first board unless `head` is None (then it is a plain node with no measurement slot)."""

    def __init__(self, head: SimulatedBoard | None = SimulatedBoard(), boards: tuple[SimulatedBoard, ...] = ()) -> None:
        self.ray = ray_module(loopback=True)
        from ray.cluster_utils import Cluster  # optional extra, loaded with Ray

        args = head.node_args() if head is not None else {"num_cpus": 1, "node_ip_address": LOOPBACK,
                                                          "object_store_memory": OBJECT_STORE_BYTES}
        args = {k: v for k, v in args.items() if v is not None}
        self.cluster = Cluster(initialize_head=True, head_node_args={
            **args, "include_dashboard": False, "_system_config": SYSTEM_CONFIG})
        self.boards: list[tuple[Any, SimulatedBoard]] = [(self.cluster.head_node, head)] if head else []
        for b in boards:
            self.add_board(b)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_board(self, board: SimulatedBoard) -> Any:
        node = self.cluster.add_node(**{k: v for k, v in board.node_args().items() if v is not None})
        self.boards.append((node, board))
        return node

    def node_id(self, node: Any) -> str:
        return str(node.node_id)

    def kill_board(self, node: Any) -> None:
        """The node and every process it started (its board actor included), SIGKILLed."""
        raylet = node.all_processes["raylet"][0].process.pid
        try:
            children = psutil.Process(raylet).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.cluster.remove_node(node, allow_graceful=False)
        for p in children:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.boards = [(n, b) for n, b in self.boards if n is not node]

    def shutdown(self) -> None:
        """Leave Ray and stop every node (no Ray process of this cluster is left running)."""
        if self.ray.is_initialized():
            self.ray.shutdown()
        self.cluster.shutdown()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
