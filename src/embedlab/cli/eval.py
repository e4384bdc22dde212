"""``embedlab eval sts`` and ``embedlab eval retrieval``: quality as MTEB measures it, one table or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from embedlab.cli.help import HelpCommand, HelpGroup
from embedlab.cli.options import BackendOpt, ConfigOpt, DeviceOpt, ModelOpt, ThreadsOpt, progress_bar
from embedlab.errors import OutputError
from embedlab.settings import EngineSettings, load_settings

eval_app = typer.Typer(
    name="eval",
    cls=HelpGroup,
    help="Measure embedding quality the way MTEB does: STS correlation, BEIR retrieval, across configurations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MaxTokensOpt = Annotated[int | None, typer.Option(min=1, help="Token limit below the model's own")]
DimensionsOpt = Annotated[int | None, typer.Option(min=1, help="Keep the first N dimensions (Matryoshka)")]
LongInputOpt = Annotated[str | None, typer.Option(help="Texts over the limit: truncate (default), error, chunk")]
MaxBatchTokensOpt = Annotated[int | None, typer.Option(min=1, help="Padded tokens per forward batch")]
CompareOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--compare",
        help="A configuration to compare, e.g. 'backend=onnx,max_tokens=128' ('' = default settings); repeat the "
        "flag or separate configurations with ';'. Keys: backend, device, threads, max_tokens, dimensions, "
        "long_input, max_batch_tokens. The first one is the baseline for deltas.",
    ),
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="Score vectors stored in these precisions, comma-separated: float32, float16, int8, uint8, binary, "
        "ubinary; one embedding pass, one row each (default: float32 only, exact cosine, a single report)",
    ),
]
Int8RangesOpt = Annotated[
    str,
    typer.Option(
        "--int8-ranges",
        help="int8/uint8 ranges: unit ([-1, 1]), corpus (measured on the evaluated texts: optimistic) or a file "
        "of calibration texts (.txt one per line, .jsonl/.csv/.tsv/.parquet 'text')",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table")]
SaveOpt = Annotated[Path | None, typer.Option("--save", help="Also write the JSON result to this file")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")]


def _split_configs(items: Sequence[str]) -> list[str]:
    configs: list[str] = []
    for item in items:
        configs.extend(part.strip() for part in item.split(";"))
    return configs


def _precisions(value: str | None) -> list[str] | None:
    """``--precision`` as a checked list, or None when it was not given."""
    from embedlab.eval.quantized import check_precisions

    if value is None:
        return None
    return list(check_precisions([part.strip() for part in value.split(",")]))


def _int8_ranges(value: str) -> str | list[str]:
    """``--int8-ranges``: ``unit`` or ``corpus``, else the texts of the file it names."""
    from embedlab.errors import ConfigError
    from embedlab.eval.quantized import INT8_RANGE_NAMES
    from embedlab.io.readers import read_texts

    if value in INT8_RANGE_NAMES:
        return value
    if not Path(value).is_file():
        raise ConfigError(
            f"--int8-ranges takes {', '.join(INT8_RANGE_NAMES)} or a file of calibration texts; no file {value!r}"
        )
    return read_texts(value).texts


def _label_of(settings: EngineSettings) -> str:
    from embedlab.eval.compare import changed_settings, config_label

    return config_label(changed_settings(settings))


def _run(
    task_fn: Callable[..., Any],
    settings: EngineSettings,
    compare_items: list[str] | None,
    *,
    json_out: bool,
    save: Path | None,
    quiet: bool,
    extra_metrics: Sequence[str],
    rows: bool = False,
) -> None:
    """Run the task once (or once per compared configuration) and print a table or JSON.

    ``rows``: the task returns several reports (one per precision), printed as a comparison even without
    ``--compare``.
    """
    from embedlab.engine.loader import load
    from embedlab.eval.compare import compare
    from embedlab.eval.report import comparison_to_dict, report_table

    err = Console(stderr=True)
    with progress_bar(err, quiet, "{task.description}") as bar:
        bar_task = bar.add_task("loading", total=None)
        label = {"value": ""}

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(bar_task, description=f"{label['value']} · {stage}", completed=done, total=total)

        def run_one(embedder: Any, config_label: str) -> Any:
            label["value"] = config_label
            return task_fn(embedder, config_label=config_label, progress=on_progress)

        def announce(report: Any) -> None:
            if not quiet:
                err.print(f"{report.config}: {report.metric} = {report.score:.4f}", highlight=False)

        if compare_items:
            reports = compare(run_one, settings.model, _split_configs(compare_items), base=settings, on_result=announce)
        else:
            result = run_one(load(settings=settings), _label_of(settings))
            reports = result if isinstance(result, list) else [result]

    payload: dict[str, Any] = comparison_to_dict(reports) if compare_items or rows else reports[0].to_dict()
    text = json.dumps(payload, ensure_ascii=False)
    if save is not None:
        try:
            save.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {save}: {exc}") from exc
    if json_out:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        out = Console()
        if not out.is_terminal:  # piped: do not squeeze the table into 80 columns
            out = Console(width=160)
        out.print(report_table(reports, extra_metrics))
        for note in reports[0].details.get("notes", []):
            out.print(f"note: {note}", highlight=False)


@eval_app.command("sts", cls=HelpCommand)
def sts(
    data: Annotated[Path, typer.Option("--data", help="STS Benchmark file (sts-test.csv) or CSV/TSV with a header")],
    model: ModelOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    max_tokens: MaxTokensOpt = None,
    dimensions: DimensionsOpt = None,
    long_input: LongInputOpt = None,
    max_batch_tokens: MaxBatchTokensOpt = None,
    config: ConfigOpt = None,
    sentence1: Annotated[str, typer.Option(help="Header name of the first sentence column")] = "sentence1",
    sentence2: Annotated[str, typer.Option(help="Header name of the second sentence column")] = "sentence2",
    score_column: Annotated[str, typer.Option(help="Header name of the gold score column")] = "score",
    split: Annotated[str | None, typer.Option(help="Rows of this split only (files with a 'split' column)")] = None,
    limit: Annotated[int | None, typer.Option(min=2, help="Score only the first N pairs (a quick check)")] = None,
    precision: PrecisionOpt = None,
    int8_ranges: Int8RangesOpt = "unit",
    compare: CompareOpt = None,
    json_out: JsonOpt = False,
    save: SaveOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Spearman (and Pearson) correlation between cosine similarity and gold scores of sentence pairs.

    With --precision, both sentences' vectors are stored in each precision: the similarity is the cosine of
    the float16 / dequantised int8 values, and 1 - hamming / d for binary and ubinary.
    """
    from embedlab.eval.quantized import int8_ranges_name
    from embedlab.eval.sts import evaluate_sts, evaluate_sts_by_precision, load_sts

    precisions = _precisions(precision)
    ranges = _int8_ranges(int8_ranges)
    int8_ranges_name(ranges, precisions or ["float32"])
    pairs = load_sts(data, sentence1, sentence2, score_column, split=split)
    if limit is not None:
        pairs = pairs.head(limit)
    settings = load_settings(
        EngineSettings,
        config,
        model=model,
        backend=backend,
        device=device,
        threads=threads,
        max_tokens=max_tokens,
        dimensions=dimensions,
        long_input=long_input,
        max_batch_tokens=max_batch_tokens,
    )

    def task(embedder: Any, config_label: str, progress: Any) -> Any:
        if precisions is None:
            return evaluate_sts(embedder, pairs, config_label, int8_ranges=ranges, progress=progress)
        return evaluate_sts_by_precision(
            embedder, pairs, config_label, precisions=precisions, int8_ranges=ranges, progress=progress
        )

    _run(
        task,
        settings,
        compare,
        json_out=json_out,
        save=save,
        quiet=quiet,
        extra_metrics=("cosine_pearson",),
        rows=precisions is not None,
    )


