"""A deterministic corpus of varied texts for parity checks: 1 token to far beyond 256 tokens."""

from __future__ import annotations

import random

_WORDS = [
    "the",
    "a",
    "model",
    "vector",
    "search",
    "retrieval",
    "embedding",
    "token",
    "sentence",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "database",
    "index",
    "query",
    "passage",
    "document",
    "semantic",
    "similarity",
    "cosine",
    "transformer",
    "attention",
    "layer",
    "normalisation",
    "batch",
    "padding",
    "latency",
    "throughput",
    "memory",
    "budget",
    "precision",
    "quantisation",
    "server",
    "client",
]
_SPECIAL = [
    "Hello, world!",
    "naïve café résumé — déjà vu",
    "日本語のテキストも埋め込めます。",
    "Ünïcödé ÄÖÜ ß straße",
    "emoji 🙂🚀 and symbols ©®™ ± ≤ ≥",
    "def f(x):\n    return x ** 2  # code",
    "SELECT id, name FROM users WHERE age > 30;",
    "https://example.com/path?q=embedding&lang=en",
    "1234567890 3.14159 -42 1e-9",
    "ALL CAPS SHOUTING TEXT",
    "tabs\tand\nnewlines\r\ninside",
    "x",
    "?",
    "Ελληνικά και Русский текст",
    "مرحبا بالعالم",
]


def parity_corpus(n: int = 220, seed: int = 1234) -> list[str]:
    """``n`` texts: fixed odd cases, then sentences whose lengths span 1 to ~600 words."""
    rng = random.Random(seed)
    texts = list(_SPECIAL)
    lengths = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 300, 400, 600]
    while len(texts) < n:
        length = lengths[len(texts) % len(lengths)] if len(texts) % 3 == 0 else rng.randint(1, 60)
        words = [rng.choice(_WORDS) for _ in range(length)]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        texts.append(" ".join(words) + rng.choice(["", ".", "!", "?"]))
    return texts[:n]
