"""Plots of a bench result (matplotlib, Agg: no display needed) and one self-contained HTML report.

Each figure is drawn only when the result holds the points it needs: throughput vs batch size,
throughput and latency vs sequence length (the model's limit marked), backend comparison, thread
scaling, model shape (synthetic models), and padding waste of a data file. PNGs are embedded in the
HTML as base64, so the report is one file to mail or attach.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.errors import OutputError

Point = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """One plot: a title, a one-line reading guide and the PNG bytes."""

    title: str
    caption: str
    png: bytes


def _model_points(result: dict[str, Any]) -> list[Point]:
    name = result["model"]["name"]
    return [p for p in result["points"] if p["config"]["model"] == name]


def _tps(point: Point) -> tuple[float, float, float]:
    t = point["real_tokens_per_s"]
    return t["median"], t["median"] - t["min"], t["max"] - t["median"]


def render_png(draw: Callable[[Any], None], size: tuple[float, float] = (7.0, 4.2)) -> bytes:
    """PNG bytes of a matplotlib figure (Agg, 110 dpi, ``size`` inches) that ``draw(figure)`` fills."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=size, dpi=110)
    try:
        draw(fig)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _errorline(ax: Any, xs: list[float], pts: list[Point], label: str) -> None:
    values = [_tps(p) for p in pts]
    ax.errorbar(
        xs,
        [v[0] for v in values],
        yerr=[[v[1] for v in values], [v[2] for v in values]],
        marker="o",
        capsize=3,
        label=label,
    )


def figure_batch(result: dict[str, Any]) -> Figure | None:
    """Real tokens/s vs batch size, a line per backend and sequence length (most threads)."""
    points = [p for p in _model_points(result) if p["config"]["batch"] is not None]
    if len({p["config"]["batch"] for p in points}) < 2:
        return None
    top = max(p["config"]["threads"] for p in points)
    lines: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        c = p["config"]
        if c["threads"] == top:
            source = f"seq {c['seq']}" if c["seq"] is not None else "data"
            lines[f"{c['backend']}, {source}"].append(p)

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for label, pts in lines.items():
            pts.sort(key=lambda p: p["config"]["batch"])
            _errorline(ax, [p["config"]["batch"] for p in pts], pts, label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size (texts per forward pass)")
        ax.set_ylabel("real tokens/s (median, min-max)")
        ax.set_title(f"Throughput vs batch size ({top} threads)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2)

    return Figure("Throughput vs batch size", "Where the line flattens, bigger batches stop paying.", render_png(draw))


def figure_seq(result: dict[str, Any]) -> Figure | None:
    """Tokens/s and p50 batch latency vs sequence length, a line per backend and batch; the limit marked."""
    points = [p for p in _model_points(result) if p["config"]["seq"] is not None]
    if len({p["config"]["seq"] for p in points}) < 2:
        return None
    top = max(p["config"]["threads"] for p in points)
    limit = result["model"]["max_tokens"]
    lines: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        c = p["config"]
        if c["threads"] == top:
            lines[f"{c['backend']}, batch {c['batch']}"].append(p)

    def draw(fig: Any) -> None:
        left = fig.add_subplot(1, 2, 1)
        right = fig.add_subplot(1, 2, 2)
        for label, pts in lines.items():
            pts.sort(key=lambda p: p["config"]["seq"])
            seqs = [p["config"]["seq"] for p in pts]
            _errorline(left, seqs, pts, label)
            right.plot(seqs, [p["latency_ms"]["p50"] for p in pts], marker="o", label=label)
        for ax in (left, right):
            ax.axvline(limit, color="red", linestyle="--", linewidth=1, label=f"model limit {limit}")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("tokens per text")
            ax.grid(True, alpha=0.3)
        left.set_ylabel("real tokens/s")
        right.set_ylabel("batch latency p50 (ms)")
        right.set_yscale("log")
        left.set_title("Throughput vs length")
        right.set_title("Latency vs length")
        right.legend(fontsize=6)

    return Figure(
        "Throughput and latency vs sequence length",
        "Attention costs grow with the square of the length: tokens/s falls as texts get longer.",
        render_png(draw, (10.0, 4.2)),
    )


def figure_backends(result: dict[str, Any]) -> Figure | None:
    """Grouped bars of real tokens/s per backend at each (batch, length) of the most threads."""
    points = _model_points(result)
    backends = list(dict.fromkeys(p["config"]["backend"] for p in points))
    if len(backends) < 2:
        return None
    top = max(p["config"]["threads"] for p in points)
    groups: dict[str, dict[str, Point]] = defaultdict(dict)
    for p in points:
        c = p["config"]
        if c["threads"] == top:
            source = f"s{c['seq']}" if c["seq"] is not None else "data"
            groups[f"b{c['batch'] or 'auto'} {source}"][c["backend"]] = p

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / len(backends)
        names = list(groups)
        for i, backend in enumerate(backends):
            xs = [g + i * width for g in range(len(names))]
            ys = [groups[n][backend]["real_tokens_per_s"]["median"] if backend in groups[n] else 0 for n in names]
            ax.bar(xs, ys, width, label=backend)
        ax.set_xticks([g + 0.4 - width / 2 for g in range(len(names))])
        ax.set_xticklabels(names, rotation=60, fontsize=7)
        ax.set_ylabel("real tokens/s (median)")
        ax.set_title(f"Backends compared ({top} threads)")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)

    return Figure(
        "Backend / precision comparison",
        "The same texts and batches on each runtime; b = batch size, s = tokens per text.",
        render_png(draw, (9.0, 4.5)),
    )


def figure_threads(result: dict[str, Any]) -> Figure | None:
    """Speed-up over the fewest threads vs threads, a line per backend and batch size at one length
    (128 tokens, else the nearest below, else the shortest) and on the data file."""
    points = _model_points(result)
    threads = sorted({p["config"]["threads"] for p in points})
    if len(threads) < 2:
        return None
    seqs = sorted({p["config"]["seq"] for p in points if p["config"]["seq"] is not None})
    seq = max((s for s in seqs if s <= 128), default=seqs[0]) if seqs else None
    lines: dict[str, dict[int, Point]] = defaultdict(dict)
    for p in points:
        c = p["config"]
        if c["seq"] is not None and c["seq"] != seq:
            continue
        source = f"seq {c['seq']}" if c["seq"] is not None else "data"
        lines[f"{c['backend']}, batch {c['batch'] or 'auto'}, {source}"][c["threads"]] = p

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for label, by_threads in lines.items():
            base = by_threads.get(threads[0])
            if base is None:
                continue
            ts = sorted(by_threads)
            ref = base["real_tokens_per_s"]["median"]
            ax.plot(ts, [by_threads[t]["real_tokens_per_s"]["median"] / ref for t in ts], marker="o", label=label)
        ax.plot(threads, [t / threads[0] for t in threads], color="black", linestyle=":", label="linear")
        ax.set_xlabel("intra-op threads")
        ax.set_ylabel(f"speed-up over {threads[0]} thread(s)")
        ax.set_title("Thread scaling")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=5, ncol=2)

    return Figure(
        "Thread scaling", "Small batches of short texts scale worst: too little work per thread.", render_png(draw)
    )


