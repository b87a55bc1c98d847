"""`edgetune fleet join HEAD`: make this machine a board of the cluster at HEAD.

It runs `ray start --address=HEAD --resources='{"edgetune-device": 1, "edgetune-device-<kind>": 1}'`, the
kind being this CPU's fingerprint id (so that work for a kind goes only to boards of that kind, one
measurement at a time: the resource is the slot), then tells the head's coordinator who the board is (CPU,
library versions) so that `fleet status` can name it before any profile has used it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from edgetune.errors import EdgetuneError
from edgetune.fleet.cluster import Fleet
from edgetune.fleet.identity import BoardIdentity, board_resources, local_identity


def ray_cli() -> str:
    """The `ray` command of this Python environment (the one edgetune's Ray came with)."""
    beside = os.path.join(os.path.dirname(sys.executable), "ray")
    return beside if os.path.exists(beside) else (shutil.which("ray") or "ray")


def join_command(head: str, identity: BoardIdentity, num_cpus: int | None = None) -> list[str]:
    """The `ray start` call that makes this machine a board of `identity.kind`."""
    cmd = [ray_cli(), "start", f"--address={head}", f"--resources={json.dumps(board_resources(identity.kind))}",
           "--disable-usage-stats"]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={int(num_cpus)}")
    return cmd


def join(head: str, num_cpus: int | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Start Ray here as a board of the cluster at `head` (or only say how, with `dry_run`)."""
    identity = local_identity()
    cmd = join_command(head, identity, num_cpus)
    out: dict[str, Any] = {"head": head, "kind": identity.kind, "board": identity.to_dict(), "command": cmd,
                           "started": False, "registered": False}
    if dry_run:
        return out
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED=os.environ.get("RAY_USAGE_STATS_ENABLED", "0"))
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EdgetuneError(f"fleet join {head}: could not run {cmd[0]} start: {e}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        raise EdgetuneError(f"fleet join {head}: `ray start` failed (exit {done.returncode}): {last[:300]}")
    out["started"] = True
    fleet = Fleet(head)
    try:
        node = fleet.ray.get_runtime_context().get_node_id()
        fleet.ray.get(fleet.coordinator().register.remote(node, identity.to_dict()), timeout=60)
        out["registered"], out["node"] = True, node
    except Exception as e:  # noqa: BLE001 - the board has joined; only its description for `status` is missing
        out["register_error"] = f"{type(e).__name__}: {e}"[:300]
    finally:
        fleet.close()
    return out
