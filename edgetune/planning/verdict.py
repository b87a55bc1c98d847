"""How the chosen plan stands against the whole-graph fp32 peers measured in the same run, in plain words.

Why a verdict and not just a table: a tuner whose plan loses to calling ONNX Runtime directly must say
so, and a difference inside the measurement noise is a tie, not a win.
"""

from __future__ import annotations

from typing import Any

from edgetune.planning.candidates import WHOLE_GRAPH_ORT, Candidate

# The whole-graph fp32 peers a plan must not lose to, of every runtime. The other peers change the numerics
# (OpenVINO at its default precision: bf16 or fp16 where the CPU has it; the int8 peers), so they are not
# the same job: the verdict names the fastest of them separately, never as the bar.
FP32_PEERS = ("onnxruntime fp32", "openvino f32", "torch eager NCHW", "torch eager channels_last")
NOISE_FLOOR = 0.03


def peer_verdict(best: Candidate, best_row: dict[str, Any], rows: list[dict[str, Any]],
                 within_budget: set[str] | None = None) -> dict[str, Any]:
    """How the chosen plan stands against the fastest fp32 peer measured in the same run, in plain words.

    Within noise means the medians differ by less than the larger of 3 % and half the wider relative
    p10-p90 spread of the two. Peers that are not fp32 (rows with kind "peer" and another precision) are
    named after the verdict as what they are: faster or slower at other numerics, not a bar."""
    bars = set(FP32_PEERS) | set(within_budget or ())
    peers = [r for r in rows if r["variant"] in bars]
    other = _lower_precision_note(rows, bars)
    if not peers:
        return {"statement": "no whole-graph fp32 peer was measured" + other, "best_peer": None}
    peer = min(peers, key=lambda r: r["median_ms"])
    plan_ms, peer_ms = best_row["median_ms"], peer["median_ms"]
    noise = max(NOISE_FLOOR, 0.5 * max(best_row["spread"], peer["spread"]))
    speedup = peer_ms / plan_ms
    within = abs(speedup - 1.0) <= noise
    figures = f"{plan_ms:.2f} ms against {peer['variant']} called directly {peer_ms:.2f} ms"
    which, where = ("within-budget", "within the accuracy budget") if within_budget else ("fp32", "at fp32")
    if best.name.startswith(WHOLE_GRAPH_ORT) and (within or speedup > 1):
        statement = (f"ONNX Runtime alone is the best plan on this CPU; edgetune's plan is that: {figures} "
                     f"({speedup:.2f}x, noise band ±{noise * 100:.0f} %).")
    elif within:
        statement = (f"edgetune's plan ties with the fastest {which} peer within noise: {figures} "
                     f"(±{noise * 100:.0f} %).")
    elif speedup > 1:
        statement = f"edgetune's plan is {speedup:.2f}x faster than the fastest peer {where}: {figures}."
    else:
        statement = (f"edgetune's plan is SLOWER than {peer['variant']} by {(1 / speedup - 1) * 100:.0f} %: "
                     f"{figures} (beyond the ±{noise * 100:.0f} % noise band); use {peer['variant']}, the fastest "
                     f"{which} peer, on this CPU.")
    fp32 = [r for r in rows if r["variant"] in FP32_PEERS]
    vs_fp32 = min(r["median_ms"] for r in fp32) / plan_ms if fp32 else None
    return {"statement": statement + other, "best_peer": peer["variant"], "best_peer_ms": peer_ms, "plan_ms": plan_ms,
            "speedup_vs_best_peer": speedup, "within_noise": within, "noise_band": noise,
            "speedup_vs_best_fp32_peer": vs_fp32, "bar": "within the accuracy budget" if within_budget else "fp32"}


def _lower_precision_note(rows: list[dict[str, Any]], bars: set[str]) -> str:
    """" Peers at other numerics, not fp32 bars: openvino default (bf16) 1.10 ms, ...", fastest first."""
    others = [r for r in rows if r.get("kind") == "peer" and r["variant"] not in bars]
    if not others:
        return ""
    listed = ", ".join(f"{r['variant']} ({r.get('precision') or '?'}) {r['median_ms']:.2f} ms"
                       for r in sorted(others, key=lambda r: r["median_ms"]))
    return f" Peers at other numerics, not fp32 bars: {listed}."