def figure_synthetic(result: dict[str, Any]) -> Figure | None:
    """Tokens/s and share of matmul peak vs FLOPs per token for the model and the synthetic shapes."""
    synthetic = [p for p in result["points"] if "synthetic" in p]
    if not synthetic:
        return None

    def draw(fig: Any) -> None:
        left = fig.add_subplot(1, 2, 1)
        right = fig.add_subplot(1, 2, 2)
        for p in synthetic:
            flops = p["flops_per_token"] or 0
            s = p["synthetic"]
            label = f"h{s['hidden']} l{s['layers']}"
            left.scatter([flops / 1e6], [p["real_tokens_per_s"]["median"]])
            left.annotate(label, (flops / 1e6, p["real_tokens_per_s"]["median"]), fontsize=7)
            share = p["share_of_matmul_peak"] or 0
            right.bar([label], [100 * share])
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("MFLOP per token")
        left.set_ylabel("real tokens/s")
        left.set_title("Model size vs throughput")
        left.grid(True, alpha=0.3)
        right.set_ylabel("% of measured fp32 matmul peak")
        right.set_title("Achieved share of peak")
        right.grid(True, axis="y", alpha=0.3)

    return Figure(
        "Model shape (random-weight BERTs)",
        "Tokens/s falls roughly as FLOPs per token rise; small models waste more of the machine.",
        render_png(draw, (10.0, 4.2)),
    )


def figure_padding(result: dict[str, Any]) -> Figure | None:
    """Padded / real tokens vs batch size on the data file, per backend (the engine's batching as 'auto')."""
    points = [p for p in _model_points(result) if p["config"]["data"] is not None and p["config"]["seq"] is None]
    if not points:
        return None
    labels = list(dict.fromkeys(str(p["config"]["batch"] or "auto") for p in points))
    ratios = {str(p["config"]["batch"] or "auto"): p["padded_over_real"] for p in points}

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        ax.bar(labels, [ratios[x] for x in labels])
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_xlabel("batch size ('auto': the engine's token-budget batches)")
        ax.set_ylabel("padded / real tokens")
        ax.set_title("Padding waste on the data file")
        ax.grid(True, axis="y", alpha=0.3)

    return Figure(
        "Padding waste",
        "Batches of texts in file order pad every text to the longest; sorting by length avoids most of it.",
        render_png(draw),
    )


