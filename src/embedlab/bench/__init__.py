"""``embedlab bench``: measure how batch size, sequence length, backend, threads and model shape move speed.

Modules (each small, pure functions where possible):

- :mod:`corpus`: the deterministic mixed-length corpus and texts of exact token lengths.
- :mod:`runner`: one measuring point (warm-up excluded, medians over repeats, latency percentiles,
  peak RSS, tokenise / model / pool time shares).
- :mod:`sweeps`: the grid of points (batch sizes, sequence lengths, backends, threads, data file).
- :mod:`synthetic`: random-weight BERTs of given shapes, FLOPs per token, the machine's matmul peak.
- :mod:`compare`: ratios per point between two saved JSON results.
- :mod:`plots`: PNG plots embedded in one HTML report.
"""
