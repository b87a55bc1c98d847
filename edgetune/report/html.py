"""The HTML report: one self-contained page (inline CSS, figures as data URIs, no JavaScript) plus PNGs.

Drawn from `ReportData` (edgetune.planning.results), the typed data the tune loop builds. A report must
open offline, be mailed as one file and survive a partial run, so every section reads its values
tolerantly (None, NaN, empty lists) and says "not available" when its part of the data is missing. All
text that came from the data is escaped; only markup built here goes out raw.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgetune.planning.results import ComparisonRow, ReportData
from edgetune.report import plots
from edgetune.report.fmt import DASH, as_dict, as_list, count, mb, ms, num, plain, pos, ratio, sentence, text

FIGURE_FILES = ("comparison.png", "layers.png", "timeline.png", "convergence.png", "pareto.png", "space.png")
OPTIONAL_FIGURES = ("precision.png",)  # only where the run searched precisions (tune --data)

DEFAULT_METHOD = {
    "timing": "Each time is the median of repeated runs after warm-up runs, on the threads stated; runs repeat "
              "until the spread is small or a time cap is reached, and the p10–p90 range is the spread.",
    "comparison": "End-to-end variants were timed side by side in one session on the same machine, alternating "
                  "between them, so that load and frequency changes affect all of them alike; speed-ups are "
                  "ratios against the BLAS fp32 baseline from that same session.",
    "search": "Strategies pick one option per node; a plan's predicted latency is the sum of its nodes' measured "
              "times plus the measured format-converter times on edges where producer and consumer disagree.",
    "memory": "Memory is the tuner's figure for a plan's peak memory in megabytes (10^6 bytes).",
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.chosen td { background: #eef7ee; font-weight: 600; }
.summary { border: 1px solid #9c9; background: #f6fbf6; padding: 0.8em 1.2em; border-radius: 6px; }
.summary p { margin: 0.3em 0; } .big { font-size: 1.3em; font-weight: 600; }
.na { color: #888; font-style: italic; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .caption { font-size: 0.9em; color: #444; max-width: 60em; }
code { background: #f4f4f4; padding: 0 0.2em; }
.scroll { max-height: 40em; overflow: auto; }
dt { font-weight: 600; margin-top: 0.6em; }
"""


class Raw(str):
    """Markup built by this module; the table helper passes it through unescaped."""


def esc(x: Any) -> str:
    """Escape any value for HTML text and attributes (quotes included)."""
    return html.escape(str(x), quote=True)


