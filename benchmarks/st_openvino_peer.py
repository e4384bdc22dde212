"""The peer side of ``vs_sentence_transformers.py``'s sentence-transformers ``backend="openvino"`` contender.

Runs in a venv where optimum-intel is installed (it needs no embedlab). Loads the model once, prints
``ready``, then answers one command per line on stdin:

- ``corpus B``: embed the corpus with batch size B; print the seconds it took;
- ``vectors B PATH``: embed the corpus and save the vectors (n, dim) float32 to PATH (.npy);
- ``queries``: embed each query alone; print a JSON list of seconds;
- ``quit``.

    python benchmarks/st_openvino_peer.py MODEL_DIR CORPUS.json QUERIES.json THREADS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    import torch
    from sentence_transformers import SentenceTransformer

    model_path, corpus_file, queries_file, threads = argv
    torch.set_num_threads(int(threads))
    texts = json.loads(Path(corpus_file).read_text())
    queries = json.loads(Path(queries_file).read_text())
    st = SentenceTransformer(model_path, backend="openvino", device="cpu")
    print("ready", flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "quit":
            print("bye", flush=True)
            return 0
        if command == "corpus":
            t0 = time.perf_counter()
            st.encode(texts, batch_size=int(rest[0]), convert_to_numpy=True, show_progress_bar=False)
            print(time.perf_counter() - t0, flush=True)
        elif command == "vectors":
            out = st.encode(texts, batch_size=int(rest[0]), convert_to_numpy=True, show_progress_bar=False)
            np.save(rest[1], np.asarray(out, dtype=np.float32))
            print("saved", flush=True)
        elif command == "queries":
            seconds = []
            for query in queries:
                t0 = time.perf_counter()
                st.encode([query], convert_to_numpy=True, show_progress_bar=False)
                seconds.append(time.perf_counter() - t0)
            print(json.dumps(seconds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