def all_figures(result: dict[str, Any]) -> list[Figure]:
    """Every figure the result has the points for."""
    makers = (figure_batch, figure_seq, figure_backends, figure_threads, figure_synthetic, figure_padding)
    return [f for f in (make(result) for make in makers) if f is not None]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return html.escape(str(value))


def points_table_html(result: dict[str, Any]) -> str:
    """An HTML table of every point."""
    head = (
        "<tr><th>model</th><th>backend</th><th>threads</th><th>batch</th><th>seq / data</th>"
        "<th>texts/s (min-max)</th><th>real tok/s</th><th>padded tok/s</th><th>pad/real</th>"
        "<th>p50 / p95 / p99 ms</th><th>peak RSS MB (+run)</th><th>tokenize / model / pool / other %</th>"
        "<th>GFLOP/s (% peak)</th></tr>"
    )
    rows = []
    for p in result["points"]:
        c = p["config"]
        t = p["texts_per_s"]
        share = p["time_share"]
        lat = p["latency_ms"]
        peak = p["share_of_matmul_peak"]
        gflops = _fmt(p["achieved_gflops"]) + (f" ({100 * peak:.0f}%)" if peak else "")
        source = c["seq"] if c["seq"] is not None else Path(c["data"] or "").name
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{v}</td>"
                for v in (
                    _fmt(c["model"]),
                    _fmt(c["backend"]),
                    _fmt(c["threads"]),
                    _fmt(c["batch"] or "auto"),
                    _fmt(source),
                    f"{_fmt(t['median'])} ({_fmt(t['min'])}-{_fmt(t['max'])})",
                    _fmt(p["real_tokens_per_s"]["median"], 0),
                    _fmt(p["padded_tokens_per_s"]["median"], 0),
                    _fmt(p["padded_over_real"], 2),
                    f"{_fmt(lat['p50'], 2)} / {_fmt(lat['p95'], 2)} / {_fmt(lat['p99'], 2)}",
                    f"{_fmt(p['peak_rss_mb'], 0)} (+{_fmt(p.get('rss_growth_mb'), 0)})",
                    " / ".join(f"{100 * share[k]:.0f}" for k in ("tokenize", "model", "pool", "other")),
                    gflops,
                )
            )
            + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def write_report(result: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML report (tables + embedded PNG plots) of ``result`` to ``path``.

    Raises:
        OutputError: the file cannot be written.
    """
    machine = result["machine"]
    model = result["model"]
    peaks = ", ".join(f"{t} threads: {v:.0f}" for t, v in machine.get("matmul_peak_gflops", {}).items())
    cache = result.get("cache", {})
    if cache.get("status") == "measured":
        cache_text = (
            f"{cache['texts']} texts twice through the engine's cache ({cache['backend']}): first pass "
            f"{cache['first_s']:.3f} s, second {cache['second_s']:.3f} s ({cache['hits']} hits): "
            f"{cache['ratio']:.1f}× faster"
        )
    else:
        cache_text = f"skipped: {cache.get('reason', 'not measured')}"
    figures = "".join(
        f"<h2>{html.escape(f.title)}</h2><p>{html.escape(f.caption)}</p>"
        f'<img alt="{html.escape(f.title)}" src="data:image/png;base64,{base64.b64encode(f.png).decode()}">'
        for f in all_figures(result)
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.get("notes", []))
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embedlab bench: {html.escape(model["name"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
th{{background:#f3f3f3}}img{{max-width:100%}}</style></head><body>
<h1>embedlab bench: {html.escape(model["name"])}</h1>
<p>{html.escape(machine["cpu"])}, {machine["cores_available"]} cores available; torch {html.escape(machine["torch"])},
onnxruntime {html.escape(str(machine.get("onnxruntime")))}, embedlab {html.escape(machine["embedlab"])};
measured {html.escape(result["created"])}. fp32 matmul peak (GFLOP/s): {html.escape(peaks)}.
Model: dim {model["dim"]}, {model["num_layers"]} layers, limit {model["max_tokens"]} tokens,
{model["flops"]["linear_per_token"] / 1e6:.1f} MFLOP per token in its linear layers.</p>
<p>Each point: {result["plan"]["warmup"]} warm-up run(s) excluded, then {result["plan"]["repeat"]} timed runs;
throughput is the median with min-max. Latency is per batch, from tokenising to finished vectors.
Machines are noisy: compare ratios measured in one run rather than absolute numbers across runs.</p>
<p>Cache effect: {html.escape(cache_text)}</p>
{f"<ul>{notes}</ul>" if notes else ""}
{figures}
<h2>Every point</h2>
{points_table_html(result)}
</body></html>
"""
    target = Path(path)
    try:
        target.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the report {target}: {exc.strerror or exc}") from exc
    return target
