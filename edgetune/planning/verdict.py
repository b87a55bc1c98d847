"""How the chosen plan stands against the whole-graph fp32 peers measured in the same run, in plain words.

Why a verdict and not just a table: a tuner whose plan loses to calling ONNX Runtime directly must say
so, and a difference inside the measurement noise is a tie, not a win.
"""

from __future__ import annotations

from typing import Any

from edgetune.planning.candidates import WHOLE_GRAPH_ORT, Candidate

# The whole-graph fp32 peers a plan must not lose to (int8 peers change the numerics: not the same job).
FP32_PEERS = ("onnxruntime fp32", "torch eager NCHW", "torch eager channels_last")
NOISE_FLOOR = 0.03


def peer_verdict(best: Candidate, best_row: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the chosen plan stands against the fastest fp32 peer measured in the same run, in plain words.

    Within noise means the medians differ by less than the larger of 3 % and half the wider relative
    p10-p90 spread of the two."""
    peers = [r for r in rows if r["variant"] in FP32_PEERS]
    if not peers:
        return {"statement": "no whole-graph peer was measured", "best_peer": None}
    peer = min(peers, key=lambda r: r["median_ms"])
    plan_ms, peer_ms = best_row["median_ms"], peer["median_ms"]
    noise = max(NOISE_FLOOR, 0.5 * max(best_row["spread"], peer["spread"]))
    speedup = peer_ms / plan_ms
    within = abs(speedup - 1.0) <= noise
    figures = f"{plan_ms:.2f} ms against {peer['variant']} called directly {peer_ms:.2f} ms"
    if best.name.startswith(WHOLE_GRAPH_ORT) and (within or speedup > 1):
        statement = (f"ONNX Runtime alone is the best plan on this CPU; edgetune's plan is that: {figures} "
                     f"({speedup:.2f}x, noise band ±{noise * 100:.0f} %).")
    elif within:
        statement = f"edgetune's plan ties with the fastest peer within noise: {figures} (±{noise * 100:.0f} %)."
    elif speedup > 1:
        statement = f"edgetune's plan is {speedup:.2f}x faster than the fastest peer: {figures}."
    else:
        statement = (f"edgetune's plan is SLOWER than {peer['variant']} by {(1 / speedup - 1) * 100:.0f} %: {figures} "
                     f"(beyond the ±{noise * 100:.0f} % noise band); use {peer['variant']} on this CPU.")
    return {"statement": statement, "best_peer": peer["variant"], "best_peer_ms": peer_ms, "plan_ms": plan_ms,
            "speedup_vs_best_peer": speedup, "within_noise": within, "noise_band": noise}