def _na(what: str) -> str:
    return f'<p class="na">{esc(what)} not available.</p>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int] = frozenset(),
           chosen: Sequence[bool] = ()) -> str:
    """A table; columns in `numeric` are right-aligned, rows flagged in `chosen` are highlighted."""
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        out.append('<tr class="chosen">' if i < len(chosen) and chosen[i] else "<tr>")
        for j, cell in enumerate(row):
            body = cell if isinstance(cell, Raw) else esc(cell)
            out.append(f'<td class="num">{body}</td>' if j in numeric else f"<td>{body}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


class _Figures:
    """Renders figures once, writes each as a PNG in the report folder and returns its embedded form."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.written: list[Path] = []

    def embed(self, fig: Any, filename: str, alt: str, caption: str) -> str:
        if fig is None:
            return ""
        data = plots.png_bytes(fig)
        path = self.out_dir / filename
        path.write_bytes(data)
        self.written.append(path)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return (f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(caption)} '
                f"(Also saved as <code>{esc(filename)}</code>.)</figcaption></figure>")


def _method(data: ReportData) -> dict[str, str]:
    """The run's own description of how numbers were measured, over the defaults."""
    given = {k: sentence(str(v)) for k, v in asdict(data.method).items() if v}
    return {**DEFAULT_METHOD, **given}


def _find(rows: list[ComparisonRow], *needles: str) -> ComparisonRow | None:
    for r in rows:
        name = str(r.variant or "").lower()
        if any(n in name for n in needles):
            return r
    return None


def _header(data: ReportData) -> str:
    device = as_dict(data.device)
    versions = as_dict(data.versions)
    threads = list(data.threads)
    flags = as_list(device.get("flags"))
    max_mem = num(data.max_memory)
    rows = [
        ("created", text(data.created)),
        ("CPU", text(device.get("cpu")) + (f" ({device['identity']})" if device.get("identity") else "")),
        ("cores", text(device.get("cores")) + (f", {device['smt_threads_per_core']} SMT threads per core"
                                              if num(device.get("smt_threads_per_core")) else "")),
        ("ISA features", " ".join(k for k, v in as_dict(device.get("features")).items() if v) or DASH),
        ("CPU flags", " ".join(map(str, flags)) if flags else DASH),
        ("caches", ", ".join(f"{k} {(num(v) or 0) / 2**20:.2f} MiB"
                             for k, v in as_dict(device.get("caches")).items()) or DASH),
        ("fingerprint id", text(device.get("id"))),
        ("objective", text(data.objective)),
        ("memory limit", f"{mb(max_mem)} MB" if max_mem is not None else "none"),
        ("thread counts tried", ", ".join(map(str, threads)) if threads else DASH),
        ("library versions", ", ".join(f"{k} {v}" for k, v in versions.items()) if versions else DASH),
        ("plan file", text(data.plan_path)),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f"<h1>edgetune report: {esc(text(data.model))}</h1><table>{body}</table>"


def _summary(data: ReportData) -> str:
    rows = list(data.comparison)
    plan = _find(rows, "edgetune", "plan") or (rows[0] if rows else None)
    blas = _find(rows, "blas")
    ort = _find(rows, "onnxruntime", "onnx runtime", "ort")
    parts = ['<div class="summary"><h2 style="margin-top:0;border:0">Summary</h2>']
    if plan is None or pos(plan.median_ms) is None:
        parts.append(_na("End-to-end comparison of the tuned plan"))
    else:
        p = pos(plan.median_ms)
        chosen = next((c for c in data.candidates if c.chosen), None)
        predicted = pos(chosen.predicted_ms) if chosen else None
        pred_text = f", predicted {ms(predicted)} ms" if predicted is not None else ""
        parts.append(f'<p class="big">Tuned plan: {esc(ms(p))} ms measured median per inference '
                     f"(p10–p90 {esc(ms(plan.p10_ms))}–{esc(ms(plan.p90_ms))} ms{esc(pred_text)}), "
                     f"memory {esc(_memory(plan))}</p>")
        for label, row in (("BLAS fp32 baseline", blas), ("ONNX Runtime fp32", ort)):
            b = pos(row.median_ms) if row else None
            if row is None or b is None or row is plan:
                parts.append(f'<p class="na">{esc(label)}: not available.</p>')
                continue
            faster = b / p
            word = "faster" if faster >= 1 else "slower"
            shown = faster if faster >= 1 else 1 / faster
            parts.append(f"<p>{esc(label)}: {esc(ms(b))} ms measured, memory {esc(_memory(row))} "
                         f"— the tuned plan is <b>{esc(ratio(shown))} {word}</b>.</p>")
    statement = as_dict(data.verdict).get("statement")
    if statement:
        parts.append(f'<p class="verdict"><b>{esc(text(statement))}</b></p>')
    opt = pos(data.optimum_ms)
    if opt is not None:
        exact = next((c for c in data.candidates if str(c.name).startswith("exact")), None)
        measured = pos(exact.measured_ms) if exact else None
        tail = (f"; that plan measured {ms(measured)} ms end to end" if measured is not None
                else "; that plan was not measured end to end")
        parts.append(f"<p>Optimum predicted by the cost model: {esc(ms(opt))} ms{esc(tail)} (predictions sum "
                     "per-layer measurements; the candidates table below sets each beside its measurement).</p>")
    parts.append("</div>")
    return "".join(parts)


def _memory(row: ComparisonRow) -> str:
    """A memory figure with what it counts: "24.5 MB planned total" or "4.9 MB weights only"."""
    kind = row.memory_kind
    return f"{mb(row.memory_bytes)} MB" + (f" {kind}" if kind else "")


def _comparison(data: ReportData, figs: _Figures, method: dict[str, str]) -> str:
    rows = list(data.comparison)
    out = ["<h2>End-to-end comparison</h2>"]
    if not rows:
        return out[0] + _na("End-to-end comparison")
    caption = ("Median latency of one whole inference for each variant, whiskers from the 10th to the 90th "
               "percentile of the repeated runs; labels give the median and the speed-up over the BLAS fp32 "
               f"baseline (its median divided by the variant's). {method['comparison']} {method['timing']}")
    out.append(figs.embed(plots.comparison_figure(rows), "comparison.png", "end-to-end latency bar chart", caption))
    table = [[r.variant or DASH, ms(r.median_ms), f"{ms(r.p10_ms)}–{ms(r.p90_ms)}", mb(r.memory_bytes),
              text(r.memory_kind), ratio(r.speedup_vs_blas), text(r.note)] for r in rows]
    out.append(_table(["variant", "median (ms)", "p10–p90 (ms)", "memory (MB)", "memory counts",
                       "speed-up vs BLAS", "note"], table, numeric={1, 2, 3, 5}))
    return "".join(out)


def _layers(data: ReportData, figs: _Figures, method: dict[str, str]) -> str:
    layers = list(data.layers)
    out = ["<h2>Per-layer options</h2>"]
    if not layers:
        return out[0] + _na("Per-layer measurements")
    caption = ("One row per node in execution order. Grey dots: the measured time of every verified option "
               "(primitive and thread count) for that node alone; diamonds: the option in the tuned plan, "
               "coloured by library. The chosen option need not be the fastest in isolation, because the "
               f"search also counts format conversions between neighbouring layers. {method['timing']}")
    out.append(figs.embed(plots.layers_figure(layers), "layers.png", "per-layer option times", caption))
    rows = []
    for layer in layers:
        options = [(o, pos(o.time_ms)) for o in layer.options]
        timed = [(o, t) for o, t in options if t is not None]
        best = min(timed, key=lambda ot: ot[1]) if timed else None
        chosen_key = layer.chosen
        chosen_ms = layer.chosen_ms
        if num(chosen_ms) is None:
            chosen_ms = next((t for o, t in options if o.key == chosen_key), None)
        rows.append([layer.node or DASH, layer.op or DASH, chosen_key or DASH, ms(chosen_ms),
                     best[0].key or DASH if best else DASH, ms(best[1]) if best else DASH,
                     count(len(options))])
    out.append('<div class="scroll">')
    out.append(_table(["node", "op", "chosen", "chosen (ms)", "fastest alone", "fastest (ms)", "options"],
                      rows, numeric={3, 5, 6}))
    out.append("</div>")
    return "".join(out)


def _search(data: ReportData, figs: _Figures, method: dict[str, str]) -> str:
    strategies = dict(data.strategies)
    out = ["<h2>Search</h2>"]
    if not strategies:
        return out[0] + _na("Search results")
    opt = pos(data.optimum_ms)
    caption = ("Best predicted end-to-end latency found so far by each strategy against the number of plans it "
               "had evaluated with the cost model (log axis); the dashed line is the exact optimum when it was "
               f"computed. Predicted, not measured, latencies. {method['search']}")
    out.append(figs.embed(plots.convergence_figure(strategies, opt), "convergence.png", "search convergence",
                          caption) or _na("Convergence traces"))
    rows = []
    for name, s in strategies.items():
        best = pos(s.best_ms)
        hp = as_dict(s.hyperparameters)
        rows.append([name, ms(best), ratio(best / opt) if best is not None and opt is not None else DASH,
                     count(s.evaluations), ms(s.seconds),
                     ", ".join(f"{k}={plain(v)}" for k, v in hp.items()) or DASH])
    out.append(_table(["strategy", "best predicted (ms)", "ratio to optimum", "evaluations", "search time (s)",
                       "hyper-parameters"], rows, numeric={1, 2, 3, 4}))
    return "".join(out)


def _pareto(data: ReportData, figs: _Figures, method: dict[str, str]) -> str:
    head = "<h2>Latency–memory trade-off</h2>"
    points = list(data.pareto)
    star = ("the star is the plan that was picked for the objective and memory limit of this run"
            if any(p.chosen for p in points) else
            "the plan picked by measurement is not on this front, so no point is starred")
    caption = (f"Each dot is a plan that no other plan beats in both predicted latency and memory; {star}. "
               "Latency is predicted by the cost model; memory is the search's model (what the kernels keep "
               "resident + the largest scratch of one kernel call, no activation arena), so it is below the "
               f"planned totals of the comparison table. {method['memory']}")
    fig = plots.pareto_figure(points)
    return head + (figs.embed(fig, "pareto.png", "Pareto front", caption) if fig else _na("Pareto front"))


def _candidates(data: ReportData, method: dict[str, str]) -> str:
    out = ["<h2>Candidate plans, predicted vs measured</h2>"]
    rows = list(data.candidates)
    if not rows:
        return out[0] + _na("Candidate measurements")
    table = []
    for r in rows:
        pred, meas = pos(r.predicted_ms), pos(r.measured_ms)
        err = f"{(meas - pred) / pred * 100:+.1f}" if pred is not None and meas is not None else DASH
        rel = num(r.max_rel_error)
        table.append([r.name or DASH, ms(pred), ms(meas), f"{ms(r.p10_ms)}–{ms(r.p90_ms)}",
                      err, mb(r.memory_bytes), f"{rel:.1e}" if rel is not None else DASH,
                      "yes" if r.chosen else "", text(r.note)])
    out.append(_table(["plan", "predicted (ms)", "measured (ms)", "p10–p90 (ms)", "error (%)", "memory (MB)",
                       "max rel. error", "chosen", "note"], table, numeric={1, 2, 3, 4, 5, 6},
                      chosen=[bool(r.chosen) for r in rows]))
    out.append(f'<p class="caption">Each candidate plan was run end to end; error is (measured − predicted) / '
               f"predicted. Max rel. error compares its outputs with the reference executor. "
               f"{esc(method['timing'])}</p>")
    return "".join(out)


def _loop(data: ReportData) -> str:
    """The closed loop's rounds: what the chosen plan predicted and measured, the boundary costs fitted."""
    out = ["<h2>Closing the loop</h2>"]
    if not data.loop:
        return out[0] + _na("The closed loop")
    table = []
    for r in data.loop:
        fit = r.get("fit") or {}
        fitted = "; ".join(f"{k} {v:.3f} ms" for k, v in (fit.get("after_ms") or {}).items()) or DASH
        rms = f"{fit['rms_before_ms']:.3f} → {fit['rms_after_ms']:.3f}" if fit else DASH
        table.append([r["round"], text(r["chosen"]), ms(r["predicted_ms"]), ms(r["measured_ms"]), rms, fitted,
                      text(", ".join(r.get("new_candidates", [])) or DASH), text(r.get("stop", ""))])
    out.append(_table(["round", "chosen plan", "predicted (ms)", "measured (ms)", "RMS error of the fit (ms)",
                       "fitted boundary costs", "new candidates measured", "stopped because"], table,
                      numeric={0, 2, 3}))
    out.append('<p class="caption">After the candidates are measured end to end, the cost of each kind of '
               "thread-pool switch between backends and the executor's per-inference cost are fitted to every "
               "measured plan (non-negative least squares), written back to the profile database, and the search "
               "runs again, until the chosen plan's prediction is within 10 % of its measurement.</p>")
    return "".join(out)


def _timeline(data: ReportData, figs: _Figures) -> str:
    """The chosen plan's steps: backend, threads, nodes, predicted and measured (alone) time, and the figure."""
    out = ["<h2>Per-segment timeline of the chosen plan</h2>"]
    steps = [s for s in as_list(data.timeline) if isinstance(s, dict)]
    if not steps:
        return out[0] + _na("The per-step timeline")
    cpu = text(data.device.get("cpu", "")) if isinstance(data.device, dict) else ""
    out.append(figs.embed(plots.timeline_figure(steps, cpu), "timeline.png", "per-step timeline",
                          "Every step of the chosen plan (a segment compiled whole, a one-node kernel or a layout "
                          "converter), timed alone on the inputs it sees in a real run (median), laid end to end."))
    rows = [[text(s.get("step")), text(s.get("library")), s.get("threads"), s.get("nodes"), ms(s.get("predicted_ms")),
             ms(s.get("measured_ms"))] for s in steps]
    total = sum(num(s.get("measured_ms")) or 0.0 for s in steps)
    out.append(_table(["step", "backend", "threads", "nodes", "predicted (ms)", "measured alone (ms)"], rows,
                      numeric={2, 3, 4, 5}))
    out.append(f'<p class="caption">Sum of the steps alone: {total:.2f} ms; the end-to-end measurement above '
               "shows what running them in sequence adds (thread-pool hand-overs, cold caches).</p>")
    return "".join(out)


def _precision(data: ReportData, figs: _Figures) -> str:
    """The precision search: the data, the budget, every configuration evaluated (measured accuracy), the
    peers' accuracy on the same split, the accuracy-latency figure, and per node the precision and why."""
    p = data.precision
    if not p:
        return ""  # a tune without --data: no section (nothing was asked)
    out = ["<h2>Precision under the accuracy budget</h2>",
           f"<p>fp32 reference: {esc(p.get('reference', ''))}. Budget: at most {num(p.get('budget_points')) or 0:g} "
           f"points of {esc(p.get('metric', ''))} lost. Data: {esc(p.get('data', ''))}. Full evaluations on the "
           f"evaluation split: {esc(p.get('full_evaluations'))} (the fp32 reference included). Calibration "
           f"ranges chosen per tensor: {esc(p.get('calibration_methods', {}))}.</p>"]
    rows = [[text(pt.get("name")), pt.get("int8_nodes"), pt.get("kept_fp32"), f"{pt.get('accuracy', 0):.2f}",
             f"{pt.get('drop', 0):+.2f}", ms(pt.get("quick_ms")), "yes" if pt.get("meets_budget") else "no"]
            for pt in as_list(p.get("points")) if isinstance(pt, dict)]
    out.append(_table(["configuration", "int8 nodes", "kept fp32", "accuracy (%)", "drop (points)",
                       "latency alone (ms)", "within budget"], rows, numeric={1, 2, 3, 4, 5}))
    peers = [[text(name), f"{a.get('value', 0):.2f}", f"{a.get('drop', 0):+.2f}",
              "yes" if a.get("meets_budget") else "no"] for name, a in (p.get("peers") or {}).items()]
    if peers:
        out.append("<p>The peers that change the numerics, on the same evaluation split (int8 peers calibrated on "
                   "the same calibration split):</p>")
        out.append(_table(["peer", "accuracy (%)", "drop (points)", "within budget"], peers, numeric={1, 2}))
    cpu = text(data.device.get("cpu", "")) if isinstance(data.device, dict) else ""
    out.append(figs.embed(plots.accuracy_figure(p, cpu), "precision.png", "accuracy against latency",
                          "Each precision configuration evaluated: accuracy measured on the evaluation split, latency "
                          "the median of repeated runs of that configuration alone (the choice itself is made on the "
                          "end-to-end side-by-side measurement above)."))
    nodes = p.get("nodes") or {}
    if nodes:
        out.append(_table(["node", "precision and why"], [[text(k), text(v)] for k, v in nodes.items()]))
    for note in as_list(p.get("notes")):
        out.append(f"<p class=\"caption\">{esc(note)}</p>")
    return "".join(out)


def _space(data: ReportData, figs: _Figures) -> str:
    out = ["<h2>Design space</h2>"]
    space = data.space
    if space is None:
        return out[0] + _na("Design-space description")
    size = num(space.log10_size)
    out.append(_table(["nodes", "edges", "plans"],
                      [[count(space.nodes), count(space.edges),
                        Raw(f"10<sup>{esc(f'{size:.1f}')}</sup>") if size is not None else DASH]],
                      numeric={0, 1, 2}))
    caption = ("Number of options (verified primitive × thread count) available to each node; the design space "
               "holds the product of these counts as possible plans.")
    out.append(figs.embed(plots.space_figure(space), "space.png", "options per node histogram", caption)
               or _na("Options-per-node histogram"))
    for names, label in ((space.fallbacks, "Nodes with only the reference kernel"),
                         (space.unmeasured, "Nodes without measurements")):
        if names:
            items = "".join(f"<li><code>{esc(n)}</code></li>" for n in names)
            out.append(f"<p>{esc(label)} ({len(names)}):</p><ul>{items}</ul>")
    return "".join(out)


def _profile(data: ReportData) -> str:
    head = "<h2>Profiling</h2>"
    prof = data.profile
    if prof is None:
        return head + _na("Profiling summary")
    rows = [["new measurements", count(prof.new_measurements)],
            ["reused from the profile database", count(prof.cached)],
            ["profiling time (s)", ms(prof.seconds)],
            ["profile database", text(data.profile_db)]]
    return head + _table(["quantity", "value"], rows)


def _notes(data: ReportData) -> str:
    head = "<h2>Notes</h2>"
    notes = [n for n in data.notes if n not in (None, "")]
    if not notes:
        return head + '<p class="na">No notes.</p>'
    return head + "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"


def _how_to_read(method: dict[str, str]) -> str:
    general = [
        ("Latency", "Wall-clock time of one inference (batch as exported) in milliseconds; lower is better."),
        ("Predicted vs measured", "Predicted latencies come from the cost model built from per-layer and "
                                  "per-converter measurements; measured latencies come from running the whole "
                                  "plan. The candidates table shows how far apart they are."),
    ]
    labels = {"timing": "How times were measured", "comparison": "How the end-to-end comparison was run",
              "search": "How the search works", "memory": "How memory was counted"}
    items = general + [(labels.get(k, k), v) for k, v in method.items()]
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f"<h2>How to read this report</h2><dl>{body}</dl>"


def render_html(data: ReportData, out_dir: Path) -> tuple[str, list[Path]]:
    """The page's HTML and the PNG files written to `out_dir` for it."""
    figs = _Figures(out_dir)
    method = _method(data)
    sections = [
        _header(data), _summary(data), _comparison(data, figs, method), _layers(data, figs, method),
        _search(data, figs, method), _pareto(data, figs, method), _candidates(data, method), _timeline(data, figs),
        _loop(data), _precision(data, figs), _space(data, figs),
        _profile(data), _notes(data), _how_to_read(method),
    ]
    title = f"edgetune report: {text(data.model)}"
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")
    return page, figs.written


def write_report(data: ReportData, out_dir: Path) -> Path:
    """Write `out_dir/report.html` (self-contained) and one PNG per figure; return the HTML path.

    Figure files left from an earlier report in the same folder are removed when this run has no data
    for them, so the folder never mixes figures from two runs.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page, written = render_html(data, out_dir)
    for name in (*FIGURE_FILES, *OPTIONAL_FIGURES):
        stale = out_dir / name
        if stale not in written and stale.is_file():
            stale.unlink()
    path = out_dir / "report.html"
    tmp = out_dir / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
