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

With ``--second-model NAME`` it starts two servers side by side: one serving the first model alone, and
one serving it with NAME beside it (a settings file with a ``models`` list; the second model stays idle:
no request names it). In each round every scenario runs against both servers on the very same texts, in
alternating order (round 1: one model first; round 2: two models first ...), right after one offline run;
it prints each server's figures and, per scenario, the per-round ratio of the two-model server's texts/s
to the one-model server's (median): what serving a second model costs the first. ``--scenario`` picks
scenarios by name (e.g. ``--scenario "64 clients"``). Each server's ``/info`` memory shares are printed.

Each of ``--rounds`` rounds runs every scenario next to its offline runs, so noise from other processes
lands on one pairing rather than on one contender; ratios are per round, then the median. Texts are the
deterministic mixed-length corpus of ``embedlab.sample_texts`` (about 32 tokens per text with
all-MiniLM-L6-v2), different texts in every scenario and round so that server runs never hit the cache.
The load generator shares the machine's CPUs with the server (a lean asyncio HTTP/1.1 client keeps its
cost down); on a small or busy machine, numbers are noisy, ratios less so.

    flock /tmp/embedlab-heavy.lock .venv/bin/python benchmarks/serve_load.py --json out/serve_load.json
    .venv/bin/python benchmarks/serve_load.py --backend onnx --rounds 5
    .venv/bin/python benchmarks/serve_load.py --backend onnx --second-model sentence-transformers/all-mpnet-base-v2 \
        --scenario "64 clients x 1 text" --rounds 5
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
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import embedlab
from embedlab import DEFAULT_MODEL
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


async def run_scenario(port: int, model: str, scenario: Scenario, texts: list[str]) -> float:
    """Send ``texts`` to ``model`` in requests of ``texts_per_request`` from ``clients`` closed-loop clients.

    Returns texts/s."""
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
                status, _, _ = await connection.post("/v1/embeddings", {"input": batch, "model": model})
                scenario.latencies.append(time.perf_counter() - started)
                scenario.errors += status != 200
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(scenario.clients)))
    return len(requests) * size / (time.perf_counter() - started)


async def measure_cache(port: int, model: str, batches: list[list[str]]) -> dict[str, float]:
    """Each batch twice (a miss, then a repeat): median client latency and server x-total-time, and ratios."""
    connection = Connection(port)
    miss_client: list[float] = []
    miss_server: list[float] = []
    hit_client: list[float] = []
    hit_server: list[float] = []
    try:
        for batch in batches:
            for client_times, server_times in ((miss_client, miss_server), (hit_client, hit_server)):
                started = time.perf_counter()
                status, headers, _ = await connection.post("/v1/embeddings", {"input": batch, "model": model})
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
    deadline = time.monotonic() + 600  # a second model on a new machine may export its graph first
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
    raise SystemExit("the server did not become healthy in 600 s")


SCENARIOS = (
    ("1 client x 1 text", 1, 1),
    ("16 clients x 1 text", 16, 1),
    ("64 clients x 1 text", 64, 1),
    ("4 clients x 32 texts", 4, 32),
    ("4 clients x 32 long texts", 4, 32),
)


@dataclass
class Target:
    """One server under load: its process, port, the model name requests send, and its scenarios' figures."""

    label: str
    server: subprocess.Popen[bytes]
    port: int
    model: str
    scenarios: list[Scenario]
    info: dict[str, Any] = field(default_factory=dict)
    after_start: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    cache_32: dict[str, float] = field(default_factory=dict)
    cache_1: dict[str, float] = field(default_factory=dict)
    torch_mapped: bool = False

    @property
    def measured(self) -> dict[str, Any]:
        """The ``/info`` entry of the model under load."""
        entry: dict[str, Any] = self.info["models"][0]
        return entry


def second_model_config(first: str, second: str, directory: Path) -> Path:
    """A settings file serving ``first`` and, beside it, ``second`` under the served name ``second``."""
    path = directory / "two-models.json"
    models = [{"model": first}, {"model": second, "served_model_name": "second"}]
    path.write_text(json.dumps({"models": models}))
    return path


