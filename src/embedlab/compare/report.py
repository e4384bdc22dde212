"""``compare`` results as tables (the terminal, HTML) and as the one JSON object a script reads."""

from __future__ import annotations

from typing import Any

from embedlab.compare.runner import CompareReport, ModelResult
from embedlab.inspect.report import Section, fmt_int

_MB = 1_000_000
#: precisions shown as columns of the model table (all are in the options table and the JSON)
HEADLINE_PRECISIONS: tuple[str, ...] = ("float32", "int8", "binary")
#: short names of the precisions in column headers
SHORT_PRECISIONS: dict[str, str] = {"float32": "f32", "int8": "int8", "binary": "bin"}
#: short column names of the eval metrics
METRIC_NAMES: dict[str, str] = {"cosine_spearman": "STS Spearman", "ndcg_at_10": "nDCG@10"}


def _label(result: ModelResult, several_backends: bool) -> str:
    short = result.facts.name.rstrip("/").rsplit("/", 1)[-1]
    return f"{short} ({result.measured['backend']})" if several_backends else short


def _millions(value: int) -> str:
    return f"{value / 1e6:.1f}M"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def model_json(result: ModelResult) -> dict[str, Any]:
    """One model's entry of ``--json`` (the fields the issue fixed, then the rest)."""
    facts, measured = result.facts, result.measured
    full = [o for o in result.options if o["dimensions"] == facts.dim]
    return {
        "name": facts.name,
        "backend": measured["backend"],
        "params": facts.params,
        "embedding_params": facts.embedding_params,
        "encoder_params": facts.encoder_params,
        "layers": facts.layers,
        "hidden": facts.hidden,
        "dim": facts.dim,
        "max_tokens": facts.max_tokens,
        "disk_mb": round(facts.disk_bytes / _MB, 1),
        "peak_rss_mb": None if measured["peak_rss_bytes"] is None else round(measured["peak_rss_bytes"] / _MB, 1),
        "tokens_per_s": round(float(measured["tokens_per_s"]), 1),
        "query_p50_ms": round(float(measured["query_p50_ms"]), 3),
        "truncated_share": measured["truncated_share"],
        "tokens_lost": measured["tokens_lost"],
        "score": result.score(),
        "bytes_per_vector": {o["precision"]: o["bytes_per_vector"] for o in full},
        "pareto": result.pareto,
        "model_type": facts.model_type,
        "vocab_size": facts.vocab_size,
        "matryoshka_dims": list(facts.matryoshka_dims),
        "query_p95_ms": round(float(measured["query_p95_ms"]), 3),
        "tokens_per_s_rounds": [round(r, 1) for r in measured["rounds_tokens_per_s"]],
        "load_s": round(float(measured["load_s"]), 2),
        "truncated_texts": measured["truncated_texts"],
        "backend_auto": measured["backend_auto"],
        "options": result.options,
    }


def report_json(report: CompareReport) -> dict[str, Any]:
    """The whole comparison as the one object ``--json`` prints."""
    return {
        "models": [model_json(r) for r in report.results],
        "failures": [{"name": n, "backend": b, "error": e} for n, b, e in report.failures],
        "metric": report.metric,
        "data": report.data,
        "data_limit": report.data_limit,
        "texts": report.texts,
        "texts_count": report.texts_count,
        "precisions": report.precisions,
        "machine": report.machine,
        "notes": report.notes,
    }


def compare_sections(report: CompareReport) -> list[Section]:
    """Three tables: what each model is, what it did on your texts, and every (dimension × precision) option."""
    several = len({r.backend_asked for r in report.results}) > 1
    metric = METRIC_NAMES.get(report.metric or "", report.metric or "score")
    shape = Section(
        title="Models: what they are",
        headers=[
            "model",
            "params",
            "V×D table",
            "encoder",
            "layers × hidden",
            "dim",
            "max tokens",
            "disk MB",
            "bytes/vector " + " · ".join(SHORT_PRECISIONS[p] for p in HEADLINE_PRECISIONS if p in report.precisions),
        ],
    )
    measured = Section(
        title="Measured on this machine, on your texts",
        headers=[
            "model",
            "backend",
            "peak RSS MB",
            "tokens/s",
            "query p50 ms",
            "truncated",
            "tokens lost",
            metric,
            "Pareto",
        ],
    )
    for result in report.results:
        row = model_json(result)
        label = _label(result, several)
        shape.rows.append(
            [
                label,
                _millions(row["params"]),
                _millions(row["embedding_params"]),
                _millions(row["encoder_params"]),
                f"{row['layers']} × {row['hidden']}",
                str(row["dim"]),
                str(row["max_tokens"]),
                f"{row['disk_mb']:.0f}",
                " · ".join(fmt_int(row["bytes_per_vector"][p]) for p in HEADLINE_PRECISIONS if p in report.precisions),
            ]
        )
        measured.rows.append(
            [
                label,
                str(row["backend"]),
                "-" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:.0f}",
                fmt_int(row["tokens_per_s"]),
                f"{row['query_p50_ms']:.1f}",
                f"{100 * row['truncated_share']:.1f}%",
                fmt_int(row["tokens_lost"]),
                _score(row["score"]),
                "✓" if result.pareto else "",
            ]
        )
    shape.notes.append(
        "params = all of the model's parameters; V×D table = its word embeddings; encoder = its layers; "
        "bytes/vector: one full-size vector in float32 · int8 · binary (every precision and size: the options table)"
    )
    measured.notes.append(
        f"texts: {report.texts}, {report.texts_count:,} of them. truncated: share over the model's max tokens; "
        "tokens/s: real tokens (no padding) per second, median of the timed rounds; query p50: one text per call; "
        "peak RSS: the measuring process's high-water mark (load, embedding, eval); each model in its own process"
    )
    measured.notes.extend(report.notes)
    for name, backend, error in report.failures:
        measured.notes.append(f"not measured: {name}{f' ({backend})' if backend else ''}: {error}")

    options = Section(
        title="Options: output dimension × precision (✓ = on the Pareto front of score, tokens/s, bytes per vector)",
        headers=["model", "dim", "precision", "bytes/vector", metric, "Δ vs float32", "Pareto"],
    )
    for result in report.results:
        for option in result.options:
            base = result.score(option["dimensions"], "float32")
            delta = None if option["score"] is None or base is None else option["score"] - base
            options.rows.append(
                [
                    _label(result, several),
                    str(option["dimensions"]),
                    option["precision"],
                    fmt_int(option["bytes_per_vector"]),
                    _score(option["score"]),
                    "-" if delta is None or option["precision"] == "float32" else f"{delta:+.4f}",
                    "✓" if option["pareto"] else "",
                ]
            )
    machine = report.machine
    options.notes.append(
        f"measured on {machine['cpu']} ({machine['cores_available']} cores; {', '.join(machine['cpu_flags'])})"
    )
    return [shape, measured, options]
