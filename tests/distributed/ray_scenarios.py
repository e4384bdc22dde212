"""Run inside a loopback-only network namespace by test_ray.py: one Ray session, every distributed scenario.

Usage: python ray_scenarios.py MODEL_DIR OTHER_MODEL_DIR WORK_DIR REPORT_JSON. Writes one JSON object to
REPORT_JSON: each scenario's observations (the pytest side asserts on them), and every listening TCP socket.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

import embedlab
from embedlab.distributed import RayJobSettings, run_ray_embed
from embedlab.distributed.cluster import ensure_ray
from embedlab.distributed.shards import read_parts
from embedlab.settings import EngineSettings

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "query", "passage", *"abcdefghij"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def texts(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 30))) for _ in range(n)]


def write_jsonl(path: Path, ids: list[str], items: list[str]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i, t in zip(ids, items, strict=True):
            handle.write(json.dumps({"id": i, "text": t}) + "\n")


def listeners() -> list[str]:
    """host:port of every socket in LISTEN state in this network namespace (IPv4 and IPv6)."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":
                continue
            hexaddr, hexport = fields[1].split(":")
            if len(hexaddr) == 8:
                addr = socket.inet_ntop(socket.AF_INET, bytes.fromhex(hexaddr)[::-1])
            else:
                raw = bytes.fromhex(hexaddr)
                addr = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
            found.append(f"{addr}:{int(hexport, 16)}")
    return sorted(found)


def error_of(call: Any) -> dict[str, str]:
    try:
        call()
    except embedlab.EmbedlabError as exc:
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": "none", "message": ""}


