"""``plan``'s outputs: tables, an HTML report with plots, ``plan.json`` and the settings file."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from embedlab.errors import OutputError
from embedlab.inspect.report import Section, fmt_bytes, fmt_int, sections_to_html
from embedlab.plan.lengths import histogram_png
from embedlab.plan.planner import PlanReport


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def batch_plot_png(report: PlanReport) -> bytes:
    """Throughput and worst-case peak memory against batch size, with the budget line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [m.batch_size for m in report.batches]
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    try:
        speed.plot(sizes, [m.tokens_per_second for m in report.batches], marker="o", color="#4c72b0")
        speed.set_xscale("log", base=2)
        speed.set_xlabel("batch size")
        speed.set_ylabel("tokens / s (sample)")
        speed.set_title("throughput")
        memory.plot(
            sizes,
            [(m.peak_rss_bytes or 0) / 2**20 for m in report.batches],
            marker="o",
            color="#c44e52",
            label="peak RSS",
        )
        if report.batch_choice.budget_bytes is not None:
            memory.axhline(report.batch_choice.budget_bytes / 2**20, color="#55a868", linestyle="--", label="budget")
        memory.set_xscale("log", base=2)
        memory.set_xlabel("batch size")
        memory.set_ylabel("MiB")
        memory.set_title(f"worst-case peak memory (L={report.advice.max_tokens})")
        memory.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def plan_sections(report: PlanReport, with_images: bool = False) -> list[Section]:
    """The sections of ``embedlab plan``'s report, in display order."""
    stats, advice = report.stats, report.advice
    pct = stats.percentiles
    lengths = Section(
        "Token lengths",
        ["statistic", "tokens"],
        [
            ["texts", fmt_int(stats.n_texts)],
            ["total tokens", fmt_int(stats.total_tokens)],
            ["mean", f"{stats.mean:.1f}"],
            *[[f"p{p}", str(v)] for p, v in pct.items()],
            ["max", str(stats.max)],
            ["model limit (max_seq_length)", str(stats.limit)],
            [
                "texts over the limit",
                f"{fmt_int(stats.texts_over_limit)} ({100 * stats.share_texts_over_limit:.2f} %)",
            ],
            [
                "tokens truncation would drop",
                f"{fmt_int(stats.tokens_over_limit)} ({100 * stats.share_tokens_over_limit:.2f} %)",
            ],
        ],
        [
            f"Counted with the model's tokenizer on all {stats.n_texts:,} texts of {report.data}, "
            "special tokens included."
        ],
    )
    if with_images:
        lengths.images.append(("token length histogram", histogram_png(report.lengths, stats.limit, advice.max_tokens)))
    sections = [lengths]
    sections.append(
        Section(
            "Max tokens",
            ["advice", "value"],
            [
                ["recommended max tokens", str(advice.max_tokens)],
                ["long-input policy", advice.long_input],
                [
                    "texts truncated at it",
                    f"{fmt_int(advice.texts_truncated)} ({100 * advice.share_texts_truncated:.2f} %)",
                ],
                [
                    "tokens lost to truncation",
                    f"{fmt_int(advice.tokens_lost)} ({100 * advice.share_tokens_lost:.2f} %)",
                ],
                ["sequences to embed", fmt_int(advice.segments)],
                ["tokens to embed", fmt_int(advice.tokens_embedded)],
            ],
            advice.reasons,
        )
    )
    reference = next((m for m in report.backends if m.available), None)
    backend_rows = []
    for m in report.backends:
        if not m.available:
            backend_rows.append([m.name, "unavailable", "-", "-", "-", "-", m.reason[:80]])
            continue
        speedup = m.tokens_per_second / reference.tokens_per_second if reference and reference.tokens_per_second else 0
        quality = "-" if m.eval_score is None else f"{m.eval_score:.4f} ({100 * (m.eval_loss or 0):+.2f} % loss)"
        backend_rows.append(
            [
                m.name + (" ✓" if m.name == report.backend_choice.recommended else ""),
                f"{m.tokens_per_second:,.0f}",
                f"{speedup:.2f}×",
                f"{m.agreement_mean:.5f} / {m.agreement_min:.5f}",
                quality,
                "yes" if m.acceptable else "no",
                f"load {m.load_seconds:.1f} s",
            ]
        )
    sections.append(
        Section(
            f"Backends (sample of {report.sample_size} texts)",
            [
                "backend",
                "tokens/s",
                "vs torch",
                "cosine to torch fp32 mean / min",
                "eval score",
                "within tolerance",
                "note",
            ],
            backend_rows,
            report.backend_choice.reasons,
        )
    )
    choice = report.batch_choice
    batch_rows = []
    for b in report.batches:
        mark = " ✓" if b.batch_size == choice.recommended else ""
        batch_rows.append(
            [
                f"{b.batch_size}{mark}",
                f"{b.texts_per_second:,.1f}",
                f"{b.tokens_per_second:,.0f}",
                f"{1000 * b.worst_case_latency_s:,.1f} ms",
                fmt_bytes(b.peak_rss_bytes),
                fmt_bytes(b.batch_bytes),
                "yes" if b.batch_size in choice.fitting else "no",
            ]
        )
    budget = f"{fmt_bytes(choice.budget_bytes)} ({choice.budget_source})" if choice.budget_bytes else "none"
    batch_section = Section(
        f"Batch sizes ({report.settings['backend']}, fresh process, worst case b × {report.advice.max_tokens} tokens)",
        ["batch", "texts/s", "tokens/s", "worst-case latency", "peak RSS", "added by batch", "fits"],
        batch_rows,
        [
            f"Memory budget: {budget}, safety margin {100 * choice.margin:g} %"
            + (f", latency target {1000 * choice.target_latency_s:g} ms" if choice.target_latency_s else ""),
            f"Largest fitting: {choice.largest}; fastest fitting: {choice.fastest}; recommended: {choice.recommended}.",
            *choice.reasons,
            "Peak RSS is the whole process (interpreter, runtime, weights and the batch), measured as VmHWM.",
        ],
    )
    if with_images:
        batch_section.images.append(("throughput and peak memory by batch size", batch_plot_png(report)))
    sections.append(batch_section)
    dims = report.dimension_choice
    sections.append(
        Section(
            "Dimensions",
            ["dimensions", "metric", "score", "loss"],
            [
                [
                    f"{q.dimensions}" + (" ✓" if q.dimensions == dims.recommended else ""),
                    q.metric,
                    f"{q.score:.4f}",
                    f"{100 * q.loss:.2f} %",
                ]
                for q in dims.measured
            ],
            [f"Recommended: {dims.recommended}.", *dims.reasons],
        )
    )
    sections.append(storage_section(report))
    cost = report.cost
    sections.append(
        Section(
            "Cost of the whole file",
            ["item", "value"],
            [
                ["texts (one vector each)", fmt_int(cost.texts)],
                ["tokens to embed", fmt_int(cost.tokens)],
                ["measured rate", f"{cost.tokens_per_second:,.0f} tokens/s"],
                ["estimated time", _seconds(cost.seconds)],
                *[
                    [f"storage {precision} ({cost.dimensions} dims)", fmt_bytes(size)]
                    for precision, size in cost.storage_bytes.items()
                ],
            ],
            [
                "Time: tokens to embed / tokens per second measured on the sample at the recommended batch size "
                "(same machine, same load; the measurement is noisy on a shared machine).",
                "Storage: raw vectors, float32 4 B, float16 2 B, int8 / uint8 1 B per value, binary / ubinary "
                "1 bit per value.",
            ],
        )
    )
    sections.append(
        Section(
            "Recommended settings",
            ["setting", "value"],
            [[k, str(v)] for k, v in report.settings.items()],
            [*report.notes, "Use them with: embedlab embed --config settings.json (or embedlab serve --config ...)."],
        )
    )
    return sections


