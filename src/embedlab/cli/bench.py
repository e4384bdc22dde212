"""``embedlab bench``: measure how batch size, length, backend, threads and model shape move speed.

``embedlab bench compare A.json B.json`` prints the ratios per point of two saved results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from embedlab.cli.calibration_view import calibration_lines, render_calibration
from embedlab.cli.help import HelpCommand, HelpGroup
from embedlab.cli.options import DeviceOpt, ModelOpt, progress_bar

bench_app = typer.Typer(
    cls=HelpGroup,
    help="Measure throughput, latency, memory and time shares per batch size, length, backend and threads.",
    no_args_is_help=False,
)


def _wide_console() -> Console:
    """A console for tables: the terminal's width, or 220 columns when writing to a file or pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=220)


def _render_points(result: dict[str, Any]) -> Table:
    table = Table(title=f"embedlab bench: {result['model']['name']}", show_lines=False)
    for column in (
        "model",
        "backend",
        "thr",
        "batch",
        "seq/data",
        "texts/s (min-max)",
        "real tok/s",
        "pad tok/s",
        "pad/real",
        "p50/p95/p99 ms",
        "RSS MB (+run)",
        "tok/model/pool/other %",
        "GFLOP/s (peak %)",
    ):
        table.add_column(column, justify="left" if column in ("model", "backend", "seq/data") else "right")
    name = result["model"]["name"]
    for p in result["points"]:
        c = p["config"]
        t = p["texts_per_s"]
        lat = p["latency_ms"]
        share = p["time_share"]
        peak = p["share_of_matmul_peak"]
        gflops = f"{p['achieved_gflops']:.1f}" if p["achieved_gflops"] is not None else "-"
        if peak is not None:
            gflops += f" ({100 * peak:.0f}%)"
        table.add_row(
            "" if c["model"] == name else c["model"],
            c["backend"],
            str(c["threads"]),
            str(c["batch"] or "auto"),
            str(c["seq"]) if c["seq"] is not None else Path(c["data"] or "").name,
            f"{t['median']:.1f} ({t['min']:.1f}-{t['max']:.1f})",
            f"{p['real_tokens_per_s']['median']:.0f}",
            f"{p['padded_tokens_per_s']['median']:.0f}",
            f"{p['padded_over_real']:.2f}",
            f"{lat['p50']:.2f}/{lat['p95']:.2f}/{lat['p99']:.2f}",
            f"{p['peak_rss_mb']:.0f} (+{p.get('rss_growth_mb', 0.0):.0f})",
            "/".join(f"{100 * share[k]:.0f}" for k in ("tokenize", "model", "pool", "other")),
            gflops,
        )
    return table


