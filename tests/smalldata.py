"""Small real data sets the tiny models tokenise: an STS file, a BEIR directory, a texts file (builders)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "query", "passage"]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_sts_file(directory: Path) -> Path:
    """24 pairs with gold scores (header: sentence1, sentence2, score) in ``directory/pairs.tsv``."""
    rng = random.Random(3)
    path = directory / "pairs.tsv"
    rows = ["sentence1\tsentence2\tscore"]
    for i in range(24):
        rows.append(f"{sentence(rng, 3 + i % 5)}\t{sentence(rng, 2 + i % 7)}\t{rng.uniform(0, 5):.2f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def write_beir_dir(root: Path) -> Path:
    """A BEIR folder in ``root``: 40 documents, 6 queries with judgments."""
    rng = random.Random(5)
    with (root / "corpus.jsonl").open("w") as out:
        for i in range(40):
            out.write(json.dumps({"_id": f"d{i}", "title": "", "text": sentence(rng, 4 + i % 9)}) + "\n")
    with (root / "queries.jsonl").open("w") as out:
        for i in range(6):
            out.write(json.dumps({"_id": f"q{i}", "text": sentence(rng, 3)}) + "\n")
    (root / "qrels").mkdir()
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{(7 * i) % 40}\t1" for i in range(6)]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def write_texts_file(directory: Path) -> Path:
    """30 texts of one-letter words in ``directory/texts.txt``: text i has 10 + 4·i words (12 + 4·i tokens)."""
    path = directory / "texts.txt"
    path.write_text("\n".join(" ".join("x" for _ in range(10 + 4 * i)) for i in range(30)) + "\n")
    return path