def storage_section(report: PlanReport) -> Section:
    """Every (model, dimension, precision) with its total for the file and score; the recommendation marked."""
    storage = report.storage
    scored = [o for o in storage.options if o.score is not None]
    best = {(o.model, o.dimensions): o.score for o in scored if o.precision == "float32" and o.score is not None}
    rows = []
    for option in storage.options:
        base = best.get((option.model, option.dimensions))
        delta = (
            "-"
            if option.score is None or base is None or option.precision == "float32"
            else f"{option.score - base:+.4f}"
        )
        rows.append(
            [
                option.model.rstrip("/").rsplit("/", 1)[-1] + (" ✓" if option is storage.recommended else ""),
                str(option.dimensions),
                option.precision,
                fmt_int(option.bytes_per_vector),
                fmt_bytes(option.total_bytes(storage.vectors)),
                "-" if option.score is None else f"{option.score:.4f}",
                delta,
                "yes" if option in storage.fitting else "no",
            ]
        )
    metric = next((o.metric for o in scored), None) or "score"
    budget = "none" if storage.budget_bytes is None else fmt_bytes(storage.budget_bytes)
    return Section(
        f"Storage: model × dimension × precision (budget {budget} for {storage.vectors:,} vectors)",
        ["model", "dims", "precision", "bytes/vector", "total", metric, "Δ vs float32", "fits"],
        rows,
        [
            "Recommended: " + ("none fits" if storage.recommended is None else storage.recommended.label()) + ".",
            *storage.reasons,
            "Precision is applied per call: embed(texts, precision=...), the server's `precision` field.",
        ],
    )


@dataclass(frozen=True)
class PlanOutputs:
    """Files ``plan`` wrote."""

    report_html: Path
    plan_json: Path
    settings_json: Path
    lengths_png: Path
    batches_png: Path


def write_plan_outputs(report: PlanReport, out_dir: str | Path) -> PlanOutputs:
    """Write ``report.html`` (plots embedded), ``plan.json``, ``settings.json`` and the two PNGs into ``out_dir``.

    Raises:
        OutputError: the directory or a file cannot be written.
    """
    directory = Path(out_dir)
    outputs = PlanOutputs(
        directory / "report.html",
        directory / "plan.json",
        directory / "settings.json",
        directory / "lengths.png",
        directory / "batches.png",
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        sections = plan_sections(report, with_images=True)
        outputs.report_html.write_text(
            sections_to_html(sections, f"embedlab plan: {report.spec.name} on {report.data.name}"), encoding="utf-8"
        )
        outputs.plan_json.write_text(plan_json(report), encoding="utf-8")
        outputs.settings_json.write_text(json.dumps(report.settings, indent=2) + "\n", encoding="utf-8")
        outputs.lengths_png.write_bytes(sections[0].images[0][1])
        outputs.batches_png.write_bytes(next(s for s in sections if s.title.startswith("Batch sizes")).images[0][1])
    except OSError as exc:
        raise OutputError(f"cannot write the plan into {directory}: {exc}") from exc
    return outputs


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def plan_json(report: PlanReport) -> str:
    """The plan as indented JSON (non-finite numbers as null)."""
    return json.dumps(_finite(report.to_dict()), indent=2, default=_json_default)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