@eval_app.command("retrieval", cls=HelpCommand)
def retrieval(
    data: Annotated[Path, typer.Option("--data", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")],
    model: ModelOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    max_tokens: MaxTokensOpt = None,
    dimensions: DimensionsOpt = None,
    long_input: LongInputOpt = None,
    max_batch_tokens: MaxBatchTokensOpt = None,
    config: ConfigOpt = None,
    split: Annotated[str, typer.Option(help="Which qrels/<split>.tsv to score")] = "test",
    query_prompt: Annotated[
        str | None, typer.Option(help="Prepended to queries (default: the model's own 'query' prompt, if any)")
    ] = None,
    doc_prompt: Annotated[
        str | None,
        typer.Option(help="Prepended to documents (default: the model's 'document'/'passage' prompt, if any)"),
    ] = None,
    ignore_identical_ids: Annotated[
        bool, typer.Option(help="Never retrieve a document whose id equals the query id (MTEB: ArguAna, Quora)")
    ] = False,
    lenient_qrels: Annotated[
        bool, typer.Option(help="Drop judged queries missing from queries.jsonl, keep missing documents")
    ] = False,
    corpus_chunk_size: Annotated[int, typer.Option(min=1, help="Documents embedded and searched at a time")] = 10_000,
    precision: PrecisionOpt = None,
    rescore: Annotated[
        int,
        typer.Option(
            "--rescore",
            help="Re-rank the top K first-pass candidates of int8, uint8, binary and ubinary with the float32 query "
            "(K ≥ 100, the largest cutoff; 0: no rescoring)",
        ),
    ] = 0,
    int8_ranges: Int8RangesOpt = "unit",
    compare: CompareOpt = None,
    json_out: JsonOpt = False,
    save: SaveOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Exact cosine search over a BEIR corpus: nDCG@10 (main), MAP@10, MRR@10, Recall@10/100.

    With --precision, the corpus is stored in each precision and searched as a vector store would: cosine of
    float16 values, dot product of dequantised int8/uint8 codes, Hamming distance of packed bits (queries
    quantised alike); --rescore K re-ranks the top K by the float32 query, as sentence-transformers does.
    """
    from embedlab.eval.beir import load_beir
    from embedlab.eval.metrics import DEFAULT_K_VALUES
    from embedlab.eval.quantized import check_rescore, int8_ranges_name
    from embedlab.eval.retrieval import evaluate_retrieval, evaluate_retrieval_by_precision

    precisions = _precisions(precision)
    ranges = _int8_ranges(int8_ranges)
    check_rescore(rescore, precisions or ["float32"], max(DEFAULT_K_VALUES))
    int8_ranges_name(ranges, precisions or ["float32"])
    dataset = load_beir(data, split, strict=not lenient_qrels)
    settings = load_settings(
        EngineSettings,
        config,
        model=model,
        backend=backend,
        device=device,
        threads=threads,
        max_tokens=max_tokens,
        dimensions=dimensions,
        long_input=long_input,
        max_batch_tokens=max_batch_tokens,
    )

    def task(embedder: Any, config_label: str, progress: Any) -> Any:
        common: dict[str, Any] = {
            "rescore": rescore,
            "int8_ranges": ranges,
            "ignore_identical_ids": ignore_identical_ids,
            "corpus_chunk_size": corpus_chunk_size,
            "progress": progress,
        }
        if precisions is None:
            return evaluate_retrieval(embedder, dataset, query_prompt, doc_prompt, config_label, **common)
        return evaluate_retrieval_by_precision(
            embedder, dataset, query_prompt, doc_prompt, config_label, precisions=precisions, **common
        )

    _run(
        task,
        settings,
        compare,
        json_out=json_out,
        save=save,
        quiet=quiet,
        extra_metrics=("map_at_10", "mrr_at_10", "recall_at_10", "recall_at_100"),
        rows=precisions is not None,
    )


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command group (``sts``, ``retrieval``) to ``app``."""
    app.add_typer(eval_app, name="eval")
