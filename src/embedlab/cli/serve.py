"""``embedlab serve``: an OpenAI-compatible embedding server (uvicorn) for one model or several."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from embedlab.cli.help import HelpCommand
from embedlab.cli.options import ConfigOpt, DeviceOpt
from embedlab.errors import ConfigError
from embedlab.settings import load_settings


def serve(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Local directory or Hugging Face name (default: all-MiniLM-L6-v2); repeat it to serve several models",
        ),
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="onnx, torch or torch-bf16 (default: onnx, torch if onnx is unavailable)")
    ] = None,
    device: DeviceOpt = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads per inference worker (default: cores / workers)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Inference workers sharing the model (default: 2 on 2+ cores, 1 with --threads)"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1; 0.0.0.0 for all)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000)")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Require 'Authorization: Bearer KEY' on every route but /health")
    ] = None,
    served_model_name: Annotated[str | None, typer.Option(help="Model name reported to clients")] = None,
    model_alias: Annotated[
        list[str] | None, typer.Option(help="Another name clients may use in 'model' (repeatable)")
    ] = None,
    max_payload_bytes: Annotated[int | None, typer.Option(help="Request body limit in bytes (default 8 MiB)")] = None,
    max_client_batch: Annotated[int | None, typer.Option(help="Inputs per request at most (default 2048)")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Tokens per input, below the model's own limit")] = None,
    max_batch_tokens: Annotated[int | None, typer.Option(help="Padded tokens per forward batch")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="Sequences per forward batch at most")] = None,
    max_concurrent_requests: Annotated[
        int | None, typer.Option(help="Requests admitted at once; more get 429 (default 512)")
    ] = None,
    max_queue_segments: Annotated[
        int | None, typer.Option(help="Segments waiting for inference at most; more get 429 (default 16384)")
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option("--request-timeout", help="Seconds before a request fails with 503")
    ] = None,
    inference_timeout: Annotated[
        float | None,
        typer.Option("--inference-timeout", help="Seconds one batch may run before the worker counts as stuck"),
    ] = None,
    cache_entries: Annotated[int | None, typer.Option(help="Vectors in the in-memory LRU cache; 0 disables")] = None,
    cache_path: Annotated[Path | None, typer.Option(help="sqlite file for a persistent cache")] = None,
    long_input: Annotated[
        str | None, typer.Option(help="Default for texts over the limit: truncate (default), error, chunk")
    ] = None,
    dimensions: Annotated[int | None, typer.Option(help="Default output dimensions (Matryoshka)")] = None,
    prompt_name: Annotated[str | None, typer.Option(help="Default named prompt of the model")] = None,
    int8_calibration_texts: Annotated[
        Path | None,
        typer.Option(help="Texts (one per line) whose vectors set the int8/uint8 ranges (default: [-1, 1])"),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="uvicorn log level (default info)")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs throughput)")] = False,
    config: ConfigOpt = None,
    ray: Annotated[
        str | None, typer.Option("--ray", help="Serve replicas on Ray Serve: 'local' or a cluster HOST:PORT")
    ] = None,
    replicas: Annotated[int, typer.Option(help="--ray: copies of the server engine")] = 1,
    cpus_per_replica: Annotated[float, typer.Option(help="--ray: CPUs per replica")] = 1.0,
    cache: Annotated[
        str | None, typer.Option("--cache", help="--ray: redis://HOST:PORT/DB cache shared by replicas")
    ] = None,
) -> None:
    """Serve a model over HTTP: OpenAI /v1/embeddings, TEI /embed, /tokenize, /health, /metrics, a dashboard at /.

    With no options it serves the default model offline on http://127.0.0.1:8000. Every option is also an
    environment variable EMBEDLAB_<OPTION> and a key of the --config file. `--model A --model B` serves
    both (requests pick one by `model`); per-model options go in the --config file's `models` list.
    """
    try:
        import uvicorn

        from embedlab.server import ServerSettings, create_app
    except ImportError as exc:
        raise ConfigError(f"embedlab serve needs its extra: pip install 'embedlab[serve]' ({exc})") from exc

    settings = load_settings(
        ServerSettings,
        config,
        backend=backend,
        device=device,
        threads=threads,
        workers=workers,
        host=host,
        port=port,
        api_key=api_key,
        served_model_name=served_model_name,
        model_aliases=model_alias or None,
        max_payload_bytes=max_payload_bytes,
        max_client_batch=max_client_batch,
        max_tokens=max_tokens,
        max_batch_tokens=max_batch_tokens,
        max_batch_size=max_batch_size,
        max_concurrent_requests=max_concurrent_requests,
        max_queue_segments=max_queue_segments,
        request_timeout_s=request_timeout,
        inference_timeout_s=inference_timeout,
        cache_entries=cache_entries,
        cache_path=cache_path,
        long_input=long_input,
        dimensions=dimensions,
        prompt_name=prompt_name,
        int8_calibration_texts=int8_calibration_texts,
        log_level=log_level,
    )
    if model:
        settings = settings.with_models(model)
    if ray is not None:
        from embedlab.distributed.ray_serve import run_serve

        run_serve(settings, replicas, None if ray == "local" else ray, cpus_per_replica, cache)
        return
    if replicas != 1 or cache is not None:
        raise ConfigError("--replicas and --cache need --ray (one process serves one engine)")
    from embedlab.server.process import limit_malloc_arenas

    _log_to_stderr(settings.log_level)
    limit_malloc_arenas()  # before the engine's and uvicorn's threads exist
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )


def _log_to_stderr(level: str) -> None:
    """Show embedlab's own log lines (start-up, warnings) beside uvicorn's, in the same format."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger = logging.getLogger("embedlab")
    logger.addHandler(handler)
    logger.setLevel(level.upper())


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""
    app.command("serve", cls=HelpCommand)(serve)
