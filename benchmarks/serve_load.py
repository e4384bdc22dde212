"""`embedlab serve` under load, next to offline batch throughput of the same backend, in one run.

What it measures (the server runs in its own process, started by this script, on 127.0.0.1):

- offline: ``embedlab.load(backend=B).embed(texts)`` in this process, before the server starts
  (texts/s; the reference every server number is divided by);
- closed-loop clients over keep-alive connections, each sending its next request when the last one
  answered: 1, 16 and 64 clients of single-text requests, and 4 clients of 32-text requests
  (texts/s, p50 / p99 request latency, ratio to offline), then 4 clients of 32 texts all at the
  model's token limit (the worst case for memory; its ratio compares unlike texts);
- the cache: the same 32-text and single-text requests twice, first a miss then a repeat (median
  latency on the client and the server's own ``x-total-time``, miss / repeat ratios);
- the server's peak RSS (``VmHWM``) after all of it, and whether it mapped libtorch.

Texts are the deterministic mixed-length corpus of ``embedlab.bench.corpus`` (about 32 tokens per text
with all-MiniLM-L6-v2), different texts in every scenario so that throughput runs never hit the cache.
The load generator shares the machine's CPUs with the server (a lean asyncio HTTP/1.1 client keeps its
cost down); on a small or busy machine, numbers are noisy, ratios less so.

    flock /tmp/embedlab-heavy.lock .venv/bin/python benchmarks/serve_load.py --json out/serve_load.json
    .venv/bin/python benchmarks/serve_load.py --backend torch --texts 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import embedlab
from embedlab.backends.threads import available_cores
from embedlab.bench.corpus import generate_corpus


@dataclass
class Scenario:
    """One measured load: ``clients`` closed-loop clients sending ``texts_per_request`` texts each time."""

    name: str
    clients: int
    texts_per_request: int
    requests: int = 0
    texts: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (much cheaper per request than httpx)."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: Any) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        body = json.dumps(payload).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        block = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = block.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_scenario(port: int, scenario: Scenario, texts: list[str]) -> Scenario:
    """Send ``texts`` in requests of ``texts_per_request`` from ``clients`` closed-loop clients."""
    size = scenario.texts_per_request
    requests = [texts[i : i + size] for i in range(0, len(texts) - size + 1, size)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    errors = 0

    async def client() -> None:
        nonlocal errors
        connection = Connection(port)
        try:
            while not queue.empty():
                batch = queue.get_nowait()
                started = time.perf_counter()
                status, _, _ = await connection.post("/v1/embeddings", {"input": batch})
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(scenario.clients)))
    scenario.seconds = time.perf_counter() - started
    scenario.requests = len(requests)
    scenario.texts = len(requests) * size
    scenario.p50_ms = percentile(latencies, 50) * 1000
    scenario.p99_ms = percentile(latencies, 99) * 1000
    scenario.errors = errors
    return scenario


async def measure_cache(port: int, batches: list[list[str]]) -> dict[str, float]:
    """Each batch twice (a miss, then a repeat): median client latency and server x-total-time, and ratios."""
    connection = Connection(port)
    miss_client, miss_server, hit_client, hit_server = [], [], [], []
    try:
        for batch in batches:
            for client_times, server_times in ((miss_client, miss_server), (hit_client, hit_server)):
                started = time.perf_counter()
                status, headers, _ = await connection.post("/v1/embeddings", {"input": batch})
                client_times.append(time.perf_counter() - started)
                server_times.append(float(headers["x-total-time"]) / 1000)
                assert status == 200
            assert headers["x-cache-hits"] == str(len(batch)), "the repeat was not answered from the cache"
    finally:
        connection.close()
    out = {
        "miss_client_ms": statistics.median(miss_client) * 1000,
        "repeat_client_ms": statistics.median(hit_client) * 1000,
        "miss_server_ms": statistics.median(miss_server) * 1000,
        "repeat_server_ms": statistics.median(hit_server) * 1000,
    }
    out["client_ratio"] = out["miss_client_ms"] / out["repeat_client_ms"]
    out["server_ratio"] = out["miss_server_ms"] / out["repeat_server_ms"]
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_status(pid: int) -> dict[str, float]:
    """VmHWM (peak RSS) and VmRSS of a process, in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def start_server(backend: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "embedlab", "serve", "--backend", backend, "--port", str(port),
        "--max-concurrent-requests", "1024", "--log-level", "warning", *extra,
    ]  # fmt: skip
    print("server:", " ".join(command[1:]), flush=True)
    server = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return server
        except OSError:
            pass
        time.sleep(0.25)
    server.kill()
    raise SystemExit("the server did not become healthy in 180 s")