def tree_state(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def main(model_dir: str, other_model_dir: str, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rng = random.Random(0)
    settings = EngineSettings(model=model_dir, backend="torch")
    local = embedlab.load(settings=settings)

    # 1. a directory of shards (3 jsonl with ids, 1 txt with row ids) on 2 workers, compared with the local path
    corpus = work / "corpus"
    corpus.mkdir()
    all_ids: list[str] = []
    all_texts: list[str] = []
    for s in range(3):
        items = texts(rng, 800)
        ids = [f"doc-{s}-{i}" for i in range(len(items))]
        write_jsonl(corpus / f"shard-{s}.jsonl", ids, items)
        all_ids += ids
        all_texts += items
    items = texts(rng, 600)
    (corpus / "extra.txt").write_text("\n".join(items) + "\n", encoding="utf-8")
    all_ids += [f"extra.txt:{i}" for i in range(len(items))]
    all_texts += items
    ensure_ray(None, num_cpus=2)  # the local start path: 127.0.0.1, no dashboard
    import ray

    gcs = ray.get_runtime_context().gcs_address
    job = RayJobSettings(num_workers=2, rows_per_part=400)
    first = run_ray_embed(corpus, work / "out", settings, job)
    got_ids, got = read_parts(work / "out")
    expected = local.embed_with_report(all_texts)
    index = {i: n for n, i in enumerate(all_ids)}
    order = [index[i] for i in got_ids]
    import pyarrow.parquet as pq

    tokens = [
        t for p in sorted((work / "out").glob("part-*.parquet")) for t in pq.read_table(p)["n_tokens"].to_pylist()
    ]
    out["equal"] = {
        "n_texts": len(all_texts),
        "n_ids": len(got_ids),
        "unique_ids": len(set(got_ids)),
        "same_ids": sorted(got_ids) == sorted(all_ids),
        "max_abs_diff": float(np.abs(got - expected.vectors[order]).max()),
        "tokens_match": tokens == [expected.tokens[k] for k in order],
        "parts_written": first.parts_written,
        "workers": len(first.workers),
        "worker_parts": sum(w.parts for w in first.workers.values()),
        "report_texts": first.texts,
        "summary": first.summary(),
        "manifest": json.loads((work / "out" / "_manifest.json").read_text()),
    }

    # 2. a rerun of a finished job writes nothing
    before = tree_state(work / "out")
    again = run_ray_embed(corpus, work / "out", settings, job)
    after = tree_state(work / "out")
    out["rerun"] = {
        "parts_written": again.parts_written,
        "parts_skipped": again.parts_skipped,
        "rows_skipped": again.rows_skipped,
        "parts_unchanged": {k: v for k, v in before.items() if k.startswith("part-")}
        == {k: v for k, v in after.items() if k.startswith("part-")},
    }

    # 3. another model on the same output directory: refused, nothing touched
    other = EngineSettings(model=other_model_dir, backend="torch")
    out["other_model"] = {
        **error_of(lambda: run_ray_embed(corpus, work / "out", other, job)),
        "unchanged": tree_state(work / "out") == after,
    }

    # 4. kill the driver (SIGKILL, the CLI joined to this cluster) once the first part is complete; rerun
    big = work / "big"
    big.mkdir()
    big_items = texts(rng, 20000)
    big_ids = [f"b{i}" for i in range(len(big_items))]
    write_jsonl(big / "big.jsonl", big_ids, big_items)
    killed_out = work / "killed"
    driver = subprocess.Popen(
        [sys.executable, "-m", "embedlab", "embed", "-i", str(big), "-o", str(killed_out), "--model", model_dir,
         "--backend", "torch", "--ray", gcs, "--num-workers", "1", "--rows-per-part", "100", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and driver.poll() is None:
        if any(killed_out.glob("part-*.parquet")):
            break
        time.sleep(0.005)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    parts_at_kill = len(list(killed_out.glob("part-*.parquet")))
    time.sleep(1.0)  # Ray kills the dead driver's actors
    (killed_out / ".part-00000-999999.parquet.tmp-1-deadbeef").write_bytes(b"PAR1 half written")
    resumed = run_ray_embed(big, killed_out, settings, RayJobSettings(num_workers=2, rows_per_part=100))
    resumed_ids, resumed_vectors = read_parts(killed_out)
    out["kill"] = {
        "driver_rc": driver.returncode,
        "parts_at_kill": parts_at_kill,
        "total_parts": len(big_items) // 100,
        "resumed": resumed.resumed,
        "rerun_skipped": resumed.parts_skipped,
        "rerun_written": resumed.parts_written,
        "n_ids": len(resumed_ids),
        "unique_ids": len(set(resumed_ids)),
        "same_ids": sorted(resumed_ids) == sorted(big_ids),
        "tmp_left": sorted(p.name for p in killed_out.glob(".*tmp-*")),
        "max_abs_diff_sample": float(
            np.abs(resumed_vectors[:500] - local.embed([big_items[int(i[1:])] for i in resumed_ids[:500]])).max()
        ),
    }

    # 5. an unreadable shard
    bad = work / "bad"
    bad.mkdir()
    write_jsonl(bad / "a.jsonl", ["x", "y"], ["the cat", "the dog"])
    (bad / "b.jsonl").write_text('{"id": "1", "text": "ok"}\n{"id": "2", "text": "ok"}\n{not json\n', encoding="utf-8")
    out["unreadable"] = error_of(lambda: run_ray_embed(bad, work / "bad-out", settings, job))

    # 6. an unreachable address (the CLI, its own process: clean message, exit 2, bounded time)
    started = time.monotonic()
    cli = subprocess.run(
        [sys.executable, "-m", "embedlab", "embed", "-i", str(corpus), "-o", str(work / "never"), "--model",
         model_dir, "--ray", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out["unreachable"] = {
        "rc": cli.returncode,
        "stderr": cli.stderr[-2000:],
        "seconds": time.monotonic() - started,
        "output_created": (work / "never").exists(),
    }

    # 7. two serving replicas on Ray Serve sharing a Redis cache
    out["serve"] = serve_scenario(model_dir, local, work)
    out["listeners"] = listeners()
    return out


def serve_scenario(model_dir: str, local: Any, work: Path) -> dict[str, Any]:
    import httpx
    from ray import serve

    from embedlab.distributed.ray_serve import run_serve
    from embedlab.distributed.redis_cache import RedisVectorCache
    from embedlab.server.settings import ServerSettings

    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no",
         "--dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    result: dict[str, Any] = {}
    try:
        url = f"redis://127.0.0.1:{redis_port}/0"
        for _ in range(200):
            try:
                RedisVectorCache(url, 32).close()
                break
            except embedlab.EmbedlabError:
                time.sleep(0.05)
        port = free_port()
        settings = ServerSettings(model=model_dir, backend="torch", host="127.0.0.1", port=port)
        run_serve(settings, replicas=2, cpus_per_replica=0.5, cache_url=url, blocking=False)
        status = serve.status().applications["embedlab"].deployments["embedlab"]
        result["replicas_running"] = status.replica_states.get("RUNNING", 0)
        items = ["the cat sat", "a dog on the mat", "query a b c", "the mat"]
        bodies = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(6):
                response = client.post("/v1/embeddings", json={"input": items})
                bodies.append((response.status_code, response.json()))
            health = client.get("/health").status_code
        vectors = np.array([d["embedding"] for d in bodies[0][1]["data"]], dtype=np.float32)
        cache = RedisVectorCache(url, 32)
        result.update(
            statuses=sorted({code for code, _ in bodies}),
            health=health,
            max_abs_diff=float(np.abs(vectors - local.embed(items)).max()),
            all_same=all(b[1]["data"] == bodies[0][1]["data"] for b in bodies),
            redis_entries=len(cache),
            distinct_texts=len(set(items)),
        )
        cache.close()
        result["listeners_while_serving"] = listeners()
        serve.shutdown()
    finally:
        redis.terminate()
        redis.wait(10)
    return result


if __name__ == "__main__":
    work_dir = Path(sys.argv[3])
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        report = main(sys.argv[1], sys.argv[2], work_dir)
    except BaseException:
        report = {"crash": traceback.format_exc()}
    finally:
        try:
            import ray

            ray.shutdown()
        except Exception:
            pass
    # to a file, not stdout: Ray forwards its workers' log lines to the driver's stdout at any moment
    Path(sys.argv[4]).write_text(json.dumps(report), encoding="utf-8")
    sys.stdout.flush()
    os._exit(0)
