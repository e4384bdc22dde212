"""Deterministic texts for measuring: a mixed-length corpus, short queries, texts of an exact token length.

The generated corpus imitates real embedding traffic: many short queries, a body of one- or two-sentence
passages, some paragraphs and a few long documents beyond a 256-token limit. With the default model's
tokenizer 2,000 texts average about 32 tokens (special tokens included). The same ``seed`` always gives
the same texts, so two machines or two versions embed exactly the same work.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from embedlab.errors import ConfigError

_SUBJECTS = (
    "the model",
    "our team",
    "the new policy",
    "a recent study",
    "the city council",
    "this library",
    "the search engine",
    "my landlord",
    "the vaccine trial",
    "the quarterly report",
    "a small startup",
    "the central bank",
    "the hiking trail",
    "the compiler",
    "her grandmother",
    "the support ticket",
    "the database migration",
    "an independent review",
    "the football club",
    "the museum",
)
_VERBS = (
    "reduces",
    "improves",
    "explains",
    "delays",
    "supports",
    "replaces",
    "measures",
    "announced",
    "rejected",
    "describes",
    "compares",
    "predicts",
    "requires",
    "doubled",
    "questioned",
    "recommends",
    "simplifies",
    "protects",
    "tracks",
    "ignores",
)
_OBJECTS = (
    "the latency of every request",
    "energy consumption in older buildings",
    "the price of renewable power",
    "customer churn after the redesign",
    "memory usage on small devices",
    "rainfall across the valley",
    "the risk of heart disease",
    "housing costs near the university",
    "error rates in translation",
    "the number of daily commuters",
    "protein folding in yeast cells",
    "tax rules for freelancers",
    "the accuracy of weather forecasts",
    "traffic on the northern bridge",
    "interest rates for mortgages",
    "the migration of arctic birds",
    "throughput of the ingestion pipeline",
    "reading scores in primary schools",
)
_TAILS = (
    "according to the latest figures",
    "despite strong objections",
    "for the third year in a row",
    "in most European countries",
    "when measured over six months",
    "after the 2023 update",
    "without any extra cost",
    "by roughly 12 percent",
    "compared with last season",
    "in a controlled experiment",
    "under heavy load",
    "as reported by Reuters",
    "on commodity hardware",
    "with mixed results",
)
_QUERY_STARTS = (
    "how to",
    "what is",
    "why does",
    "best way to",
    "can I",
    "when should I",
    "where to find",
    "is it safe to",
    "difference between",
    "how much does",
)
_QUERY_TOPICS = (
    "reset my router password",
    "cook rice without a cooker",
    "transformer attention complexity",
    "renew a passport online",
    "python list comprehension",
    "train for a half marathon",
    "cheap flights to Lisbon",
    "symptoms of vitamin D deficiency",
    "kubernetes pod restart loop",
    "sourdough starter smells like acetone",
    "tax deduction for home office",
    "mortgage vs rent calculator",
    "postgres index not used",
    "learn Japanese fast",
    "repair a leaking faucet",
    "GDPR data retention rules",
    "electric car battery lifespan",
    "fix npm EACCES error",
)
_CONNECTORS = ("Moreover,", "However,", "In addition,", "As a result,", "Meanwhile,", "For example,", "Notably,")


def _sentence(rng: random.Random) -> str:
    parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
    if rng.random() < 0.6:
        parts.append(rng.choice(_TAILS))
    sentence = " ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def _passage(rng: random.Random, sentences: int) -> str:
    out = [_sentence(rng)]
    for _ in range(sentences - 1):
        text = _sentence(rng)
        if rng.random() < 0.4:
            text = f"{rng.choice(_CONNECTORS)} {text[0].lower()}{text[1:]}"
        out.append(text)
    return " ".join(out)


_QUERY_ENDS = (
    "",
    " for beginners",
    " in 2024",
    " step by step",
    " near me",
    " without tools",
    " on linux",
    " on windows",
    " reddit",
    " explained",
    " cheap",
    " quickly",
)


def _query(rng: random.Random) -> str:
    text = f"{rng.choice(_QUERY_STARTS)} {rng.choice(_QUERY_TOPICS)}{rng.choice(_QUERY_ENDS)}"
    return text + ("?" if rng.random() < 0.5 else "")


def generate_corpus(n_texts: int = 2000, seed: int = 0) -> list[str]:
    """``n_texts`` varied English texts, deterministic for a given ``seed``.

    The mix: about 42% short queries (~12 tokens), 36% single sentences (~18 tokens), 18.5% paragraphs
    of 3-6 sentences (~55-110 tokens) and 3.5% long documents of 14-24 sentences (~280-480 tokens, over
    a 256-token limit); every text distinct. With seed 0 and all-MiniLM-L6-v2's tokenizer: 32.5 tokens
    per text on average, 31.6 after truncation to 256, 40 texts over the limit. The order is shuffled,
    as real traffic is.

    Raises:
        ConfigError: ``n_texts`` below 1.
    """
    if n_texts < 1:
        raise ConfigError(f"a corpus needs at least 1 text, got {n_texts}")
    rng = random.Random(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < n_texts:
        draw = rng.random()
        if draw < 0.42:
            text = _query(rng)
        elif draw < 0.78:
            text = _sentence(rng)
        elif draw < 0.965:
            text = _passage(rng, rng.randint(3, 6))
        else:
            text = _passage(rng, rng.randint(14, 24))
        if text not in seen:  # every text distinct, so no cache or de-duplication can skip work
            seen.add(text)
            texts.append(text)
    return texts


def short_queries(n_queries: int = 50, seed: int = 1) -> list[str]:
    """``n_queries`` short search queries (about 8-16 tokens, 12 on average), for batch-1 latency."""
    rng = random.Random(seed)
    return [_query(rng) for _ in range(n_queries)]


def texts_of_length(tokenizer: Any, n_tokens: int, count: int, seed: int = 0) -> list[str]:
    """``count`` texts that each tokenise to exactly ``n_tokens`` tokens (special tokens included).

    Words are drawn from the tokenizer's own vocabulary (whole words, no ``##`` pieces) and checked
    one by one, so the length holds for any WordPiece / BPE / Unigram tokenizer that maps a vocabulary
    word back to one token.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (padding and truncation off).
        n_tokens: the exact length wanted, special tokens included.
        count: how many texts.

    Raises:
        ConfigError: ``n_tokens`` not above the special tokens, or no single-token words found.
    """
    n_special = int(tokenizer.num_special_tokens_to_add(False))
    content = n_tokens - n_special
    if content < 1:
        raise ConfigError(f"a sequence of {n_tokens} tokens leaves no room beside {n_special} special tokens")
    words = single_token_words(tokenizer)
    rng = random.Random(seed * 1_000_003 + n_tokens)
    texts: list[str] = []
    for _ in range(count):
        picked = [rng.choice(words) for _ in range(content)]
        texts.append(" ".join(picked))
    return texts


_WORD_CACHE: dict[int, list[str]] = {}


def single_token_words(tokenizer: Any, limit: int = 2000) -> list[str]:
    """Alphabetic vocabulary words that encode to exactly one token on their own and beside each other."""
    key = id(tokenizer)
    if key in _WORD_CACHE:
        return _WORD_CACHE[key]
    vocab: dict[str, int] = tokenizer.get_vocab()
    candidates = sorted(
        (w for w in vocab if w.isascii() and w.isalpha() and w.islower() and 2 <= len(w) <= 10), key=vocab.__getitem__
    )
    if len(candidates) < 26:  # tiny test vocabularies: single letters are words too
        candidates = sorted((w for w in vocab if w.isascii() and w.isalpha() and len(w) >= 1), key=vocab.__getitem__)
    encoded = tokenizer.encode_batch(candidates[: limit * 2], add_special_tokens=False)
    words = [w for w, e in zip(candidates[: limit * 2], encoded, strict=True) if len(e.ids) == 1][:limit]
    if not words:
        raise ConfigError("the tokenizer has no alphabetic words that encode to a single token")
    _WORD_CACHE[key] = words
    return words


def corpus_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Full token length of each text (special tokens included, nothing truncated)."""
    return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=True)]