def print_target(target: Target, rounds: int, backend: str, max_batch_tokens: int) -> None:
    info = target.measured
    workers, threads = info["workers"], info["threads_per_worker"]
    width = max(len(s.name) for s in target.scenarios)
    print()
    print(
        f"[{target.label}] backend {info['backend']} ({backend}), max_batch_tokens {max_batch_tokens}, "
        f"{available_cores()} cores, {platform.processor() or platform.machine()}; server {workers} worker(s) x "
        f"{threads} thread(s); medians of {rounds} rounds; ratios to offline runs of the same texts"
    )
    print(
        f"{'scenario':<{width}}  {'texts/s':>8}  {'embed()':>8}  {'vs embed()':>10}  "
        f"{'server CPU ms/req':>17}  {'client CPU ms/req':>17}  {'p50 ms':>8}  {'p99 ms':>8}  errors"
    )
    for sc in target.scenarios:
        row = sc.summary()
        print(
            f"{sc.name:<{width}}  {sc.texts_per_second:8.1f}  {statistics.median(sc.offline):8.1f}  "
            f"{sc.vs_offline:9.2f}x  {statistics.median(sc.server_cpu_ms):17.2f}  "
            f"{statistics.median(sc.client_cpu_ms):17.2f}  {row['p50_ms']:8.1f}  {row['p99_ms']:8.1f}  {sc.errors}"
        )
    for label, cache in (("32-text request", target.cache_32), ("1-text request", target.cache_1)):
        print(
            f"cache, {label}: miss {cache['miss_client_ms']:.1f} ms vs repeat {cache['repeat_client_ms']:.2f} ms "
            f"on the client ({cache['client_ratio']:.1f}x); server time {cache['miss_server_ms']:.2f} vs "
            f"{cache['repeat_server_ms']:.3f} ms ({cache['server_ratio']:.1f}x)"
        )
    shares = ", ".join(
        f"{m['model']} {m['memory']['rss_share_bytes'] / 2**20:.0f} MB"
        for m in target.info["models"]
        if m["memory"]["rss_share_bytes"] is not None
    )
    print(
        f"server memory: peak RSS {target.memory['VmHWM']:.0f} MB (after start-up {target.after_start['VmHWM']:.0f} "
        f"MB, now {target.memory['VmRSS']:.0f} MB); RSS share by model (/info): {shares}; "
        f"libtorch mapped: {target.torch_mapped}"
    )


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
    parser.add_argument(
        "--second-model",
        help="also start a server with this model served beside the first (idle) and compare the first's figures",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        help="run only the scenarios whose name contains this (repeatable; default: all)",
    )
    args = parser.parse_args()

    n, rounds = args.texts, args.rounds
    single = min(n, 300)
    per_round = n + single + 3 * n + 12 * 128
    corpus = generate_corpus(rounds * per_round + 840, seed=11)
    assert len(set(corpus)) == len(corpus)
    chosen = [spec for spec in SCENARIOS if not args.scenario or any(part in spec[0] for part in args.scenario)]
    if not chosen:
        raise SystemExit(f"no scenario matches {args.scenario}; the scenarios: {[spec[0] for spec in SCENARIOS]}")

    extra = ["--max-batch-tokens", str(args.max_batch_tokens), *shlex.split(args.server_args)]
    targets: list[Target] = []
    workdir = Path(tempfile.mkdtemp(prefix="serve-load-"))
    try:
        plans = [("one model", extra)]
        if args.second_model:
            config = second_model_config(DEFAULT_MODEL, args.second_model, workdir)
            plans.append((f"two models (+ {args.second_model}, idle)", [*extra, "--config", str(config)]))
        for label, server_args in plans:
            port = free_port()
            server = start_server(args.backend, port, server_args)
            scenarios = [Scenario(*spec) for spec in chosen]
            target = Target(label, server, port, DEFAULT_MODEL, scenarios)
            targets.append(target)
            target.after_start = proc_status(server.pid)
            target.info = server_info(port)
            info = target.measured
            print(f"[{label}] backend {info['backend']}, {info['workers']} worker(s) x {info['threads_per_worker']}")
        model = embedlab.load(backend=args.backend, max_batch_tokens=args.max_batch_tokens)
        model.embed(corpus[:64])  # warm up
        for round_index in range(rounds):
            texts = iter(corpus[round_index * per_round : (round_index + 1) * per_round])
            print(f"round {round_index + 1}/{rounds}", flush=True)
            order = targets if round_index % 2 == 0 else targets[::-1]
            for name, clients, _ in SCENARIOS:  # every scenario draws its texts, run or not: the same texts per run
                if name.endswith("long texts"):  # 12 corpus texts each: over the 256-token limit
                    batch = [" ".join(next(texts) for _ in range(12)) for _ in range(128)]
                else:
                    batch = [next(texts) for _ in range(single if clients == 1 else n)]
                picked = [i for i, spec in enumerate(chosen) if spec[0] == name]
                if not picked:
                    continue
                offline = timed_rate(model.embed, batch)  # the servers idle meanwhile
                for target in order:  # the same texts for every server: each has its own cache
                    scenario = target.scenarios[picked[0]]
                    scenario.offline.append(offline)
                    pid = target.server.pid
                    server_cpu, client_cpu = cpu_seconds(pid), cpu_seconds(os.getpid())
                    rate = asyncio.run(run_scenario(target.port, target.model, scenario, batch))
                    requests = len(batch) // scenario.texts_per_request
                    scenario.server_cpu_ms.append((cpu_seconds(pid) - server_cpu) * 1000 / requests)
                    scenario.client_cpu_ms.append((cpu_seconds(os.getpid()) - client_cpu) * 1000 / requests)
                    scenario.rates.append(rate)
                    print(
                        f"  [{target.label}] {scenario.name}: {rate:.1f} texts/s, {scenario.ratios[-1]:.2f}x embed() "
                        f"({offline:.1f}); CPU per request: server {scenario.server_cpu_ms[-1]:.2f} ms, "
                        f"load generator {scenario.client_cpu_ms[-1]:.2f} ms",
                        flush=True,
                    )
        tail = corpus[rounds * per_round :]
        for target in targets:
            batches_32 = [tail[i * 32 : (i + 1) * 32] for i in range(20)]
            target.cache_32 = asyncio.run(measure_cache(target.port, target.model, batches_32))
            target.cache_1 = asyncio.run(measure_cache(target.port, target.model, [[t] for t in tail[640:840]]))
            target.memory = proc_status(target.server.pid)
            target.torch_mapped = "libtorch" in Path(f"/proc/{target.server.pid}/maps").read_text()
            target.info = server_info(target.port)
    finally:
        for target in targets:
            target.server.terminate()
            target.server.wait(30)

    for target in targets:
        print_target(target, rounds, args.backend, args.max_batch_tokens)
    print("(64 single-text clients vs embed(): the issue's target is 0.8x)")
    comparison: list[dict[str, Any]] = []
    if len(targets) == 2:
        one, two = targets
        width = max(len(s.name) for s in one.scenarios)
        print()
        print(f"a second model served beside the first ({args.second_model}, idle): the first's figures")
        print(
            f"{'scenario':<{width}}  {'one model':>10}  {'two models':>10}  {'two / one':>9}  per round  "
            f"{'p50 ms (one / two)':>18}  {'p99 ms (one / two)':>18}"
        )
        for a, b in zip(one.scenarios, two.scenarios, strict=True):
            ratios = [y / x for x, y in zip(a.rates, b.rates, strict=True)]
            row_a, row_b = a.summary(), b.summary()
            print(
                f"{a.name:<{width}}  {a.texts_per_second:10.1f}  {b.texts_per_second:10.1f}  "
                f"{statistics.median(ratios):8.2f}x  {' '.join(f'{r:.2f}' for r in ratios)}  "
                f"{row_a['p50_ms']:8.1f} / {row_b['p50_ms']:<8.1f}  {row_a['p99_ms']:8.1f} / {row_b['p99_ms']:<8.1f}"
            )
            comparison.append({"name": a.name, "two_over_one_median": statistics.median(ratios), "rounds": ratios})
        print(
            f"peak RSS: one model {one.memory['VmHWM']:.0f} MB, two models {two.memory['VmHWM']:.0f} MB "
            f"(after start-up {one.after_start['VmHWM']:.0f} / {two.after_start['VmHWM']:.0f} MB)"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        first = targets[0]
        result = {
            "backend": args.backend,
            "max_batch_tokens": args.max_batch_tokens,
            "server_args": args.server_args,
            "cores": available_cores(),
            "rounds": rounds,
            "server_workers": first.measured["workers"],
            "server_threads_per_worker": first.measured["threads_per_worker"],
            "scenarios": [sc.summary() for sc in first.scenarios],
            "cache_32_texts": first.cache_32,
            "cache_1_text": first.cache_1,
            "server_peak_rss_mb": first.memory["VmHWM"],
            "server_rss_after_start_mb": first.after_start["VmHWM"],
            "libtorch_mapped": first.torch_mapped,
        }
        if len(targets) == 2:
            two = targets[1]
            result["second_model"] = {
                "model": args.second_model,
                "scenarios": [sc.summary() for sc in two.scenarios],
                "two_over_one": comparison,
                "server_peak_rss_mb": two.memory["VmHWM"],
                "server_rss_after_start_mb": two.after_start["VmHWM"],
                "rss_share_by_model": {m["model"]: m["memory"] for m in two.info["models"]},
            }
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
