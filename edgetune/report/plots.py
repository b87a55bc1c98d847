"""The report's figures, drawn headless with matplotlib's Agg renderer.

Each `*_figure` function takes the relevant part of the tuner's report data (`ReportData`'s typed rows)
and returns a Figure, or None when there is nothing to draw, so the HTML can say "not available"
instead of showing an empty axis. Figures are built with the object API on an explicit Agg canvas
rather than pyplot: that needs no display, keeps no global figure list (no leaks across many reports),
and never switches the backend of a caller that has pyplot open interactively.
"""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING, Any

from edgetune.planning.results import ComparisonRow, LayerRow, ParetoPoint, SpaceSummary, StrategyRun
from edgetune.report.fmt import as_list, library_of, ms, num, pos

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
MAX_INCHES = 500  # Agg refuses images over 2^16 px; 500 in at 110 dpi stays below that
PALETTE = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan", "black"]


@functools.cache
def _matplotlib() -> tuple[Any, Any]:
    """matplotlib's Figure and Agg canvas classes, loaded on the first figure: importing matplotlib takes
    about a second, and every edgetune command imports this module (through commands/tune.py)."""
    import matplotlib  # heavy third-party library, loaded on demand

    matplotlib.use("Agg")  # headless: no display is ever needed (pyplot itself is not imported here)
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # with matplotlib, on demand
    from matplotlib.figure import Figure  # with matplotlib, on demand

    return Figure, FigureCanvasAgg


