"""Per-call options resolved once: defaults from the call, then the settings, then the model; every limit checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.engine.loader import load_spec
from embedlab.engine.options import EmbedOptions, resolve_options
from embedlab.errors import ConfigError
from embedlab.models.spec import ModelSpec
from embedlab.settings import EngineSettings


def no_tokens(prompt: str) -> int:
    return len(prompt.split())


@pytest.fixture(scope="module")
def spec(make_tiny_bert: Callable[..., Path]) -> ModelSpec:
    path = make_tiny_bert(prompts={"query": "query: ", "passage": "passage: "}, default_prompt_name="query")
    return load_spec(str(path))


def resolve(spec: ModelSpec, settings: EngineSettings | None = None, **given: object):  # type: ignore[no-untyped-def]
    return resolve_options(spec, settings or EngineSettings(), EmbedOptions(**given), no_tokens)  # type: ignore[arg-type]


def test_defaults_come_from_the_model_then_the_settings_then_the_call(spec: ModelSpec) -> None:
    model_defaults = resolve(spec)
    assert (model_defaults.max_tokens, model_defaults.dimensions) == (spec.max_tokens, spec.dim)
    assert model_defaults.prompt == "query: " and model_defaults.long_input == "truncate"
    assert model_defaults.normalize is spec.normalize and model_defaults.chunk_overlap == 32
    settings = EngineSettings(max_tokens=16, dimensions=8, long_input="chunk", prompt_name="passage", chunk_overlap=3)
    from_settings = resolve(spec, settings)
    assert (from_settings.max_tokens, from_settings.dimensions, from_settings.long_input) == (16, 8, "chunk")
    assert from_settings.prompt == "passage: " and from_settings.chunk_overlap == 3
    from_call = resolve(spec, settings, max_tokens=10, dimensions=4, long_input="error", prompt="x ", normalize=False)
    assert (from_call.max_tokens, from_call.dimensions, from_call.long_input) == (10, 4, "error")
    assert from_call.prompt == "x " and from_call.normalize is False


def test_input_type_picks_the_models_prompt(spec: ModelSpec) -> None:
    assert resolve(spec, input_type="query").prompt == "query: "
    assert resolve(spec, input_type="document").prompt == "passage: "  # falls back to the passage prompt
    with pytest.raises(ConfigError, match="either prompt_name or input_type"):
        resolve(spec, input_type="query", prompt_name="query")


def test_pool_skip_counts_the_prompt_only_when_pooling_leaves_it_out(spec: ModelSpec) -> None:
    assert resolve(spec, prompt="a b c ").pool_skip == 0  # include_prompt is true by default
    excluded = dataclasses.replace(spec, include_prompt=False, default_prompt_name=None)
    assert resolve(excluded, prompt="a b c ").pool_skip == 3
    assert resolve(excluded).pool_skip == 0


def test_every_limit_is_checked_with_a_message_naming_it(spec: ModelSpec) -> None:
    for bad in (0, spec.max_tokens + 1):
        with pytest.raises(ConfigError, match="max_tokens must be between 1"):
            resolve(spec, max_tokens=bad)
    for bad in (0, spec.dim + 1):
        with pytest.raises(ConfigError, match="dimensions must be between 1"):
            resolve(spec, dimensions=bad)
    with pytest.raises(ConfigError, match="long-input policy"):
        resolve(spec, long_input="squash")
    with pytest.raises(ConfigError, match="no prompt named 'doc'"):
        resolve(spec, prompt_name="doc")
    with pytest.raises(ConfigError, match="either prompt or prompt_name"):
        resolve(spec, prompt="x", prompt_name="query")


def test_unknown_option_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown embedding option 'dims'"):
        EmbedOptions.from_kwargs(dims=3)
    assert EmbedOptions.from_kwargs(dimensions=3) == EmbedOptions(dimensions=3)


def test_precision_defaults_to_float32_and_is_checked_once(spec: ModelSpec) -> None:
    assert resolve(spec).precision == "float32" and resolve(spec).ranges is None
    assert resolve(spec, precision="binary").precision == "binary"
    with pytest.raises(ConfigError, match="unknown precision 'int4'; choose one of float32, float16, int8, uint8"):
        resolve(spec, precision="int4")


def test_int8_ranges_fit_the_dimensions_and_unnormalised_vectors_need_them(spec: ModelSpec) -> None:
    import numpy as np

    good = np.zeros((2, 8), dtype=np.float32)
    assert resolve(spec, precision="int8", dimensions=8, ranges=good).ranges is not None
    with pytest.raises(ConfigError, match=r"int8 ranges must have shape \(2, 8\)"):
        resolve(spec, precision="int8", dimensions=8, ranges=np.zeros((2, spec.dim)))
    with pytest.raises(ConfigError, match="not normalised needs ranges"):
        resolve(spec, precision="uint8", normalize=False)
    assert resolve(spec, precision="uint8", normalize=False, ranges=np.zeros((2, spec.dim))).precision == "uint8"
