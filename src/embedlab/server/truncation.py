"""Truncation is never silent: the header that counts a request's texts cut at the token limit, and what to tell a
client whose text is over the limit. The engine says which texts it cut (:attr:`EmbedOutcome.truncated`, also for
texts answered from its cache).
"""

from __future__ import annotations

from embedlab.settings import LongInputPolicy

HEADER = "x-embedlab-truncated"  # texts cut at the token limit in this request (always sent, 0 when none)


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
