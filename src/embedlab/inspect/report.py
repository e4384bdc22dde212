"""Render analysis results (inspect, plan) as rich tables, Markdown or a self-contained HTML page.

A report is a list of :class:`Section`: a title, a table (headers and rows of strings), notes, and
optionally images (PNG bytes, embedded into the HTML as data URIs so the page stands alone).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedlab.errors import OutputError

if TYPE_CHECKING:
    from embedlab.inspect.inspector import InspectReport


@dataclass
class Section:
    """One titled table of a report.

    Attributes:
        title: the heading.
        headers: column names.
        rows: cells as display strings.
        notes: sentences printed under the table.
        images: (caption, PNG bytes) pairs; shown in HTML and Markdown reports, not in the terminal.
    """

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)


def fmt_int(value: int | float | None) -> str:
    """``22713216`` → ``22,713,216``; None → ``-``."""
    return "-" if value is None else f"{round(value):,}"


def fmt_bytes(value: int | float | None) -> str:
    """Bytes in binary units: ``1536`` → ``1.5 KiB``; None → ``-``."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


def fmt_flops(value: int | float | None) -> str:
    """FLOPs with SI prefixes: ``6.8e8`` → ``684.8 MFLOP``; None → ``-``."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP"):
        if abs(size) < 1000 or unit == "PFLOP":
            return f"{size:.0f} {unit}" if unit == "FLOP" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PFLOP"  # pragma: no cover


def fmt_shape(shape: Sequence[int]) -> str:
    """``(2, 16, 384)``."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def print_sections(sections: Sequence[Section], title: str | None = None) -> None:
    """Print the sections as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the tables into 80 columns
        console = Console(width=140)
    if title:
        console.print(f"[bold]{title}[/]", highlight=False)
    for section in sections:
        if not section.headers or not section.rows:
            console.print(f"[bold]{section.title}[/]", highlight=False)
            for note in section.notes:
                console.print(f"  {note}", highlight=False, soft_wrap=True)
            continue
        table = Table(title=section.title, title_justify="left", title_style="bold")
        for index, header in enumerate(section.headers):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in section.rows:
            table.add_row(*row)
        console.print(table)
        for note in section.notes:
            console.print(f"  {note}", highlight=False, soft_wrap=True)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def sections_to_markdown(sections: Sequence[Section], title: str, image_dir: Path | None = None) -> str:
    """A Markdown document; images are written next to it (``image_dir``) and linked, else left out."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.headers and section.rows:
            lines.append("| " + " | ".join(_md_cell(h) for h in section.headers) + " |")
            lines.append("|" + "|".join(["---"] + ["---:"] * (len(section.headers) - 1)) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
            lines.append("")
        lines += [f"- {note}" for note in section.notes]
        if section.notes:
            lines.append("")
        if image_dir is not None:
            for number, (caption, png) in enumerate(section.images):
                name = f"{_slug(section.title)}-{number}.png"
                (image_dir / name).write_bytes(png)
                lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em}