def _summary_lines(result: dict[str, Any]) -> list[str]:
    machine = result["machine"]
    peaks = ", ".join(f"{t} thr {v:.0f}" for t, v in machine["matmul_peak_gflops"].items())
    flops = result["model"]["flops"]
    lines = [
        f"{machine['cpu']}, {machine['cores_available']} cores available; fp32 matmul peak GFLOP/s: {peaks}",
        f"{result['model']['name']}: {flops['linear_per_token'] / 1e6:.1f} MFLOP/token in linear layers "
        f"(source: {flops['source']}); limit {result['model']['max_tokens']} tokens",
        f"{result['plan']['warmup']} warm-up run(s) excluded, {result['plan']['repeat']} timed runs per point "
        "(median, min-max); latency is per batch",
    ]
    cache = result["cache"]
    if cache["status"] == "measured":
        lines.append(
            f"cache effect: {cache['texts']} texts twice through the engine cache: {cache['first_s']:.3f} s then "
            f"{cache['second_s']:.3f} s ({cache['hits']} hits) = {cache['ratio']:.1f}x faster"
        )
    lines.extend(result["notes"])
    return lines


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    model: ModelOpt = None,
    batch: Annotated[str, typer.Option(help="Batch sizes (texts per forward pass), comma-separated")] = "1,8,32,128",
    seq: Annotated[
        str | None, typer.Option(help="Tokens per text, comma-separated (default 16,64,128,256; none with --data)")
    ] = None,
    backend: Annotated[str, typer.Option(help="Backends, comma-separated, e.g. torch,onnx")] = "torch",
    threads: Annotated[str | None, typer.Option(help="Thread counts, comma-separated (default: cores)")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Real texts (.txt/.jsonl/.csv/.tsv/.parquet): their length mix")
    ] = None,
    text_field: Annotated[str | None, typer.Option(help="Field holding the text in --data")] = None,
    synthetic: Annotated[
        str | None, typer.Option(help="Random-weight model shapes, e.g. 'hidden=128,384,768 layers=6'")
    ] = None,
    repeat: Annotated[int | None, typer.Option(min=1, help="Timed runs per point (default 3)")] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="Untimed runs per point first (default 1)")] = None,
    tokens_per_run: Annotated[
        int | None, typer.Option(min=1, help="Tokens each generated-text point embeds per run (default 8192)")
    ] = None,
    max_texts: Annotated[int | None, typer.Option(min=1, help="Texts read from --data at most (default 1000)")] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Measure the cache effect")] = True,
    device: DeviceOpt = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report with plots here")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Save the JSON result here")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON result instead of the table")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    calibrate: Annotated[
        bool, typer.Option("--calibrate", help="Re-run the calibration backend 'auto' decides from; print its table")
    ] = False,
) -> None:
    """Benchmark a model: every batch size × length × backend × threads point, medians over repeats."""
    if ctx.invoked_subcommand is not None:
        return
    if calibrate:
        _calibrate(model, device or "cpu", threads, json_out)
        return
    from pydantic import ValidationError

    from embedlab.bench.sweeps import BenchPlan, BenchSettings, parse_int_list, parse_name_list, run_bench
    from embedlab.bench.synthetic import parse_synthetic
    from embedlab.errors import ConfigError

    overrides = {
        "repeat": repeat,
        "warmup": warmup,
        "tokens_per_run": tokens_per_run,
        "max_texts": max_texts,
    }
    try:
        settings = BenchSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(f"invalid bench settings: {exc}") from exc
    plan = BenchPlan(
        model=model,
        batches=parse_int_list(batch, "--batch"),
        seqs=parse_int_list(seq, "--seq") if seq is not None else None,
        backends=parse_name_list(backend),
        threads=parse_int_list(threads, "--threads") if threads is not None else None,
        data=data,
        text_field=text_field,
        synthetic=tuple(parse_synthetic(synthetic)) if synthetic else (),
        cache=cache,
        device=device or "cpu",
        settings=settings,
    )
    console = Console(stderr=True)
    with progress_bar(console, quiet, "[progress.description]{task.description}") as bar:
        task = bar.add_task("bench", total=None)

        def on_progress(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=what[:60])

        result = run_bench(plan, progress=on_progress)
    if output is not None:
        from embedlab.errors import OutputError

        try:
            output.write_text(json.dumps(result, indent=2), encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from exc
    if report is not None:
        from embedlab.bench.plots import write_report

        write_report(result, report)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    out = _wide_console()
    out.print(_render_points(result))
    for line in _summary_lines(result):
        out.print(line, highlight=False, soft_wrap=True)
    for path, what in ((output, "JSON"), (report, "report")):
        if path is not None:
            console.print(f"{what} written to {path}", highlight=False)


def _calibrate(model: str | None, device: str, threads: str | None, json_out: bool) -> None:
    """``bench --calibrate``: measure every candidate backend again, cache and print the decision."""
    from embedlab.bench.sweeps import parse_int_list
    from embedlab.engine.calibration import auto_choice
    from embedlab.engine.loader import load_spec
    from embedlab.errors import ConfigError

    counts = parse_int_list(threads, "--threads") if threads is not None else [None]
    if len(counts) != 1:
        raise ConfigError("--calibrate takes one --threads value (the layout 'auto' will run with)")
    spec = load_spec(model)
    Console(stderr=True).print(f"calibrating {spec.name} on this machine (about 20 s) ...", highlight=False)
    calibration = auto_choice(spec, device, counts[0], rerun=True)
    if json_out:
        typer.echo(json.dumps(calibration.to_dict(), indent=2))
        return
    out = _wide_console()
    out.print(render_calibration(calibration))
    for line in calibration_lines(calibration):
        out.print(line, highlight=False, soft_wrap=True)


@bench_app.command("compare", cls=HelpCommand)
def compare(
    a: Annotated[Path, typer.Argument(help="Result A (the baseline), from embedlab bench --output")],
    b: Annotated[Path, typer.Argument(help="Result B, compared against A")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON")] = False,
) -> None:
    """Ratios per point of two bench results: B/A throughput and A/B latency (above 1: B is faster)."""
    from embedlab.bench.compare import compare_results, load_result

    ra, rb = load_result(a), load_result(b)
    comparison = compare_results(ra, rb)
    if json_out:
        typer.echo(json.dumps(comparison.to_dict(), indent=2))
        return
    out = _wide_console()
    table = Table(title=f"B = {b.name} vs A = {a.name} (above 1: B is faster)")
    for column in ("point", "A tok/s", "B tok/s", "throughput B/A", "A p50 ms", "B p50 ms", "latency A/B"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for p in comparison.points:
        table.add_row(
            p.key,
            f"{p.a_tokens_per_s:.0f}",
            f"{p.b_tokens_per_s:.0f}",
            f"{p.throughput_ratio:.2f}x",
            f"{p.a_p50_ms:.2f}",
            f"{p.b_p50_ms:.2f}",
            f"{p.latency_ratio:.2f}x",
        )
    out.print(table)
    out.print(f"A: {ra['machine']['cpu']}, embedlab {ra['machine']['embedlab']}, {ra['created']}", highlight=False)
    out.print(f"B: {rb['machine']['cpu']}, embedlab {rb['machine']['embedlab']}, {rb['created']}", highlight=False)
    gm = comparison.geometric_mean_throughput
    if gm is not None:
        out.print(f"{len(comparison.points)} points matched; geometric mean throughput ratio B/A: {gm:.2f}x")
    else:
        out.print("no point appears in both results (different models, batches, lengths or threads?)")
    for label, keys in (("only in A", comparison.only_a), ("only in B", comparison.only_b)):
        if keys:
            out.print(f"{label}: {', '.join(keys)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command (and ``bench compare``) to ``app``."""
    app.add_typer(bench_app, name="bench")