def new_figure(width: float, height: float) -> Figure:
    """A Figure on its own Agg canvas, independent of pyplot state."""
    figure, canvas = _matplotlib()
    fig = figure(figsize=(width, min(height, MAX_INCHES)))
    canvas(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """Render at the report's resolution with a tight box, so captions in HTML carry the explanation."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _wide_range(values: list[float], factor: float) -> bool:
    """Whether values span more than `factor` (then a log axis keeps the small ones visible)."""
    return len(values) > 1 and min(values) > 0 and max(values) / min(values) > factor


def _short(name: str, width: int = 36) -> str:
    """Long node names keep their tail, which is the distinguishing part ("/features/3/conv/0/Conv")."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def comparison_figure(rows: list[ComparisonRow]) -> Figure | None:
    """Median end-to-end latency per variant with its p10–p90 spread and speed-up vs the BLAS baseline."""
    rows = [r for r in rows if pos(r.median_ms) is not None]
    if not rows:
        return None
    names = [str(r.variant or f"variant {i + 1}") for i, r in enumerate(rows)]
    med = [pos(r.median_ms) or 0.0 for r in rows]
    lo = [max(0.0, m - (pos(r.p10_ms) or m)) for m, r in zip(med, rows, strict=True)]
    hi = [max(0.0, (pos(r.p90_ms) or m) - m) for m, r in zip(med, rows, strict=True)]
    fig = new_figure(8, 1.2 + 0.55 * len(rows))
    ax = fig.add_subplot()
    y = list(range(len(rows)))
    log = _wide_range(med, 30)
    colors = ["tab:green" if "edgetune" in n.lower() else "tab:gray" for n in names]
    ax.barh(y, med, xerr=[lo, hi], color=colors, capsize=4, ecolor="black", height=0.6)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    top = max(m + h for m, h in zip(med, hi, strict=True))
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(med) / 2, top * 4)
    else:
        ax.set_xlim(0, top * 1.35)
    for yi, m, h, r in zip(y, med, hi, rows, strict=True):
        label = f"{ms(m)} ms"
        s = num(r.speedup_vs_blas)
        if s is not None:
            label += f"  ({s:.2f}× vs BLAS)"
        ax.annotate(label, (m + h, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("end-to-end latency per inference, median (ms)" + (", log scale" if log else ""))
    ax.set_title("End-to-end latency: tuned plan vs baselines (bars: median, whiskers: p10–p90)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def layers_figure(layers: list[LayerRow]) -> Figure | None:
    """Every measured option per node (grey) with the plan's choice coloured by library, on a log-ms axis."""
    rows = list(layers)
    if not rows or not any(pos(o.time_ms) for r in rows for o in r.options) and not any(
            pos(r.chosen_ms) for r in rows):
        return None
    n = len(rows)
    big = n > 80
    fig = new_figure(11 if big else 9, max(3.0, 0.2 * n + 1.4))
    ax = fig.add_subplot()
    libs: dict[str, str] = {}
    gx: list[float] = []
    gy: list[int] = []
    chosen_pts: dict[str, tuple[list[float], list[int]]] = {}
    for i, r in enumerate(rows):
        for o in r.options:
            t = pos(o.time_ms)
            if t is not None:
                gx.append(t)
                gy.append(i)
        key = str(r.chosen or "")
        match = next((o for o in r.options if o.key == key), None) if key else None
        t = pos(r.chosen_ms) or (pos(match.time_ms) if match else None)
        if t is None:
            continue
        lib = str((match.library if match else "") or (library_of(key) if key else "?"))
        libs.setdefault(lib, PALETTE[len(libs) % len(PALETTE)])
        xs, ys = chosen_pts.setdefault(lib, ([], []))
        xs.append(t)
        ys.append(i)
    ax.scatter(gx, gy, s=12, color="0.65", label="all options (measured)", zorder=2)
    for lib, (xs, ys) in chosen_pts.items():
        ax.scatter(xs, ys, s=45, marker="D", color=libs[lib], edgecolors="black", linewidths=0.5,
                   label=f"chosen: {lib}", zorder=3)
    labels = [f"{i} {_short(str(r.node or r.op or '?'))}" for i, r in enumerate(rows)]
    ax.set_yticks(range(n), labels, fontsize=6 if big else 8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlabel("time per call of the node in isolation, median (ms, log scale)")
    ax.set_ylabel("node, in execution order")
    ax.set_title(f"Per-layer options: measured time of every way to run each of {n} nodes")
    ax.grid(axis="x", which="both", alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def convergence_figure(strategies: dict[str, StrategyRun], optimum_ms: float | None) -> Figure | None:
    """Best predicted plan latency found so far against plan evaluations, one line per strategy."""
    lines: list[tuple[str, list[float], list[float]]] = []
    for name, s in strategies.items():
        xs: list[float] = []
        ys: list[float] = []
        for p in as_list(s.trace):
            p = as_list(p)  # a trace from a cut-short run may hold malformed entries: skipped
            if len(p) >= 2 and pos(p[0]) is not None and pos(p[1]) is not None:
                xs.append(float(p[0]))
                ys.append(float(p[1]))
        if not xs and pos(s.evaluations) is not None and pos(s.best_ms) is not None:
            xs, ys = [float(s.evaluations)], [float(s.best_ms)]
        if xs:
            lines.append((str(name), xs, ys))
    if not lines:
        return None
    fig = new_figure(8, 4.5)
    ax = fig.add_subplot()
    for i, (name, xs, ys) in enumerate(lines):
        color = PALETTE[i % len(PALETTE)]
        ax.step(xs, ys, where="post", color=color, label=name, linewidth=1.5)
        ax.plot(xs[-1:], ys[-1:], "o", color=color, markersize=4)
    opt = pos(optimum_ms)
    if opt is not None:
        ax.axhline(opt, color="black", linestyle="--", linewidth=1, label=f"exact optimum ({ms(opt)} ms)")
    values = [y for _, _, ys in lines for y in ys] + ([opt] if opt else [])
    if _wide_range(values, 10):
        ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("plans evaluated with the cost model (count, log scale)")
    ax.set_ylabel("best predicted latency so far (ms)")
    ax.set_title("Search convergence: best predicted plan latency vs evaluations")
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8)
    return fig


def pareto_figure(points: list[ParetoPoint]) -> Figure | None:
    """The latency/memory trade-off front, with the plan that was picked marked."""
    pts = [(pos(p.latency_ms), pos(p.memory_bytes), bool(p.chosen)) for p in points]
    pts = [(x, m / 1e6, c) for x, m, c in pts if x is not None and m is not None]
    if not pts:
        return None
    pts.sort()
    fig = new_figure(7, 4.5)
    ax = fig.add_subplot()
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    ax.step(xs, ys, where="post", color="tab:blue", alpha=0.5, linewidth=1)
    ax.scatter(xs, ys, color="tab:blue", s=30, label="Pareto-optimal plan", zorder=3)
    chosen = [p for p in pts if p[2]]
    if chosen:
        ax.scatter([p[0] for p in chosen], [p[1] for p in chosen], marker="*", s=220, color="tab:red",
                   edgecolors="black", linewidths=0.6, label="chosen plan", zorder=4)
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("resident bytes + largest scratch, as the search models it (MB)")
    ax.set_title("Pareto front: predicted latency vs memory of non-dominated plans")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def space_figure(space: SpaceSummary) -> Figure | None:
    """How many options each node has: the factors whose product is the design-space size."""
    counts = [int(v) for v in as_list(space.options_per_node) if num(v) is not None and v >= 0]
    if not counts:
        return None
    fig = new_figure(7, 3.8)
    ax = fig.add_subplot()
    low, top = min(counts), max(counts)
    bins = [b - 0.5 for b in range(low, top + 2)] if top - low <= 60 else 30
    ax.hist(counts, bins=bins, color="tab:blue", edgecolor="white")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("options for the node (primitive × thread count, count)")
    ax.set_ylabel("nodes (count)")
    size = num(space.log10_size)
    plans = f", about $10^{{{size:.1f}}}$ plans" if size is not None else ""
    ax.set_title(f"Design space: options per node over {len(counts)} nodes{plans}")
    ax.grid(axis="y", alpha=0.3)
    return fig


def accuracy_figure(precision: dict[str, Any], cpu: str = "") -> Figure | None:
    """Accuracy against latency of every precision configuration the search evaluated (measured points:
    accuracy on the evaluation split, latency timed briefly on its own), the budget's line, the chosen one."""
    points = [p for p in as_list(precision.get("points")) if isinstance(p, dict)
              and num(p.get("quick_ms")) is not None and num(p.get("accuracy")) is not None]
    if not points:
        return None
    fig = new_figure(7, 4.5)
    ax = fig.add_subplot()
    for lib in dict.fromkeys(p["library"] for p in points):
        mine = [p for p in points if p["library"] == lib]
        ax.scatter([p["quick_ms"] for p in mine], [p["accuracy"] for p in mine], s=30, label=lib, zorder=3)
    ref, budget = num(precision.get("reference_value")), num(precision.get("budget_points"))
    if ref is not None:
        ax.axhline(ref, color="gray", linewidth=1, label="fp32 reference")
        if budget is not None:
            ax.axhline(ref - budget, color="tab:red", linestyle="--", linewidth=1, label="budget")
    chosen = precision.get("chosen") or {}
    if num(chosen.get("quick_ms")) is not None:
        ax.scatter([chosen["quick_ms"]], [chosen["accuracy"]], marker="*", s=220, color="tab:red",
                   edgecolors="black", linewidths=0.6, label="chosen", zorder=4)
    metric = precision.get("metric", "accuracy")
    ax.set_xlabel("latency, timed on its own (ms, median)")
    ax.set_ylabel(f"{metric} on the evaluation split (%)")
    ax.set_title("Precision configurations: measured accuracy vs latency" + (f" ({cpu})" if cpu else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def timeline_figure(steps: list[dict[str, Any]], cpu: str = "") -> Figure | None:
    """The chosen plan's steps one after another, each as long as it measured alone, coloured by backend."""
    rows = [s for s in as_list(steps) if isinstance(s, dict) and num(s.get("measured_ms")) is not None]
    if not rows:
        return None
    fig = new_figure(9, 2.6)
    ax = fig.add_subplot()
    libs = list(dict.fromkeys(s["library"] for s in rows))
    colours = {lib: f"C{i % 10}" for i, lib in enumerate(libs)}
    start = 0.0
    for s in rows:
        ax.barh(0, s["measured_ms"], left=start, height=0.6, color=colours[s["library"]], edgecolor="white",
                linewidth=0.4)
        start += s["measured_ms"]
    for lib in libs:
        ax.barh(0, 0, color=colours[lib], label=lib)
    ax.set_yticks([])
    ax.set_xlabel("time (ms): each step timed alone on its real inputs, laid end to end")
    ax.set_title(f"Per-step timeline of the chosen plan ({len(rows)} steps)" + (f", {cpu}" if cpu else ""))
    ax.legend(fontsize=8, ncol=min(len(libs), 5), loc="upper center", bbox_to_anchor=(0.5, -0.45))
    fig.tight_layout()
    return fig
