"""Server settings: defaults, environment variables, the --config file, flags, and their validation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from embedlab.cpu import available_cores
from embedlab.errors import ConfigError
from embedlab.server.settings import ServerSettings
from embedlab.settings import load_settings


def test_defaults_are_safe_and_documented_limits() -> None:
    settings = ServerSettings()
    assert settings.host == "127.0.0.1" and settings.port == 8000 and settings.api_key is None
    assert settings.backend == "auto"  # the calibrated choice, as embedlab.load() makes it
    assert settings.max_client_batch >= 2048
    assert settings.max_payload_bytes < 10_000_000
    assert settings.cache_entries > 0 and settings.cache_path is None
    limits = settings.batcher_settings()
    assert limits.max_concurrent_requests == settings.max_concurrent_requests
    assert limits.max_batch_tokens == settings.max_batch_tokens


def test_environment_config_file_and_flags_in_that_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDLAB_MAX_CLIENT_BATCH", "100")
    monkeypatch.setenv("EMBEDLAB_PORT", "9000")
    monkeypatch.setenv("EMBEDLAB_API_KEY", "from-env")
    monkeypatch.setenv("EMBEDLAB_MODEL_ALIASES", '["text-embedding-3-small"]')
    config = tmp_path / "serve.json"
    config.write_text(json.dumps({"settings": {"port": 9100, "max_batch_tokens": 4096, "cache_entries": 0}}))
    settings = load_settings(ServerSettings, config, port=9200, max_tokens=128)
    assert settings.max_client_batch == 100  # environment
    assert settings.max_batch_tokens == 4096 and settings.cache_entries == 0  # file
    assert settings.port == 9200 and settings.max_tokens == 128  # flags win
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "from-env"
    assert settings.model_aliases == ["text-embedding-3-small"]
    assert "from-env" not in repr(settings)
    engine = settings.engine_settings("onnx")
    assert engine.backend == "onnx" and engine.max_tokens == 128 and engine.max_batch_tokens == 4096


def test_toml_config_with_server_keys(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('host = "0.0.0.0"\nmax_concurrent_requests = 8\nlong_input = "chunk"\n')
    settings = load_settings(ServerSettings, config)
    assert settings.host == "0.0.0.0" and settings.max_concurrent_requests == 8 and settings.long_input == "chunk"


def test_unknown_keys_and_bad_values_are_named(tmp_path: Path) -> None:
    config = tmp_path / "serve.json"
    config.write_text(json.dumps({"max_client_batchh": 5}))
    with pytest.raises(ConfigError, match="unknown settings \\['max_client_batchh'\\]"):
        load_settings(ServerSettings, config)
    with pytest.raises(ConfigError, match="max_client_batch"):
        load_settings(ServerSettings, None, max_client_batch=0)
    with pytest.raises(ConfigError, match="port"):
        load_settings(ServerSettings, None, port=70000)


def test_worker_layout_shares_the_cores_out() -> None:
    cores = available_cores()
    expected = (2, cores // 2) if cores >= 2 else (1, 1)
    assert ServerSettings().worker_layout() == expected
    assert ServerSettings().batcher_settings().workers == expected[0]
    assert ServerSettings().engine_settings("onnx").threads == expected[1]
    assert ServerSettings(workers=3).worker_layout() == (3, max(1, cores // 3))
    assert ServerSettings(threads=1).worker_layout() == (1, 1)  # a CPU limit the user chose is kept
    assert ServerSettings(workers=1, threads=4).worker_layout() == (1, 4)
    assert ServerSettings(device="cuda").worker_layout() == (1, None)
    assert ServerSettings().worker_layout(cores=8) == (2, 4)  # e.g. a Ray replica's reserved CPUs
    assert ServerSettings().worker_layout(cores=0) == (1, 1)
    assert ServerSettings(workers=3).worker_layout(cores=8) == (3, 2)
    with pytest.raises(ValueError):
        ServerSettings(workers=0)


def test_one_core_gets_one_worker() -> None:
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
        "from embedlab.server.settings import ServerSettings; print(ServerSettings().worker_layout())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "(1, 1)"


def test_a_settings_file_lists_several_models_with_their_own_options(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(
        'backend = "onnx"\nmax_tokens = 200\nport = 9000\n'
        '[[models]]\nmodel = "sentence-transformers/all-MiniLM-L6-v2"\nmodel_aliases = ["text-embedding-3-small"]\n'
        '[[models]]\nmodel = "BAAI/bge-small-en-v1.5"\nserved_model_name = "bge"\nbackend = "torch"\n'
        'max_tokens = 512\nworkers = 1\nthreads = 2\ndimensions = 128\nprompt_name = "query"\n'
    )
    settings = load_settings(ServerSettings, config)
    first, second = settings.per_model()
    assert (first.model, first.backend, first.max_tokens, first.model_aliases) == (
        "sentence-transformers/all-MiniLM-L6-v2",
        "onnx",
        200,
        ["text-embedding-3-small"],
    )
    assert (second.model, second.served_model_name, second.backend, second.max_tokens) == (
        "BAAI/bge-small-en-v1.5",
        "bge",
        "torch",
        512,
    )
    assert (second.dimensions, second.prompt_name, second.worker_layout()) == (128, "query", (1, 2))
    assert first.worker_layout() == ServerSettings().worker_layout()  # each model: the layout one model would get
    assert first.port == second.port == 9000 and not first.models and not second.models
    as_json = tmp_path / "serve.json"
    as_json.write_text(json.dumps({"settings": {"models": ["a/one", {"model": "b/two", "cache_entries": 0}]}}))
    one, two = load_settings(ServerSettings, as_json).per_model()
    assert (one.model, one.cache_entries, two.model, two.cache_entries) == ("a/one", 20000, "b/two", 0)


def test_the_single_model_settings_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDLAB_MODEL", "BAAI/bge-small-en-v1.5")
    settings = load_settings(ServerSettings, None, served_model_name="bge")
    assert settings.models == [] and settings.per_model() == [settings]
    assert settings.model == "BAAI/bge-small-en-v1.5" and settings.served_model_name == "bge"


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["a/x", "a/x"], "two models answer to the name 'a/x' ('a/x' and 'a/x')"),
        ([{"model": "a/x", "served_model_name": "m"}, {"model": "b/y", "served_model_name": "m"}], "name 'm'"),
        ([{"model": "a/x", "model_aliases": ["b/y"]}, "b/y"], "name 'b/y' ('a/x' and 'b/y')"),
        ([{"model": "a/x", "workers": 0}], "models[0] (a/x): workers: Input should be greater than or equal to 1"),
        ([{"model": "a/x", "long_input": "drop"}], "long_input"),
        ([{"model": "a/x", "port": 1}], "models.0.port: Extra inputs are not permitted"),
        ([{"backend": "onnx"}], "models.0.model: Field required"),
    ],
)
def test_bad_model_lists_are_refused_with_one_line(models: list[object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        load_settings(ServerSettings, None, models=models)
    assert "\n" not in str(refused.value) and "Value error" not in str(refused.value)


def test_naming_fields_belong_in_the_entries_of_a_model_list(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="served_model_name and a list of models are both given"):
        load_settings(ServerSettings, None, models=["a/x", "b/y"], served_model_name="m")
    monkeypatch.setenv("EMBEDLAB_MODEL", "c/z")
    with pytest.raises(ConfigError, match="model and a list of models are both given"):
        load_settings(ServerSettings, None, models=["a/x", "b/y"])


def test_model_flags_replace_what_the_settings_serve() -> None:
    listed = ServerSettings(models=["a/x", "b/y"], max_tokens=64)
    one = listed.with_models(["c/z"])
    assert one.model == "c/z" and one.models == [] and one.max_tokens == 64
    two = ServerSettings(model="c/z").with_models(["a/x", "b/y"])
    assert two.model is None and [m.model for m in two.models] == ["a/x", "b/y"]
    with pytest.raises(ConfigError, match="invalid settings: model_aliases and a list of models are both given"):
        ServerSettings(model_aliases=["m"]).with_models(["a/x", "b/y"])


def test_the_model_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDLAB_MODELS", '["a/x", {"model": "b/y", "workers": 1}]')
    monkeypatch.setenv("EMBEDLAB_MAX_TOKENS", "100")
    first, second = load_settings(ServerSettings).per_model()
    assert (first.model, first.workers, first.max_tokens) == ("a/x", None, 100)
    assert (second.model, second.workers, second.max_tokens) == ("b/y", 1, 100)
    assert first.models == second.models == []
