"""Tokenising texts with the model's fast (Rust) tokenizer under a long-input policy.

Policies for a text longer than ``max_tokens`` (special tokens included, as sentence-transformers
counts them):

- ``truncate``: keep the first ``max_tokens`` tokens; the text is reported as truncated.
- ``error``: raise :class:`InputTooLongError` naming the input index, its length and the limit.
- ``chunk``: cut the text into windows of ``max_tokens`` tokens overlapping by ``overlap`` tokens;
  the engine pools each window and averages them weighted by their token counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab.arrays import IntArray
from embedlab.errors import ConfigError, EmptyInputError, InputTooLongError, InputTypeError, ModelLoadError
from embedlab.models.spec import ModelFiles
from embedlab.settings import LONG_INPUT_POLICIES, LongInputPolicy


@dataclass(frozen=True)
class Segment:
    """One sequence the model will see: a whole text, its truncated head, or one chunk window.

    Attributes:
        text_index: position of the source text in the caller's list.
        ids: token ids (special tokens included), length ≤ max_tokens.
        type_ids: segment ids, same length as ``ids``.
        weight: content tokens in this window (for the token-weighted mean of chunks).
        pool_skip: leading tokens left out of pooling (the prompt, for models whose pooling
            excludes it: sentence-transformers' ``include_prompt=False``).
    """

    text_index: int
    ids: list[int]
    type_ids: list[int]
    weight: int
    pool_skip: int = 0


@dataclass(frozen=True)
class TokenizedTexts:
    """The result of tokenising a list of texts.

    Attributes:
        segments: sequences to run, in text order (a chunked text contributes several).
        tokens: per text, the tokens that were embedded (special tokens included, overlap counted once
            per window it appears in).
        input_tokens: per text, its full length before truncation (special tokens included).
        truncated: per text, whether tokens were cut off.
    """

    segments: list[Segment]
    tokens: list[int]
    input_tokens: list[int]
    truncated: list[bool]


def load_tokenizer(spec: ModelFiles) -> Any:
    """The model's fast tokenizer (a ``tokenizers.Tokenizer``) with its padding and truncation off.

    Reads ``tokenizer.json`` directly when present; otherwise converts with transformers' fast tokenizer.
    """
    from tokenizers import Tokenizer

    if spec.tokenizer_file is not None:
        try:
            tokenizer = Tokenizer.from_file(str(spec.tokenizer_file))
        except Exception as exc:  # the Rust binding raises plain Exception on a bad file
            raise ModelLoadError(f"cannot read {spec.tokenizer_file}: {exc}") from exc
    else:
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(str(spec.path), use_fast=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer of {spec.path}: {exc}") from exc
        if not getattr(hf, "is_fast", False):
            raise ModelLoadError(f"{spec.path} has no fast tokenizer (tokenizer.json)")
        tokenizer = hf.backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def find_pad_id(spec: ModelFiles, tokenizer: Any) -> int:
    """The pad token id: from the tokenizer's special tokens map, else config.json, else 0.

    Padding positions are masked out, so the value only has to be a valid id.
    """
    import json

    special = spec.path / "special_tokens_map.json"
    if special.is_file():
        token = json.loads(special.read_text(encoding="utf-8")).get("pad_token")
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str) and tokenizer.token_to_id(token) is not None:
            return int(tokenizer.token_to_id(token))
    for candidate in ("[PAD]", "<pad>", "<|endoftext|>"):
        if tokenizer.token_to_id(candidate) is not None:
            return int(tokenizer.token_to_id(candidate))
    config = json.loads((spec.path / "config.json").read_text(encoding="utf-8"))
    return int(config.get("pad_token_id") or 0)


def validate_texts(texts: Any, items: str = "texts", item: str = "input") -> list[str]:
    """Check the caller's texts: a non-empty list of non-blank strings.

    Args:
        texts: what the caller gave.
        items, item: how messages name the list and one of its texts (``documents`` / ``document``).

    Raises:
        InputTypeError: ``texts`` is not a list/tuple of strings (the message names the index).
        EmptyInputError: the list is empty, or a text is empty / whitespace only (names the index).
    """
    if isinstance(texts, str):
        raise InputTypeError(f"{items} must be a list of strings, not a single string (wrap it in a list)")
    if not isinstance(texts, Sequence) and not hasattr(texts, "__iter__"):
        raise InputTypeError(f"{items} must be a list of strings, got {type(texts).__name__}")
    checked = list(texts)
    if not checked:
        raise EmptyInputError(f"no {items} given: the list is empty")
    for index, text in enumerate(checked):
        check_text(text, f"{item} {index}")
    return checked


def check_text(text: Any, name: str) -> str:
    """``text`` if it is a non-blank string.

    Raises:
        InputTypeError: it is not a string. EmptyInputError: it is empty or whitespace only (the message says ``name``).
    """
    if not isinstance(text, str):
        raise InputTypeError(f"{name} is a {type(text).__name__}, not a string")
    if not text.strip():
        raise EmptyInputError(f"{name} is empty or whitespace only")
    return text


def tokenize_texts(
    tokenizer: Any,
    texts: Sequence[str],
    max_tokens: int,
    policy: LongInputPolicy = "truncate",
    overlap: int = 32,
    prompt_tokens: int = 0,
) -> TokenizedTexts:
    """Tokenise ``texts`` (already validated, prompts already added) in one batched call.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` from :func:`load_tokenizer`.
        texts: the texts.
        max_tokens: the per-sequence limit, special tokens included.
        policy: what to do with longer texts (see the module docstring).
        overlap: tokens shared by consecutive chunk windows (``chunk`` only), capped at half a window.
        prompt_tokens: leading tokens of each text's first window to leave out of pooling (0: none).

    Raises:
        InputTooLongError: under ``error``, for the first text over the limit.
        ConfigError: an invalid limit, overlap or policy.
    """
    if policy not in LONG_INPUT_POLICIES:
        raise ConfigError(f"unknown long-input policy {policy!r}; choose one of {', '.join(LONG_INPUT_POLICIES)}")
    n_special = tokenizer.num_special_tokens_to_add(False)
    window = max_tokens - n_special
    if window < 1:
        raise ConfigError(f"max_tokens={max_tokens} leaves no room beside {n_special} special tokens")
    if overlap < 0:
        raise ConfigError(f"chunk overlap must be ≥ 0, got {overlap}")
    overlap = min(overlap, window // 2)  # documented cap: windows always advance by at least half a window

    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=True)
    segments: list[Segment] = []
    tokens: list[int] = []
    input_tokens: list[int] = []
    truncated: list[bool] = []
    for index, encoding in enumerate(encodings):
        length = len(encoding.ids)
        input_tokens.append(length)
        if length <= max_tokens:
            segments.append(Segment(index, encoding.ids, encoding.type_ids, length - n_special, prompt_tokens))
            tokens.append(length)
            truncated.append(False)
            continue
        if policy == "error":
            raise InputTooLongError(index, length, max_tokens)
        content = tokenizer.encode(texts[index], add_special_tokens=False)
        content.truncate(window, stride=overlap if policy == "chunk" else 0)
        processed = tokenizer.post_process(content)
        windows = [processed] if policy == "truncate" else [processed, *processed.overflowing]
        embedded = 0
        for number, piece in enumerate(windows):
            skip = prompt_tokens if number == 0 else 0
            segments.append(Segment(index, piece.ids, piece.type_ids, len(piece.ids) - n_special, skip))
            embedded += len(piece.ids)
        tokens.append(embedded)
        truncated.append(policy == "truncate")
    return TokenizedTexts(segments=segments, tokens=tokens, input_tokens=input_tokens, truncated=truncated)


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> IntArray:
    """Full token counts (special tokens included, nothing truncated) of ``texts``, shape (n,)."""
    return np.array([len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=True)], dtype=np.int64)
