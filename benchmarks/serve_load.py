"""`embedlab serve` under load, next to offline batch throughput of the same backend, in one run.

What it measures (the server runs in its own process, started by this script, on 127.0.0.1):

- closed-loop clients over keep-alive connections, each sending its next request when the last one
  answered: 1, 16 and 64 clients of single-text requests, 4 clients of 32-text requests, and 4 clients
  of 32 texts all at the model's token limit (the worst case for memory); texts/s and p50 / p99
  request latency;
- right before each scenario, the same texts offline in this process while the server idles:
  ``embedlab.load(backend=B).embed(texts)`` with the server's ``max_batch_tokens`` (the library's
  batch path, on the same worker layout as the server). Each scenario's ratio divides its texts/s by
  the offline figure for the very same texts;
- CPU time per request during each scenario, of the server process and of this load generator
  (``/proc`` utime + stime), so the cost of the HTTP path is seen apart from the load it carries;
- the cache: the same 32-text and single-text requests twice, first a miss then a repeat (median
  latency on the client and the server's own ``x-total-time``, miss / repeat ratios);
- the server's peak RSS (``VmHWM``) after all of it, and whether it mapped libtorch.

Each of ``--rounds`` rounds runs every scenario next to its offline runs, so noise from other processes
lands on one pairing rather than on one contender; ratios are per round, then the median. Texts are the
deterministic mixed-length corpus of ``embedlab.sample_texts`` (about 32 tokens per text with
all-MiniLM-L6-v2), different texts in every scenario and round so that server runs never hit the cache.
The load generator shares the machine's CPUs with the server (a lean asyncio HTTP/1.1 client keeps its
cost down); on a small or busy machine, numbers are noisy, ratios less so.

    flock /tmp/embedlab-heavy.lock .venv/bin/python benchmarks/serve_load.py --json out/serve_load.json
    .venv/bin/python benchmarks/serve_load.py --backend onnx --rounds 5
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
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import embedlab
from embedlab.cpu import available_cores
from embedlab.sample_texts import generate_corpus
from embedlab.server.settings import ServerSettings


@dataclass
class Scenario:
    """One load: ``clients`` closed-loop clients sending ``texts_per_request`` texts each time.

    Per round: texts/s and its ratio to the offline run of the same round; latencies pooled.
    """

    name: str
    clients: int
    texts_per_request: int
    rates: list[float] = field(default_factory=list)
    offline: list[float] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)
    client_cpu_ms: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def texts_per_second(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    @property
    def ratios(self) -> list[float]:
        """Per round: server texts/s over ``embed()`` texts/s on the same texts."""
        return [r / o for r, o in zip(self.rates, self.offline, strict=True)]

    @property
    def vs_offline(self) -> float:
        return statistics.median(self.ratios) if self.ratios else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "clients": self.clients,
            "texts_per_request": self.texts_per_request,
            "texts_per_s_median": self.texts_per_second,
            "texts_per_s_rounds": self.rates,
            "offline_texts_per_s_rounds": self.offline,
            "server_cpu_ms_per_request_rounds": self.server_cpu_ms,
            "client_cpu_ms_per_request_rounds": self.client_cpu_ms,
            "vs_offline_median": self.vs_offline,
            "vs_offline_rounds": self.ratios,
            "p50_ms": percentile(self.latencies, 50) * 1000,
            "p99_ms": percentile(self.latencies, 99) * 1000,
            "requests": len(self.latencies),
            "errors": self.errors,
        }


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/PID/stat`` utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_rate(embed: Any, texts: list[str]) -> float:
    """texts/s of ``embed(texts)``."""
    started = time.perf_counter()
    embed(texts)
    return len(texts) / (time.perf_counter() - started)


def server_info(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=10) as answer:
        info: dict[str, Any] = json.loads(answer.read())
    return info


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_scenario(port: int, scenario: Scenario, texts: list[str]) -> float:
    """Send ``texts`` in requests of ``texts_per_request`` from ``clients`` closed-loop clients; texts/s."""
    size = scenario.texts_per_request
    requests = [texts[i : i + size] for i in range(0, len(texts) - size + 1, size)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def client() -> None:
        connection = Connection(port)
        try:
            while not queue.empty():
                batch = queue.get_nowait()
                started = time.perf_counter()
                status, _, _ = await connection.post("/v1/embeddings", {"input": batch})
                scenario.latencies.append(time.perf_counter() - started)
                scenario.errors += status != 200
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(scenario.clients)))
    return len(requests) * size / (time.perf_counter() - started)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="auto", help="backend of the server and the offline run (default auto)")
    parser.add_argument("--texts", type=int, default=1024, help="texts per scenario and round (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of offline + every scenario (medians taken)")
    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=ServerSettings.model_fields["max_batch_tokens"].default,
        help="for the server and the offline run alike (default: the server's default)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--server-args", default="", help="more `embedlab serve` options, e.g. '--cache-entries 0'")
    args = parser.parse_args()

    n, rounds = args.texts, args.rounds
    single = min(n, 300)
    per_round = n + single + 3 * n + 12 * 128
    corpus = generate_corpus(rounds * per_round + 840, seed=11)
    assert len(set(corpus)) == len(corpus)
    scenarios = [
        Scenario("1 client x 1 text", 1, 1),
        Scenario("16 clients x 1 text", 16, 1),
        Scenario("64 clients x 1 text", 64, 1),
        Scenario("4 clients x 32 texts", 4, 32),
        Scenario("4 clients x 32 long texts", 4, 32),
    ]

    extra = ["--max-batch-tokens", str(args.max_batch_tokens), *shlex.split(args.server_args)]
    port = free_port()
    server = start_server(args.backend, port, extra)
    try:
        after_start = proc_status(server.pid)
        info = server_info(port)
        workers, threads = int(info["workers"]), info["threads_per_worker"]
        print(f"server: backend {info['backend']}, {workers} worker(s) x {threads} thread(s)")
        model = embedlab.load(backend=args.backend, max_batch_tokens=args.max_batch_tokens)
        model.embed(corpus[:64])  # warm up
        for round_index in range(rounds):
            texts = iter(corpus[round_index * per_round : (round_index + 1) * per_round])
            print(f"round {round_index + 1}/{rounds}", flush=True)
            for scenario in scenarios:
                if scenario.name.endswith("long texts"):  # 12 corpus texts each: over the 256-token limit
                    batch = [" ".join(next(texts) for _ in range(12)) for _ in range(128)]
                else:
                    batch = [next(texts) for _ in range(single if scenario.clients == 1 else n)]
                scenario.offline.append(timed_rate(model.embed, batch))  # the server idles meanwhile
                server_cpu, client_cpu = cpu_seconds(server.pid), cpu_seconds(os.getpid())
                rate = asyncio.run(run_scenario(port, scenario, batch))
                requests = len(batch) // scenario.texts_per_request
                scenario.server_cpu_ms.append((cpu_seconds(server.pid) - server_cpu) * 1000 / requests)
                scenario.client_cpu_ms.append((cpu_seconds(os.getpid()) - client_cpu) * 1000 / requests)
                scenario.rates.append(rate)
                print(
                    f"  {scenario.name}: {rate:.1f} texts/s, {scenario.ratios[-1]:.2f}x embed() "
                    f"({scenario.offline[-1]:.1f}); CPU per request: server {scenario.server_cpu_ms[-1]:.2f} ms, "
                    f"load generator {scenario.client_cpu_ms[-1]:.2f} ms",
                    flush=True,
                )
        tail = corpus[rounds * per_round :]
        cache_32 = asyncio.run(measure_cache(port, [tail[i * 32 : (i + 1) * 32] for i in range(20)]))
        cache_1 = asyncio.run(measure_cache(port, [[t] for t in tail[640:840]]))
        memory = proc_status(server.pid)
        torch_mapped = "libtorch" in Path(f"/proc/{server.pid}/maps").read_text()
    finally:
        server.terminate()
        server.wait(30)

    width = max(len(s.name) for s in scenarios)
    print()
    print(
        f"backend {args.backend}, max_batch_tokens {args.max_batch_tokens}, {available_cores()} cores, "
        f"{platform.processor() or platform.machine()}; server {workers} worker(s) x {threads} thread(s); "
        f"medians of {rounds} rounds; ratios to offline runs of the same texts"
    )
    print(
        f"{'scenario':<{width}}  {'texts/s':>8}  {'embed()':>8}  {'vs embed()':>10}  "
        f"{'server CPU ms/req':>17}  {'client CPU ms/req':>17}  {'p50 ms':>8}  {'p99 ms':>8}  errors"
    )
    for sc in scenarios:
        row = sc.summary()
        print(
            f"{sc.name:<{width}}  {sc.texts_per_second:8.1f}  {statistics.median(sc.offline):8.1f}  "
            f"{sc.vs_offline:9.2f}x  {statistics.median(sc.server_cpu_ms):17.2f}  "
            f"{statistics.median(sc.client_cpu_ms):17.2f}  {row['p50_ms']:8.1f}  {row['p99_ms']:8.1f}  {sc.errors}"
        )
    print("(64 single-text clients vs embed(): the issue's target is 0.8x)")
    for label, cache in (("32-text request", cache_32), ("1-text request", cache_1)):
        print(
            f"cache, {label}: miss {cache['miss_client_ms']:.1f} ms vs repeat {cache['repeat_client_ms']:.2f} ms "
            f"on the client ({cache['client_ratio']:.1f}x); server time {cache['miss_server_ms']:.2f} vs "
            f"{cache['repeat_server_ms']:.3f} ms ({cache['server_ratio']:.1f}x)"
        )
    print(
        f"server memory: peak RSS {memory['VmHWM']:.0f} MB (after start-up {after_start['VmHWM']:.0f} MB, "
        f"now {memory['VmRSS']:.0f} MB); libtorch mapped: {torch_mapped}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "backend": args.backend,
            "max_batch_tokens": args.max_batch_tokens,
            "server_args": args.server_args,
            "cores": available_cores(),
            "rounds": rounds,
            "server_workers": workers,
            "server_threads_per_worker": threads,
            "scenarios": [sc.summary() for sc in scenarios],
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
