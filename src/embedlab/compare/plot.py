"""The comparison as pictures: score against bytes per vector and against tokens/s, the Pareto front marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedlab.bench.plots import render_png
from embedlab.compare.report import compare_sections
from embedlab.compare.runner import CompareReport
from embedlab.errors import OutputError
from embedlab.inspect.report import sections_to_html

_MARKERS = "osD^vP*Xh"


def _short(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _full_dimension(result: Any) -> list[dict[str, Any]]:
    """The full-dimension options of one result."""
    return [o for o in result.options if o["dimensions"] == result.facts.dim]


def compare_png(report: CompareReport) -> bytes:
    """Two panels: (left) score, or tokens/s without data, against bytes per vector (log scale), a line per
    model through its precisions and dimensions, the options on the Pareto front ringed in black; (right)
    score against tokens/s at float32, full dimension, the models with an option on the front ringed."""
    with_quality = report.metric is not None
    y_label = report.metric or "tokens/s"

    def draw(fig: Any) -> None:
        left, right = fig.subplots(1, 2)
        for index, result in enumerate(report.results):
            marker = _MARKERS[index % len(_MARKERS)]
            label = f"{_short(result.facts.name)} ({result.measured['backend']})"
            options = sorted(result.options, key=lambda o: o["bytes_per_vector"])
            if with_quality:
                options = [o for o in options if o["score"] is not None]
            xs = [o["bytes_per_vector"] for o in options]
            ys = [o["score"] if with_quality else o["tokens_per_s"] for o in options]
            line = left.plot(xs, ys, marker=marker, linestyle="-", alpha=0.8, label=label)[0]
            names: dict[tuple[float, float], list[str]] = {}
            for option, x, y in zip(options, xs, ys, strict=True):
                if option["pareto"]:
                    left.scatter([x], [y], s=140, facecolors="none", edgecolors="black", linewidths=1.5, zorder=3)
                if option["dimensions"] == result.facts.dim:
                    names.setdefault((x, y), []).append(option["precision"])
            for (x, y), same in names.items():  # int8 / uint8 and binary / ubinary fall on one point
                left.annotate("/".join(same), (x, y), fontsize=7, xytext=(3, 4), textcoords="offset points")
            full = next(o for o in _full_dimension(result) if o["precision"] == "float32")
            y = full["score"] if with_quality else full["bytes_per_vector"]
            right.scatter([full["tokens_per_s"]], [y], marker=marker, s=60, color=line.get_color(), label=label)
            right.annotate(
                _short(result.facts.name),
                (full["tokens_per_s"], y),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
            if result.pareto:
                right.scatter([full["tokens_per_s"]], [y], s=160, facecolors="none", edgecolors="black", linewidths=1.5)
        left.set_xscale("log", base=2)
        left.set_xlabel("bytes per vector (log scale)")
        left.set_ylabel(y_label)
        left.set_title("storage: precision × dimension")
        left.grid(alpha=0.3)
        left.legend(fontsize=7)
        right.set_xlabel("real tokens/s on your texts")
        right.set_ylabel(y_label if with_quality else "float32 bytes per vector")
        right.set_title("speed (float32, full dimension; ringed: a model on the front)")
        right.grid(alpha=0.3)

    return render_png(draw, size=(11.0, 4.5))


def write_plot(report: CompareReport, path: Path) -> Path:
    """Write the plot as ``.png``, or as ``.html`` (the tables and the plot in one self-contained page).

    Raises:
        OutputError: another suffix, or the file cannot be written.
    """
    png = compare_png(report)
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            path.write_bytes(png)
        elif suffix in (".html", ".htm"):
            sections = compare_sections(report)
            sections[-1].images.append(("score, speed and bytes per vector; ringed: on the Pareto front", png))
            path.write_text(sections_to_html(sections, "embedlab compare"), encoding="utf-8")
        else:
            raise OutputError(f"{path}: plots are .png or .html")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    return path
