"""A run of ``embed`` killed outright leaves its hidden partial output; the next run on that output removes it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import embedlab
from embedlab.embed_job import run_embed_job
from embedlab.io.readers import read_texts
from embedlab.io.writers import VectorWriter


def test_the_writer_removes_its_targets_stale_partials_when_it_starts(tmp_path: Path, dead_pid: int) -> None:
    target = tmp_path / "v.npy"
    stale = tmp_path / f".v.npy.partial-{dead_pid}"
    stale.write_bytes(b"\0" * 1000)
    other = tmp_path / f".w.npy.partial-{dead_pid}"  # another output's partial: not this writer's business
    other.write_bytes(b"\0")
    writer = VectorWriter(target, n_rows=1, dim=2)
    assert writer.stale_removed.paths == [stale] and writer.stale_removed.bytes == 1000
    assert not stale.exists() and other.exists()
    writer.write(["0"], np.ones((1, 2), np.float32))
    writer.close()
    assert np.load(target).tolist() == [[1.0, 1.0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".w.npy.partial-" + str(dead_pid), "v.npy"]


def test_the_job_says_what_it_removed_in_one_line(tmp_path: Path, tiny_bert_dir: Path, dead_pid: int) -> None:
    texts = tmp_path / "t.txt"
    texts.write_text("the cat\na dog\n")
    (tmp_path / f".v.jsonl.partial-{dead_pid}").write_text('{"id": "0"}\n')
    lines: list[str] = []
    model = embedlab.load(str(tiny_bert_dir), backend="torch", threads=1)
    run_embed_job(model, read_texts(texts), tmp_path / "v.jsonl", on_message=lines.append)
    assert lines == [
        f"removed 1 stale partial file (0.0 MB) left by crashed runs in {tmp_path}: .v.jsonl.partial-{dead_pid}"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt", "v.jsonl"]


def _embed_command(texts: Path, output: Path, model: Path) -> list[str]:
    files = ["-i", str(texts), "-o", str(output), "--model", str(model)]
    return [sys.executable, "-m", "embedlab", "embed", *files, "--backend", "torch", "--threads", "1", "-q"]


def test_sigkill_mid_run_then_the_rerun_removes_the_stale_partial(tmp_path: Path, tiny_bert_dir: Path) -> None:
    rng = random.Random(0)
    big = tmp_path / "big.txt"  # 20,000 texts of 62 tokens: several seconds of embedding on one thread
    big.write_text("".join(" ".join(rng.choice("abcdefghij") for _ in range(60)) + "\n" for _ in range(20_000)))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "vectors.npy"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    proc = subprocess.Popen(
        _embed_command(big, output, tiny_bert_dir), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    partial = out_dir / f".vectors.npy.partial-{proc.pid}"
    deadline = time.monotonic() + 120
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if not partial.exists():
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no partial file appeared (exit {proc.returncode}): {err.decode()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # reaps it: a zombie still counts as a live writer
    assert proc.returncode == -signal.SIGKILL
    assert partial.exists() and not output.exists()
    size = partial.stat().st_size
    assert size > 20_000 * 32 * 4  # the whole .npy is laid out up front

    small = tmp_path / "small.txt"
    small.write_text("the cat sat\na dog\non the mat\n")
    rerun = subprocess.run(
        _embed_command(small, output, tiny_bert_dir), env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    said = [line for line in rerun.stderr.splitlines() if "stale partial" in line]
    assert said == [
        f"removed 1 stale partial file ({size / 1e6:.1f} MB) left by crashed runs in {out_dir}: {partial.name}"
    ]
    assert not partial.exists()
    assert sorted(p.name for p in out_dir.iterdir()) == ["vectors.npy"]
    assert np.load(output).shape == (3, 32)