def offline_throughput(backend: str, texts: list[str], repeat: int) -> tuple[float, float]:
    """Median texts/s of ``embed(texts)`` over ``repeat`` runs, and this process's peak RSS (MB)."""
    model = embedlab.load(backend=backend)
    model.embed(texts[:64])  # warm up
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        model.embed(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates), proc_status(os.getpid())["VmHWM"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="onnx", help="backend of the server and the offline run (default onnx)")
    parser.add_argument("--texts", type=int, default=2048, help="texts per throughput scenario (default 2048)")
    parser.add_argument("--repeat", type=int, default=3, help="offline runs (median taken)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--server-args", default="", help="more `embedlab serve` options, e.g. '--max-batch-tokens 2048'"
    )
    args = parser.parse_args()

    n = args.texts
    corpus = generate_corpus(n * 7 + 64 * 40, seed=11)
    assert len(set(corpus)) == len(corpus)
    pieces = [corpus[i * n : (i + 1) * n] for i in range(6)]
    cache_texts = corpus[6 * n :]

    print(f"offline: embedlab.load(backend={args.backend!r}).embed({n} texts) x {args.repeat} ...", flush=True)
    offline, offline_rss = offline_throughput(args.backend, corpus[6 * n : 7 * n] or pieces[0], args.repeat)

    port = free_port()
    server = start_server(args.backend, port, shlex.split(args.server_args))
    try:
        after_start = proc_status(server.pid)
        scenarios = [
            Scenario("1 client x 1 text", 1, 1),
            Scenario("16 clients x 1 text", 16, 1),
            Scenario("64 clients x 1 text", 64, 1),
            Scenario("4 clients x 32 texts", 4, 32),
            Scenario("4 clients x 32 long texts", 4, 32),
        ]
        long_texts = [" ".join(pieces[5][i : i + 12]) for i in range(0, 12 * 128, 12)]  # ≥ 256 tokens each
        inputs = [pieces[0][:500], pieces[1], pieces[2], pieces[3], long_texts]
        for scenario, texts in zip(scenarios, inputs, strict=True):
            print(f"server: {scenario.name} ...", flush=True)
            asyncio.run(run_scenario(port, scenario, texts))
        cache_32 = asyncio.run(measure_cache(port, [cache_texts[i * 32 : (i + 1) * 32] for i in range(20)]))
        cache_1 = asyncio.run(measure_cache(port, [[t] for t in cache_texts[20 * 32 : 20 * 32 + 200]]))
        memory = proc_status(server.pid)
        torch_mapped = "libtorch" in Path(f"/proc/{server.pid}/maps").read_text()
    finally:
        server.terminate()
        server.wait(30)

    width = max(len(s.name) for s in scenarios)
    print()
    print(f"backend {args.backend}, {available_cores()} cores, {platform.processor() or platform.machine()}")
    print(f"{'offline embed()':<{width}}  {offline:8.1f} texts/s")
    print(f"{'scenario':<{width}}  {'texts/s':>8}  {'vs offline':>10}  {'p50 ms':>8}  {'p99 ms':>8}  errors")
    for s in scenarios:
        ratio = s.texts_per_second / offline
        print(
            f"{s.name:<{width}}  {s.texts_per_second:8.1f}  {ratio:9.2f}x  {s.p50_ms:8.1f}  {s.p99_ms:8.1f}  {s.errors}"
        )
    for label, cache in (("32-text request", cache_32), ("1-text request", cache_1)):
        print(
            f"cache, {label}: miss {cache['miss_client_ms']:.1f} ms vs repeat {cache['repeat_client_ms']:.2f} ms "
            f"on the client ({cache['client_ratio']:.1f}x); server time {cache['miss_server_ms']:.2f} vs "
            f"{cache['repeat_server_ms']:.3f} ms ({cache['server_ratio']:.1f}x)"
        )
    print(
        f"server memory: peak RSS {memory['VmHWM']:.0f} MB (after start-up {after_start['VmHWM']:.0f} MB, "
        f"now {memory['VmRSS']:.0f} MB); libtorch mapped: {torch_mapped}; offline process peak {offline_rss:.0f} MB"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "backend": args.backend,
            "server_args": args.server_args,
            "cores": available_cores(),
            "offline_texts_per_s": offline,
            "scenarios": [
                {**asdict(s), "texts_per_s": s.texts_per_second, "vs_offline": s.texts_per_second / offline}
                for s in scenarios
            ],
            "cache_32_texts": cache_32,
            "cache_1_text": cache_1,
            "server_peak_rss_mb": memory["VmHWM"],
            "server_rss_after_start_mb": after_start["VmHWM"],
            "libtorch_mapped": torch_mapped,
        }
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
