"""Truncation is never silent: which texts of a request were cut at the token limit, and what to tell a client.

The engine answers a request with the tokens it embedded per text (:class:`EmbedOutcome.tokens`), also
for texts served from its cache, but not with whether a text was cut. Under the ``truncate`` policy a
text that was cut embeds exactly ``max_tokens`` tokens, so only texts at the limit can have been cut;
for those the full token count (prompt included, as the engine tokenised it) decides. Texts below the
limit cost nothing here; a cut text is tokenised once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from embedlab.engine.embedder import Embedder
from embedlab.engine.options import ResolvedOptions
from embedlab.settings import LongInputPolicy

INLINE_MAX_CHARS = 4096  # re-count candidates holding at most this many characters in the event loop's thread
HEADER = "x-embedlab-truncated"  # texts cut at the token limit in this request (always sent, 0 when none)


def count_truncated(embedder: Embedder, texts: Sequence[str], tokens: Sequence[int], options: ResolvedOptions) -> int:
    """How many of ``texts`` lost tokens to truncation.

    Args:
        embedder: the model that embedded them.
        texts: the texts as embedded (before the prompt is added).
        tokens: per text, the tokens embedded (special tokens included).
        options: the options they were embedded with.
    """
    if options.long_input != "truncate":
        return 0
    at_limit = [options.prompt + text for text, n in zip(texts, tokens, strict=True) if n >= options.max_tokens]
    if not at_limit:
        return 0
    return int((embedder.count_tokens(at_limit) > options.max_tokens).sum())


async def count_truncated_async(
    embedder: Embedder, texts: Sequence[str], tokens: Sequence[int], options: ResolvedOptions
) -> int:
    """:func:`count_truncated`, in a thread when the texts to re-count are long (so the event loop keeps serving)."""
    at_limit = sum(len(text) for text, n in zip(texts, tokens, strict=True) if n >= options.max_tokens)
    if options.long_input != "truncate" or at_limit <= INLINE_MAX_CHARS:
        return count_truncated(embedder, texts, tokens, options)
    return await asyncio.to_thread(count_truncated, embedder, texts, tokens, options)


def too_long_hint(truncate: bool | None, long_input: LongInputPolicy | None, has_long_input: bool) -> str:
    """What a client whose text is over the limit can do, in the terms of the request field it used.

    Args:
        truncate: the request's ``truncate`` (None: not given).
        long_input: the request's ``long_input`` (None: not given, or the route has none).
        has_long_input: whether the route takes ``long_input`` (OpenAI's does, TEI's ``/embed`` does not).
    """
    if long_input is not None:
        return "send long_input 'truncate' (the text cut at the limit) or 'chunk' (all of it in windows), or shorten it"
    if truncate is not None:
        return "send truncate: true to embed the text cut at the limit, or shorten it"
    chunk = ", or long_input: 'chunk' to embed all of it in windows" if has_long_input else ""
    return f"this server's long_input setting is 'error'; send truncate: true to embed the text cut at the limit{chunk}"
