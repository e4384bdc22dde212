"""``embedlab serve`` as users run it: a subprocess, no arguments, the default model on ONNX, offline."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import embedlab
from embedlab.cli import main

# Runs exactly `embedlab serve` with the given arguments, and on exit writes the modules it imported.
WRAPPER = """
import atexit, json, sys
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(sorted(sys.modules))))
from embedlab.cli import main
main(sys.argv[2:])
"""


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.slow
def test_serve_with_no_arguments_serves_the_default_model_without_torch(tmp_path: Path) -> None:
    if not port_is_free(8000):
        pytest.skip("port 8000 on 127.0.0.1 is taken; `embedlab serve` with no arguments binds it")
    from embedlab.backends.onnx_export import cached_or_export

    cached_or_export(embedlab.load_spec())  # the exported graph is cached (this process may use torch)
    modules_file = tmp_path / "modules.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(modules_file), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url="http://127.0.0.1:8000", timeout=30) as client:
            while True:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not become healthy"
                time.sleep(0.2)
            texts = ["serving offline", "no torch in this process"]
            answer = client.post("/v1/embeddings", json={"input": texts})
            assert answer.status_code == 200
            info = client.get("/info").json()["models"][0]
        assert info["model"] == embedlab.DEFAULT_MODEL
        assert info["backend_auto"] is not None and info["backend"] == info["backend_auto"]["chosen"]
        vectors = np.asarray([d["embedding"] for d in answer.json()["data"]], dtype=np.float32)
        exact = embedlab.load(backend="onnx").embed(texts)
        assert ((vectors * exact).sum(1) >= 0.9999).all()  # auto never trades quality for speed
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert "libtorch" not in maps
        peak = peak_rss_mb(server.pid)
        assert peak <= 350, f"peak RSS {peak:.0f} MB over the 350 MB target"
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "Uvicorn running on http://127.0.0.1:8000" in output
    assert f"backend auto chose {info['backend']}: " in output
    modules = set(json.loads(modules_file.read_text()))
    assert "torch" not in modules and "transformers" not in modules and "sentence_transformers" not in modules
    assert "uvicorn" in modules


def test_bad_settings_are_an_error_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "serve.json"
    config.write_text(json.dumps({"max_client_batch": 0}))
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--config", str(config)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "max_client_batch" in err and "Traceback" not in err


def test_an_unknown_model_is_an_error_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--model", str(tmp_path / "no-such-model"), "--port", "0"])
    assert exit_.value.code == 2
    assert "not found" in capsys.readouterr().err


def test_an_unreadable_int8_calibration_file_is_an_error_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = ["serve", "--model", str(tiny_bert_dir), "--backend", "torch", "--port", "0"]
    with pytest.raises(SystemExit) as exit_:
        main([*tiny, "--int8-calibration-texts", str(tmp_path / "missing.txt")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "missing.txt: no such file" in err and "Traceback" not in err
    one = tmp_path / "one.txt"
    one.write_text("a single text\n", encoding="utf-8")
    monkeypatch.setenv("EMBEDLAB_INT8_CALIBRATION_TEXTS", str(one))  # the same setting from the environment
    with pytest.raises(SystemExit) as exit_:
        main(tiny)
    assert exit_.value.code == 2 and "int8 calibration needs at least 2 texts, found 1" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_repeated_model_flags_serve_each_model(tiny_bert_dir: Path, make_tiny_bert: Any) -> None:
    other = make_tiny_bert(seed=1)
    port = free_port()
    command = [sys.executable, "-m", "embedlab", "serve", "--model", str(tiny_bert_dir), "--model", str(other)]
    server = subprocess.Popen(
        [*command, "--backend", "torch", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not become healthy"
                time.sleep(0.2)
            served = [m["model"] for m in client.get("/info").json()["models"]]
            assert served == [str(tiny_bert_dir.resolve()), str(other.resolve())]
            for directory in (tiny_bert_dir, other):
                answer = client.post("/v1/embeddings", json={"input": ["a cat"], "model": directory.name})
                assert answer.status_code == 200 and answer.json()["model"] == str(directory.resolve())
                expected = embedlab.load(str(directory), backend="torch").embed(["a cat"])
                np.testing.assert_allclose([answer.json()["data"][0]["embedding"]], expected, atol=1e-5)
            assert client.post("/v1/embeddings", json={"input": ["a cat"]}).status_code == 400
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


def test_two_models_under_one_name_are_an_error_message(
    capsys: pytest.CaptureFixture[str], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--model", str(tiny_bert_dir), "--model", str(tiny_bert_dir), "--port", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert f"two models answer to the name '{tiny_bert_dir}'" in err and "\n" not in err
    config = tmp_path / "serve.json"
    models = [{"model": "a/x", "model_aliases": ["shared"]}, {"model": "b/y", "served_model_name": "shared"}]
    config.write_text(json.dumps({"models": models}))
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--config", str(config), "--port", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "two models answer to the name 'shared' ('a/x' and 'shared')" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--model", "a/x", "--model", "b/y", "--served-model-name", "m", "--port", "0"])
    assert exit_.value.code == 2
    assert "served_model_name and a list of models are both given" in capsys.readouterr().err