td{text-align:right;font-variant-numeric:tabular-nums}td:first-child,th:first-child{text-align:left}
th{background:#f3f3f3}ul.notes{color:#444}figure{margin:1em 0}img{max-width:100%}
"""


def sections_to_html(sections: Sequence[Section], title: str) -> str:
    """A self-contained HTML page (CSS inline, images as data URIs)."""
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        out.append(f'<h2 id="{_slug(section.title)}">{html.escape(section.title)}</h2>')
        if section.headers and section.rows:
            out.append(
                "<table><thead><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in section.headers)
                + "</tr></thead><tbody>"
            )
            for row in section.rows:
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            out.append("</tbody></table>")
        if section.notes:
            out.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in section.notes) + "</ul>")
        for caption, png in section.images:
            data = base64.b64encode(png).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)


def write_report(sections: Sequence[Section], path: str | Path, title: str) -> Path:
    """Write the report as HTML (``.html`` / ``.htm``) or Markdown (``.md``), chosen by the suffix.

    Raises:
        OutputError: another suffix, or the file cannot be written.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix in (".html", ".htm"):
            file.write_text(sections_to_html(sections, title), encoding="utf-8")
        elif suffix == ".md":
            file.write_text(sections_to_markdown(sections, title, image_dir=file.parent), encoding="utf-8")
        else:
            raise OutputError(f"{file}: reports are .html or .md")
    except OSError as exc:
        raise OutputError(f"cannot write report {file}: {exc}") from exc
    return file


# -- the inspect report -------------------------------------------------------------------------------


def _shape_sum(shapes: Sequence[Sequence[int]]) -> str:
    return " + ".join("×".join(str(d) for d in shape) for shape in shapes)


def inspect_sections(report: InspectReport) -> list[Section]:
    """The sections of ``embedlab inspect``'s output, in display order."""
    from embedlab.inspect.anatomy import PART_LABELS, WEIGHT_BYTES

    anatomy = report.anatomy
    total = anatomy.total
    b, s = report.trace.batch, report.trace.seq_len
    sections = [Section("Model", ["fact", "value"], [[k, str(v)] for k, v in report.facts.items()])]

    def share(n: int) -> str:
        return f"{100 * n / total:.2f} %" if total else "-"

    rows: list[list[str]] = []
    embedding_shapes: dict[str, list[tuple[int, ...]]] = {}
    for entry in anatomy.entries:
        if entry.section == "embeddings":
            embedding_shapes.setdefault(entry.part, []).append(entry.shape)
    for part, count in anatomy.embedding_parts().items():
        rows.append(
            [f"embeddings: {PART_LABELS[part]}", _shape_sum(embedding_shapes[part]), fmt_int(count), share(count)]
        )
    rows.append(
        [
            "embeddings: total",
            "",
            fmt_int(anatomy.section_total("embeddings")),
            share(anatomy.section_total("embeddings")),
        ]
    )
    if anatomy.num_layers:
        layer_ids = [0] if anatomy.layers_identical else list(range(anatomy.num_layers))
        for layer in layer_ids:
            shapes = anatomy.layer_shapes(layer)
            label = "each layer" if anatomy.layers_identical else f"layer {layer}"
            for part, count in anatomy.layer_parts(layer).items():
                rows.append([f"{label}: {PART_LABELS[part]}", _shape_sum(shapes[part]), fmt_int(count), share(count)])
            per_layer = sum(anatomy.layer_parts(layer).values())
            rows.append([f"{label}: total", "", fmt_int(per_layer), share(per_layer)])
        layers_total = anatomy.section_total("layer")
        rows.append([f"all {anatomy.num_layers} encoder layers", "", fmt_int(layers_total), share(layers_total)])
    for section in ("pooler", "head", "other"):
        count = anatomy.section_total(section)
        if count:
            part_shapes = [e.shape for e in anatomy.entries if e.section == section]
            names = ", ".join(e.name for e in anatomy.entries if e.section == section) if section == "other" else ""
            label = section + (f" ({names})" if names else "")
            rows.append([label, _shape_sum(part_shapes), fmt_int(count), share(count)])
    rows.append(["total", "", fmt_int(total), "100.00 %"])
    sections.append(
        Section(
            "Parameters",
            ["component", "shape", "parameters", "share"],
            rows,
            [
                f"The parts add up to {total:,}, the count of model.parameters() (checked in code).",
                "The pooler is part of the transformers model; sentence-transformers pooling does not use it.",
            ],
        )
    )
    if report.head is not None and report.head_anatomy is not None:
        head = report.head_anatomy
        head_shapes = [e.shape for e in head.entries if e.section == "head"]
        sections.append(
            Section(
                f"Task head {report.head}",
                ["part", "shape", "parameters"],
                [
                    ["head (random weights)", _shape_sum(head_shapes), fmt_int(head.section_total("head"))],
                    ["pooler in this model", "", fmt_int(head.section_total("pooler"))],
                    ["whole model with head", "", fmt_int(head.total)],
                ],
                [f"Built with transformers {report.head.auto_class} from the same encoder weights."],
            )
        )
    sections.append(
        Section(
            "Weights memory",
            ["precision", "bytes / parameter", "weights"],
            [[dtype, f"{size:g}", fmt_bytes(total * size)] for dtype, size in WEIGHT_BYTES.items()],
            ["int8 counts one byte per parameter and leaves out quantisation scales and any layers kept in float."],
        )
    )
    f = report.flops
    counted = report.trace.flops_counted
    sections.append(
        Section(
            f"FLOPs at B={b}, L={s}",
            ["quantity", "FLOPs"],
            [
                ["linear layers, per token", fmt_flops(f.linear_per_token)],
                [f"attention, per token at L={s} (N·4·L·A)", fmt_flops(f.attention_per_token)],
                ["per token (average over the sequence)", fmt_flops(f.per_token)],
                [f"per sequence of {s} tokens", fmt_flops(f.per_sequence)],
                [f"whole batch (B={b})", fmt_flops(f.total)],
                ["counted by torch in the traced pass", fmt_flops(counted)],
            ],
            [
                "2 FLOPs per multiply-add; matrix products only "
                "(softmax, norms, GELU and adds are O(B·L·D) and left out)."
            ]
            + ([f"Estimate and torch's count agree exactly ({f.total:,} FLOPs)."] if counted == f.total else [])
            + report.notes,
        )
    )
    sections.append(
        Section(
            "FLOPs by sequence length (one sequence)",
            ["L", "per token", "per sequence", "attention share"],
            [
                [
                    str(e.seq_len),
                    fmt_flops(e.per_token),
                    fmt_flops(e.per_sequence),
                    f"{100 * e.attention_per_token / (e.linear_per_token + e.attention_per_token):.1f} %",
                ]
                for e in report.flops_by_length
            ],
        )
    )
    a = report.activations
    dims = report.dims
    sections.append(
        Section(
            f"Activation memory at B={b}, L={s} (float32)",
            ["tensor", "shape", "bytes"],
            [
                ["hidden state", fmt_shape((b, s, dims.hidden)), fmt_bytes(a.hidden_state)],
                [
                    "attention scores, one layer (B×H×L×L)",
                    fmt_shape((b, dims.heads, s, s)),
                    fmt_bytes(a.attention_scores),
                ],
                ["feed-forward intermediate", fmt_shape((b, s, dims.intermediate)), fmt_bytes(a.ffn_intermediate)],
                ["attention mask (eager)", fmt_shape((b, 1, s, s)), fmt_bytes(a.attention_mask)],
                ["inference peak, estimated", "", fmt_bytes(a.inference_peak)],
                ["inference peak, measured (traced pass)", "", fmt_bytes(report.trace.peak_added_bytes)],
                [
                    "all hidden states kept (output_hidden_states)",
                    fmt_shape((dims.layers + 1, b, s, dims.hidden)),
                    fmt_bytes(a.all_hidden_states),
                ],
                [
                    "all attention scores kept (output_attentions)",
                    fmt_shape((dims.layers, b, dims.heads, s, s)),
                    fmt_bytes(a.all_attention_scores),
                ],
            ],
            [
                "Estimated peak: the tensors one layer step holds at once (formula in docs/inspect-plan.md); "
                "weights not included.",
                f"Measured: resident memory the traced pass added at its peak ({report.trace.memory_method}); "
                "it also holds what the allocator keeps cached, so it is usually above the estimate.",
            ],
        )
    )
    sections.append(
        Section(
            f"Traced forward pass at B={b}, L={s} ({report.trace.attention_implementation} attention)",
            ["tensor", "shape", "made by"],
            [[t.name, fmt_shape(t.shape), t.source] for t in report.trace.tensors],
            [
                f"One real forward pass with hooks on every module: {report.trace.seconds * 1000:.1f} ms "
                "(after an untimed warm-up pass at the same shape)."
            ],
        )
    )
    sections.append(_auto_backend_section(report.auto_backend))
    return sections


def _auto_backend_section(summary: dict[str, Any] | None) -> Section:
    """What ``backend="auto"`` runs on this machine (from the cached calibration), or how to find out."""
    if summary is None:
        return Section(
            "Backend auto on this machine",
            ["fact", "value"],
            [["chosen", "not calibrated here yet"]],
            [
                "The first load with backend 'auto' times every installed backend (about 20 s, once per model, "
                "machine and library versions); `embedlab bench --calibrate` runs it now and prints its table."
            ],
        )
    rows = [
        ["chosen", str(summary["chosen"])],
        ["why", str(summary["reason"])],
        ["quality-proven", ", ".join(summary["proven"]) or "none"],
        ["reference", str(summary["reference"])],
        ["calibration", f"{summary['calibration_seconds']} s, key {summary['key']}"],
    ]
    notes = ["`embedlab bench --calibrate` measures again and prints the table this was decided from."]
    if summary["fallback"]:
        notes.insert(0, "No calibration could run here: auto uses a safe exact backend.")
    return Section("Backend auto on this machine", ["fact", "value"], rows, notes)
